//! What differs between Linux on x86_64, aarch64 and ppc64: system call
//! numbers, which registers carry what, flag bits and structure layouts.
//! Every arch's table is compiled everywhere and tested on the host; the
//! running kernel picks its own by `keel_hal::machine::arch_name()`.

mod numbers_aarch64;
mod numbers_ppc64;
mod numbers_x86_64;

use keel_fs::{Metadata, OpenFlags};

/// The order of clone(2)'s last three arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneOrder {
    /// flags, stack, parent_tid, child_tid, tls (x86_64).
    ChildTidThenTls,
    /// flags, stack, parent_tid, tls, child_tid (aarch64, ppc64).
    TlsThenChildTid,
}

/// How system calls report errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorConvention {
    /// The return register holds -errno (x86_64, aarch64).
    Negative,
    /// The return register holds +errno and CR0.SO is set (ppc64).
    PositiveWithSummaryOverflow,
}

/// One architecture's Linux ABI.
pub struct Abi {
    /// Name as `keel_hal::machine::arch_name()` reports it.
    pub name: &'static str,
    /// (number, name) of every system call.
    pub numbers: &'static [(u32, &'static str)],
    /// `AppFrame::gpr` index holding the system call number.
    pub nr_reg: usize,
    /// `AppFrame::gpr` indices of the six arguments.
    pub arg_regs: [usize; 6],
    /// `AppFrame::gpr` index of the return value.
    pub ret_reg: usize,
    /// clone(2) argument order.
    pub clone_order: CloneOrder,
    /// Error reporting.
    pub errors: ErrorConvention,
    /// Thread pointer lives in a general register (ppc64 r13) rather than
    /// a special one.
    pub tls_reg: Option<usize>,
    /// O_DIRECTORY, O_NOFOLLOW, O_DIRECT, O_LARGEFILE for this arch.
    pub o_directory: u32,
    /// See `o_directory`.
    pub o_nofollow: u32,
    /// See `o_directory`.
    pub o_direct: u32,
    /// See `o_directory`.
    pub o_largefile: u32,
    /// MAP_NORESERVE.
    pub map_noreserve: u32,
    /// MAP_LOCKED.
    pub map_locked: u32,
    /// `struct stat` layout.
    pub stat: StatLayout,
    /// TCGETS, TIOCGWINSZ, FIONREAD, FIONBIO, TCSETS.
    pub ioctl: Ioctls,
    /// AT_PLATFORM string (ppc64: the oldest CPU it names; see
    /// [`Abi::platform_for`]).
    pub platform: &'static str,
    /// MINSIGSTKSZ reported through AT_MINSIGSTKSZ (0: the arch has no such entry).
    pub min_sigstack: u64,
    /// ELF e_machine.
    pub elf_machine: u16,
    /// sizeof(struct epoll_event): packed (12) on x86_64, 16 elsewhere.
    pub epoll_event_size: usize,
    /// SOL_SOCKET option numbers 16..=21 are in powerpc's order (RCVLOWAT,
    /// SNDLOWAT, RCVTIMEO, SNDTIMEO, PASSCRED, PEERCRED) rather than the
    /// generic one (PASSCRED, PEERCRED, RCVLOWAT, SNDLOWAT, RCVTIMEO, SNDTIMEO).
    pub sockopt_powerpc: bool,
}

/// Where `struct stat` keeps its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatLayout {
    /// 144 bytes, nlink is 64-bit at 16 (x86_64, ppc64).
    Wide,
    /// 128 bytes, asm-generic (aarch64).
    Generic,
}

/// ioctl numbers that differ per arch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioctls {
    /// TCGETS.
    pub tcgets: u32,
    /// TCSETS (and TCSETSW/TCSETSF follow).
    pub tcsets: u32,
    /// TIOCGWINSZ.
    pub tiocgwinsz: u32,
    /// FIONREAD.
    pub fionread: u32,
    /// FIONBIO.
    pub fionbio: u32,
    /// FIOCLEX.
    pub fioclex: u32,
    /// FIONCLEX.
    pub fionclex: u32,
    /// Bytes of `struct termios` as TCGETS copies it.
    pub termios_size: usize,
}

