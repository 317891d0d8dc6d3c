//! Device interrupt handlers, registered by drivers and dispatched by line.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_hal::interrupt::IrqError;
use keel_hal::{CpuIndex, IrqLine, machine};

use crate::sync::SpinLock;

type Handler = Arc<dyn Fn() + Send + Sync>;

static HANDLERS: SpinLock<BTreeMap<u32, Handler>> = SpinLock::new(BTreeMap::new());
static UNHANDLED: AtomicU64 = AtomicU64::new(0);
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// Run `handler` (in interrupt context: no sleeping) whenever `line` fires,
/// delivered to `cpu`.
pub fn register(
    line: IrqLine,
    cpu: CpuIndex,
    handler: impl Fn() + Send + Sync + 'static,
) -> Result<(), IrqError> {
    HANDLERS.lock().insert(line.0, Arc::new(handler));
    machine::enable_irq(line, cpu)
}

/// Stop delivering `line` and forget its handler.
pub fn unregister(line: IrqLine) {
    machine::disable_irq(line);
    HANDLERS.lock().remove(&line.0);
}

pub(crate) fn dispatch(line: IrqLine) {
    let handler = HANDLERS.lock().get(&line.0).cloned();
    match handler {
        Some(h) => {
            HANDLED.fetch_add(1, Ordering::Relaxed);
            h();
        }
        None => {
            if UNHANDLED.fetch_add(1, Ordering::Relaxed) == 0 {
                crate::kprintln!(
                    "keel: interrupt on line {} with no handler (masked)",
                    line.0
                );
            }
            machine::disable_irq(line);
        }
    }
}

/// (handled, unhandled) device interrupts so far.
pub fn counts() -> (u64, u64) {
    (
        HANDLED.load(Ordering::Relaxed),
        UNHANDLED.load(Ordering::Relaxed),
    )
}
