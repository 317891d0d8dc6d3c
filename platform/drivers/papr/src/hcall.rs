//! Hypervisor call numbers and return codes (LoPAPR; QEMU's spapr).

/// Write up to 16 bytes to a virtual terminal.
pub const H_PUT_TERM_CHAR: u64 = 0x58;
/// Read up to 16 bytes from a virtual terminal.
pub const H_GET_TERM_CHAR: u64 = 0x54;
/// Give up the CPU until an interrupt arrives (enables MSR[EE]).
pub const H_CEDE: u64 = 0xe0;
/// XICS: signal end of interrupt.
pub const H_EOI: u64 = 0x64;
/// XICS: set this CPU's current processor priority.
pub const H_CPPR: u64 = 0x68;
/// XICS: raise an inter-processor interrupt (set a CPU's MFRR).
pub const H_IPI: u64 = 0x6c;
/// XICS: accept the pending interrupt (read XIRR).
pub const H_XIRR: u64 = 0x74;
/// Set a mode of the partition (interrupt endianness, address translation on interrupt).
pub const H_SET_MODE: u64 = 0x31c;
/// Register the process table (radix MMU).
pub const H_REGISTER_PROC_TBL: u64 = 0x37c;
/// QEMU/KVM: call RTAS with the argument block at the physical address in r4.
pub const KVMPPC_H_RTAS: u64 = 0xf000;

/// The call succeeded.
pub const H_SUCCESS: i64 = 0;
/// A parameter was wrong.
pub const H_PARAMETER: i64 = -4;

/// `H_SET_MODE` resource: the endianness interrupts are taken in.
pub const SET_MODE_RESOURCE_LE: u64 = 4;
/// `H_SET_MODE` resource: where interrupts land when translation is on.
pub const SET_MODE_RESOURCE_ADDR_TRANS_MODE: u64 = 3;
/// `H_SET_MODE` LE flag: little-endian interrupts.
pub const SET_MODE_ENDIAN_LITTLE: u64 = 1;
/// `H_SET_MODE` address translation mode 3: interrupts taken with
/// translation on at `0xc000_0000_0000_4000 + vector`.
pub const SET_MODE_AIL_C000_0000_0000_4000: u64 = 3;

/// `H_REGISTER_PROC_TBL` flags.
pub mod proc_tbl {
    /// Change the registration.
    pub const MODIFY: u64 = 0x10;
    /// Register (rather than deregister) a table.
    pub const REGISTER: u64 = 0x08;
    /// The table is for the radix MMU.
    pub const RADIX: u64 = 0x04;
}

/// A short name for an hcall status, for error messages.
pub fn status_name(status: i64) -> &'static str {
    match status {
        0 => "H_SUCCESS",
        1 => "H_BUSY",
        -1 => "H_HARDWARE",
        -2 => "H_FUNCTION (not supported)",
        -3 => "H_PRIVILEGE",
        -4 => "H_PARAMETER",
        -5 => "H_BAD_MODE",
        -9 => "H_P2",
        -10 => "H_P3",
        -11 => "H_P4",
        _ => "hcall error",
    }
}
