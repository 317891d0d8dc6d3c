//! Deliberately broken tests that `cargo keel test` runs on purpose to
//! check that its harness reports a panic and a hang as failures and goes
//! on with the tests after them. `keel.test=all` never selects them.

use crate::ktest;

#[ktest]
fn panics() {
    panic!("deliberate panic (harness self-check)");
}

#[ktest]
fn hangs_with_interrupts_off() {
    let _irq = crate::sync::IrqGuard::new();
    loop {
        core::hint::spin_loop();
    }
}

#[ktest]
fn runs_after_the_others() {}
