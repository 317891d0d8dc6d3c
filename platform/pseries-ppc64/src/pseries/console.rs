//! The console: the hypervisor's virtual terminal (`hvterm1`), written
//! and read 16 bytes at a time with `H_PUT_TERM_CHAR`/`H_GET_TERM_CHAR`.

use core::sync::atomic::{AtomicU32, Ordering};

use keel_core::sync::SpinLock;
use keel_driver_papr::hcall::{H_GET_TERM_CHAR, H_PUT_TERM_CHAR, H_SUCCESS};
use keel_driver_papr::{hcall, term};

use crate::pseries::firmware::DEFAULT_VTY;

static VTY: AtomicU32 = AtomicU32::new(DEFAULT_VTY);

/// Bytes read from the terminal but not yet handed out.
static PENDING: SpinLock<([u8; term::CHUNK], usize, usize)> =
    SpinLock::new(([0; term::CHUNK], 0, 0));

/// Use the vty at unit address `unit`.
pub fn set_vty(unit: u32) {
    VTY.store(unit, Ordering::Relaxed);
}

/// Write bytes (no locking: core serialises lines; panics write directly).
pub fn write(bytes: &[u8]) {
    let vty = u64::from(VTY.load(Ordering::Relaxed));
    for chunk in bytes.chunks(term::CHUNK) {
        let (hi, lo) = term::pack(chunk);
        // H_BUSY: the terminal is full; try again a bounded number of times.
        for _ in 0..1000 {
            let (status, _) = hcall(H_PUT_TERM_CHAR, [vty, chunk.len() as u64, hi, lo, 0, 0, 0]);
            if status <= H_SUCCESS {
                break;
            }
        }
    }
}

/// A byte from the console, if one is waiting.
pub fn read() -> Option<u8> {
    let mut p = PENDING.lock();
    if p.1 == p.2 {
        let vty = u64::from(VTY.load(Ordering::Relaxed));
        let (status, out) = hcall(H_GET_TERM_CHAR, [vty, 0, 0, 0, 0, 0, 0]);
        if status != H_SUCCESS || out[0] == 0 {
            return None;
        }
        let (buf, n) = term::unpack(out[0], out[1], out[2]);
        *p = (buf, 0, n);
    }
    let b = p.0[p.1];
    p.1 += 1;
    Some(b)
}
