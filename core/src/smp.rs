//! Bringing up the other CPUs, and running a function on every other CPU
//! (used for TLB shootdowns).

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use keel_hal::boot::MAX_CPUS;
use keel_hal::{BootInfo, CpuIndex, Ipi, machine};

use crate::memory::stack::Stack;
use crate::sched;
use crate::sync::{IrqGuard, Mutex};

/// Idle stacks of the secondary CPUs, `[bottom, top)`, set before each starts.
static IDLE_STACKS: [(AtomicUsize, AtomicUsize); MAX_CPUS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_CPUS];

/// Start every CPU the platform found after the boot CPU. A CPU that fails
/// to start is reported and skipped; indices stay dense.
pub fn start_secondaries(boot: &BootInfo) {
    let mut next_index = 1;
    for (n, cpu) in boot.cpu_list().iter().enumerate().skip(1) {
        let Some(stack) = Stack::alloc() else {
            crate::kprintln!("keel: no memory for CPU {n}'s stack; running with {next_index} CPUs");
            return;
        };
        let (bottom, top) = (stack.bottom(), stack.top());
        core::mem::forget(stack); // an idle stack lives as long as its CPU
        IDLE_STACKS[next_index].0.store(bottom, Ordering::Release);
        IDLE_STACKS[next_index].1.store(top, Ordering::Release);
        // SAFETY: the stack is fresh and never freed; `next_index` has not
        // been used by any CPU.
        match unsafe { machine::start_cpu(next_index, cpu.hw_id, bottom, top, secondary_main) } {
            Ok(()) => next_index += 1,
            Err(e) => crate::kprintln!(
                "keel: CPU with hardware id {:#x} did not start: {e:?}",
                cpu.hw_id
            ),
        }
    }
}

fn secondary_main(index: CpuIndex) -> ! {
    let bottom = IDLE_STACKS[index].0.load(Ordering::Acquire);
    let top = IDLE_STACKS[index].1.load(Ordering::Acquire);
    sched::init_cpu(index, bottom, top);
    sched::idle_loop()
}

/// A broadcast in flight: the function and how many CPUs still owe it.
struct Call<'a> {
    func: &'a (dyn Fn() + Sync),
    pending: AtomicUsize,
    generation: u64,
}

static CALL: AtomicPtr<Call<'static>> = AtomicPtr::new(core::ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(0);
static SERVED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Run `func` on every online CPU: here (with interrupts masked) and on
/// the others in interrupt context; returns when all have. Call from
/// thread context with interrupts enabled. The calling CPU is fixed while
/// interrupts are masked, so "here" and "the others" are always all CPUs.
pub fn on_each_cpu(func: &(dyn Fn() + Sync)) {
    let _serial = ONE_AT_A_TIME.lock();
    let call;
    {
        let _irq = IrqGuard::new();
        func();
        let here = machine::current_cpu();
        let others = sched::online().filter(|&i| i != here).count();
        if others == 0 {
            return;
        }
        call = Call {
            func,
            pending: AtomicUsize::new(others),
            generation: GENERATION.fetch_add(1, Ordering::AcqRel) + 1,
        };
        // Published with its lifetime erased: it is unpublished before this
        // function returns, and no CPU touches it after decrementing `pending`.
        CALL.store(
            (&call as *const Call<'_>).cast_mut().cast(),
            Ordering::Release,
        );
        for i in sched::online().filter(|&i| i != here) {
            machine::send_ipi(i, Ipi::Call);
        }
    }
    // Wait with interrupts on: another CPU may be waiting for us to take
    // its IPI.
    while call.pending.load(Ordering::Acquire) != 0 {
        machine::spin_hint();
    }
    CALL.store(core::ptr::null_mut(), Ordering::Release);
}

/// The `Ipi::Call` handler.
pub(crate) fn on_call_ipi() {
    let p = CALL.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: a published request stays alive until every target CPU has
    // decremented `pending`, which this CPU does last, below.
    let call = unsafe { &*p };
    let me = &SERVED[machine::current_cpu()];
    if me.load(Ordering::Relaxed) >= call.generation {
        return; // a late duplicate IPI for a request we already served
    }
    me.store(call.generation, Ordering::Relaxed);
    (call.func)();
    call.pending.fetch_sub(1, Ordering::AcqRel);
}