const GENERIC_IOCTLS: Ioctls = Ioctls {
    tcgets: 0x5401,
    tcsets: 0x5402,
    tiocgwinsz: 0x5413,
    fionread: 0x541b,
    fionbio: 0x5421,
    fioclex: 0x5451,
    fionclex: 0x5450,
    termios_size: 36,
};

/// x86_64.
pub static X86_64: Abi = Abi {
    name: "x86_64",
    numbers: numbers_x86_64::SYSCALLS,
    // gpr order: rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 ...
    nr_reg: 0,
    arg_regs: [5, 4, 3, 10, 8, 9],
    ret_reg: 0,
    clone_order: CloneOrder::ChildTidThenTls,
    errors: ErrorConvention::Negative,
    tls_reg: None,
    o_directory: 0o200000,
    o_nofollow: 0o400000,
    o_direct: 0o40000,
    o_largefile: 0o100000,
    map_noreserve: 0x4000,
    map_locked: 0x2000,
    stat: StatLayout::Wide,
    ioctl: GENERIC_IOCTLS,
    platform: "x86_64",
    min_sigstack: 2048,
    elf_machine: 62,
    epoll_event_size: 12,
    sockopt_powerpc: false,
};

/// aarch64.
pub static AARCH64: Abi = Abi {
    name: "aarch64",
    numbers: numbers_aarch64::SYSCALLS,
    // gpr order: x0..x30; x8 carries the number.
    nr_reg: 8,
    arg_regs: [0, 1, 2, 3, 4, 5],
    ret_reg: 0,
    clone_order: CloneOrder::TlsThenChildTid,
    errors: ErrorConvention::Negative,
    tls_reg: None,
    o_directory: 0o40000,
    o_nofollow: 0o100000,
    o_direct: 0o200000,
    o_largefile: 0o400000,
    map_noreserve: 0x4000,
    map_locked: 0x2000,
    stat: StatLayout::Generic,
    ioctl: GENERIC_IOCTLS,
    platform: "aarch64",
    min_sigstack: 5120,
    elf_machine: 183,
    epoll_event_size: 16,
    sockopt_powerpc: false,
};

/// ppc64 (little-endian).
pub static PPC64: Abi = Abi {
    name: "ppc64",
    numbers: numbers_ppc64::SYSCALLS,
    // gpr order: r0..r31; r0 carries the number, r3..r8 the arguments.
    nr_reg: 0,
    arg_regs: [3, 4, 5, 6, 7, 8],
    ret_reg: 3,
    clone_order: CloneOrder::TlsThenChildTid,
    errors: ErrorConvention::PositiveWithSummaryOverflow,
    tls_reg: Some(13),
    o_directory: 0o40000,
    o_nofollow: 0o100000,
    o_direct: 0o400000,
    o_largefile: 0o200000,
    map_noreserve: 0x40,
    map_locked: 0x80,
    stat: StatLayout::Wide,
    ioctl: Ioctls {
        tcgets: 0x402c_7413,
        tcsets: 0x802c_7414,
        tiocgwinsz: 0x4008_7468,
        fionread: 0x4004_667f,
        fionbio: 0x8004_667e,
        fioclex: 0x2000_6601,
        fionclex: 0x2000_6602,
        termios_size: 44,
    },
    platform: "power8",
    min_sigstack: 0,
    elf_machine: 21,
    epoll_event_size: 16,
    sockopt_powerpc: true,
};

/// The ABI of the arch named `name`.
pub fn by_name(name: &str) -> Option<&'static Abi> {
    [&X86_64, &AARCH64, &PPC64]
        .into_iter()
        .find(|a| a.name == name)
}

