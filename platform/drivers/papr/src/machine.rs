//! The two ways into the hypervisor: `sc 1` and, through it, RTAS.

use core::arch::asm;

use keel_hal::boot::MAX_CPUS;
use keel_hal::machine;

use crate::hcall::{H_SUCCESS, KVMPPC_H_RTAS};
use crate::rtas::{self, BLOCK_CELLS, RtasError, Service};

/// Make hypervisor call `opcode` with up to seven arguments (r4..r10);
/// returns the status (r3) and r4..r10 as the hypervisor left them.
#[inline]
pub fn hcall(opcode: u64, args: [u64; 7]) -> (i64, [u64; 7]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g] = args;
    let mut status = opcode;
    // SAFETY: `sc 1` enters the hypervisor, which preserves the
    // non-volatile registers and the stack; everything volatile is listed.
    unsafe {
        asm!(
            "sc 1",
            inout("r3") status,
            inout("r4") a,
            inout("r5") b,
            inout("r6") c,
            inout("r7") d,
            inout("r8") e,
            inout("r9") f,
            inout("r10") g,
            out("r0") _,
            out("r11") _,
            out("r12") _,
            out("ctr") _,
            out("xer") _,
            out("cr0") _,
            out("cr1") _,
            out("cr5") _,
            out("cr6") _,
            out("cr7") _,
            options(nostack),
        );
    }
    (status as i64, [a, b, c, d, e, f, g])
}

/// One argument block per CPU: RTAS reads it by physical address, so it
/// must live in the direct map (a static), never on a thread stack.
#[repr(C, align(64))]
struct Blocks([[u32; BLOCK_CELLS]; MAX_CPUS]);

static mut BLOCKS: Blocks = Blocks([[0; BLOCK_CELLS]; MAX_CPUS]);

/// Call RTAS `service` with `args`; fills `rets` (whose first element is
/// the status) and fails if the status is negative.
pub fn rtas_call(service: Service, args: &[u32], rets: &mut [u32]) -> Result<(), RtasError> {
    let token = rtas::token(service).ok_or(RtasError::Missing(service))?;
    // Masked from first to last use of the block: the thread stays on
    // this CPU and no interrupt handler on it makes a call meanwhile.
    let were = machine::disable_interrupts();
    let cpu = machine::current_cpu().min(MAX_CPUS - 1);
    let blocks = &raw mut BLOCKS;
    // SAFETY: each CPU uses only its own block, one call at a time
    // (interrupts are masked until the block is read back).
    let block = unsafe { &mut (*blocks).0[cpu] };
    let result = rtas::encode(block, token, args, rets.len()).and_then(|()| {
        let phys = block.as_ptr() as u64 - machine::phys_map_base() as u64;
        match hcall(KVMPPC_H_RTAS, [phys, 0, 0, 0, 0, 0, 0]) {
            (H_SUCCESS, _) => rtas::decode(block, args.len(), rets),
            (status, _) => Err(RtasError::Hcall(status)),
        }
    });
    machine::restore_interrupts(were);
    result
}