impl Abi {
    /// AT_PLATFORM for a CPU with these AT_HWCAP2 bits: Linux names the
    /// POWER generation ("power9", "power10"), which on ppc64 follows
    /// the ISA level the hwcaps report.
    pub fn platform_for(&self, hwcap2: u64) -> &'static str {
        const PPC_FEATURE2_ARCH_3_00: u64 = 0x0080_0000;
        const PPC_FEATURE2_ARCH_3_1: u64 = 0x0004_0000;
        match self.name {
            "ppc64" if hwcap2 & PPC_FEATURE2_ARCH_3_1 != 0 => "power10",
            "ppc64" if hwcap2 & PPC_FEATURE2_ARCH_3_00 != 0 => "power9",
            _ => self.platform,
        }
    }

    /// Name of system call `nr`, if the arch has one.
    pub fn syscall_name(&self, nr: u64) -> Option<&'static str> {
        let nr = u32::try_from(nr).ok()?;
        self.numbers
            .binary_search_by_key(&nr, |&(n, _)| n)
            .ok()
            .map(|i| self.numbers[i].1)
    }

    /// Number of system call `name` on this arch.
    pub fn syscall_number(&self, name: &str) -> Option<u32> {
        self.numbers
            .iter()
            .find(|(_, n)| *n == name)
            .map(|&(nr, _)| nr)
    }

    /// A SOL_SOCKET option number in the generic numbering the socket code
    /// uses (other levels pass through).
    pub fn generic_sockopt(&self, level: i32, name: i32) -> i32 {
        const SOL_SOCKET: i32 = 1;
        if level != SOL_SOCKET || !self.sockopt_powerpc {
            return name;
        }
        match name {
            16 => 18, // SO_RCVLOWAT
            17 => 19, // SO_SNDLOWAT
            18 => 20, // SO_RCVTIMEO
            19 => 21, // SO_SNDTIMEO
            20 => 16, // SO_PASSCRED
            21 => 17, // SO_PEERCRED
            n => n,
        }
    }

    /// Decode open(2) flags.
    pub fn open_flags(&self, raw: u32) -> Result<(OpenFlags, bool), crate::errno::Errno> {
        const O_ACCMODE: u32 = 3;
        const O_CREAT: u32 = 0o100;
        const O_EXCL: u32 = 0o200;
        const O_NOCTTY: u32 = 0o400;
        const O_TRUNC: u32 = 0o1000;
        const O_APPEND: u32 = 0o2000;
        const O_NONBLOCK: u32 = 0o4000;
        const O_DSYNC: u32 = 0o10000;
        const O_ASYNC: u32 = 0o20000;
        const O_NOATIME: u32 = 0o1000000;
        const O_CLOEXEC: u32 = 0o2000000;
        const O_SYNC: u32 = 0o4000000;
        const O_PATH: u32 = 0o10000000;
        const O_TMPFILE: u32 = 0o20000000;
        let known = O_ACCMODE
            | O_CREAT
            | O_EXCL
            | O_NOCTTY
            | O_TRUNC
            | O_APPEND
            | O_NONBLOCK
            | O_DSYNC
            | O_NOATIME
            | O_CLOEXEC
            | O_SYNC
            | O_PATH
            | self.o_directory
            | self.o_nofollow
            | self.o_direct
            | self.o_largefile;
        if raw & (O_TMPFILE | O_ASYNC) != 0 || raw & !known != 0 || raw & O_ACCMODE == 3 {
            // O_TMPFILE and O_ASYNC are not supported; unknown bits are refused.
            return Err(crate::errno::Errno::EINVAL);
        }
        let acc = raw & O_ACCMODE;
        let path = raw & O_PATH != 0;
        let flags = OpenFlags {
            read: !path && (acc == 0 || acc == 2),
            write: !path && (acc == 1 || acc == 2),
            append: raw & O_APPEND != 0,
            nonblock: raw & O_NONBLOCK != 0,
            create: raw & O_CREAT != 0,
            exclusive: raw & O_EXCL != 0,
            truncate: raw & O_TRUNC != 0,
            directory: raw & self.o_directory != 0,
            nofollow: raw & self.o_nofollow != 0,
            path_only: path,
        };
        Ok((flags, raw & O_CLOEXEC != 0))
    }

    /// The flags F_GETFL reports for an open file.
    pub fn status_flags(&self, read: bool, write: bool, nonblock: bool, append: bool) -> u32 {
        let acc = match (read, write) {
            (true, true) => 2,
            (false, true) => 1,
            _ => 0,
        };
        acc | if nonblock { 0o4000 } else { 0 } | if append { 0o2000 } else { 0 } | self.o_largefile
    }

    /// Encode `struct stat`.
    pub fn encode_stat(&self, m: &Metadata, out: &mut [u8; 144]) -> usize {
        out.fill(0);
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &m.dev.to_le_bytes());
        put(8, &m.ino.to_le_bytes());
        let times = [(72, m.atime), (88, m.mtime), (104, m.ctime)];
        match self.stat {
            StatLayout::Wide => {
                put(16, &u64::from(m.nlink).to_le_bytes());
                put(24, &m.mode.to_le_bytes());
                put(28, &m.uid.to_le_bytes());
                put(32, &m.gid.to_le_bytes());
                put(40, &m.rdev.to_le_bytes());
                put(48, &m.size.to_le_bytes());
                put(56, &u64::from(m.blksize).to_le_bytes());
                put(64, &m.blocks.to_le_bytes());
            }
            StatLayout::Generic => {
                put(16, &m.mode.to_le_bytes());
                put(20, &m.nlink.to_le_bytes());
                put(24, &m.uid.to_le_bytes());
                put(28, &m.gid.to_le_bytes());
                put(32, &m.rdev.to_le_bytes());
                put(48, &m.size.to_le_bytes());
                put(56, &m.blksize.to_le_bytes());
                put(64, &m.blocks.to_le_bytes());
            }
        }
        for (at, t) in times {
            put(at, &t.sec.to_le_bytes());
            put(at + 8, &u64::from(t.nsec).to_le_bytes());
        }
        match self.stat {
            StatLayout::Wide => 144,
            StatLayout::Generic => 128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_spot_checks_hold() {
        for abi in [&X86_64, &AARCH64, &PPC64] {
            assert!(
                abi.numbers.windows(2).all(|w| w[0].0 < w[1].0),
                "{} table sorted",
                abi.name
            );
            assert!(abi.numbers.len() > 250, "{} table looks complete", abi.name);
        }
        let check = |abi: &Abi, name: &str, nr: u32| {
            assert_eq!(abi.syscall_number(name), Some(nr), "{} {name}", abi.name)
        };
        check(&X86_64, "read", 0);
        check(&X86_64, "openat", 257);
        check(&X86_64, "exit_group", 231);
        check(&X86_64, "arch_prctl", 158);
        check(&AARCH64, "openat", 56);
        check(&AARCH64, "newfstatat", 79);
        check(&AARCH64, "mmap", 222);
        check(&PPC64, "read", 3);
        check(&PPC64, "mmap", 90);
        check(&PPC64, "rt_sigreturn", 172);
        assert_eq!(PPC64.platform_for(0x8000_0000 | 0x0080_0000), "power9");
        assert_eq!(PPC64.platform_for(0x8080_0000 | 0x0004_0000), "power10");
        assert_eq!(X86_64.platform_for(u64::MAX), "x86_64");
        assert_eq!(X86_64.syscall_name(231), Some("exit_group"));
        assert_eq!(X86_64.syscall_name(1 << 40), None);
    }

    #[test]
    fn powerpc_socket_options_are_renumbered() {
        assert_eq!(PPC64.generic_sockopt(1, 18), 20);
        assert_eq!(PPC64.generic_sockopt(1, 21), 17);
        assert_eq!(PPC64.generic_sockopt(6, 18), 18);
        assert_eq!(X86_64.generic_sockopt(1, 20), 20);
        assert_eq!(AARCH64.generic_sockopt(1, 2), 2);
    }

    #[test]
    fn open_flags_differ_per_arch() {
        let (x, _) = X86_64.open_flags(0o200000).unwrap();
        assert!(x.directory);
        let (a, _) = AARCH64.open_flags(0o40000).unwrap();
        assert!(a.directory);
        let (a2, _) = AARCH64.open_flags(0o200000).unwrap(); // O_DIRECT there
        assert!(!a2.directory);
        let (_, cloexec) = PPC64.open_flags(0o2000000 | 2).unwrap();
        assert!(cloexec);
        assert_eq!(
            X86_64.open_flags(3).unwrap_err(),
            crate::errno::Errno::EINVAL
        );
        assert_eq!(
            X86_64.open_flags(0o20000000 | 0o200000 | 2).unwrap_err(),
            crate::errno::Errno::EINVAL
        );
    }

    #[test]
    fn stat_layouts() {
        let m = Metadata {
            ino: 7,
            mode: 0o100644,
            nlink: 3,
            size: 4096,
            blksize: 4096,
            ..Default::default()
        };
        let mut b = [0u8; 144];
        assert_eq!(X86_64.encode_stat(&m, &mut b), 144);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 0o100644);
        assert_eq!(AARCH64.encode_stat(&m, &mut b), 128);
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 0o100644);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 3);
    }
}
