//! System call dispatch. `IMPLEMENTED` is the single list of what Keel
//! implements (name, handler, how completely); each arch's number table
//! maps onto it at boot, and docs/syscalls.md is checked against it.
//! Anything else is ENOSYS, logged once with its name.

mod fs;
pub(crate) mod misc;
mod mm;
mod net;
mod poll;
mod signal;
#[cfg(test)]
mod table;
mod threads;
mod time;

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use keel_core::sync::SpinLock;
use keel_hal::AppFrame;

use crate::abi::{Abi, ErrorConvention};
use crate::errno::{Errno, SysResult};
use crate::process;

/// One system call in progress.
pub struct Call<'a> {
    /// The six argument registers.
    pub args: [u64; 6],
    /// The app's registers (rt_sigreturn and clone read or replace them).
    pub frame: &'a mut AppFrame,
    /// The arch's ABI.
    pub abi: &'static Abi,
    /// Set by handlers that rewrote the whole frame (rt_sigreturn): the
    /// return register is then left alone.
    pub frame_replaced: bool,
}

impl Call<'_> {
    /// Argument `i` as a signed integer (file descriptors, dirfds, offsets).
    pub fn int(&self, i: usize) -> i64 {
        self.args[i] as i64
    }
    /// Argument `i` as a 32-bit int, sign-extended like the C ABI does.
    pub fn i32(&self, i: usize) -> i32 {
        self.args[i] as i32
    }
}

/// A system call implementation.
pub type Handler = fn(&mut Call<'_>) -> SysResult;

/// How completely a system call is implemented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// As on Linux.
    Full,
    /// Implemented with the stated gaps.
    Partial(&'static str),
}

/// Every implemented system call, by its Linux name.
pub const IMPLEMENTED: &[(&str, Handler, Status)] = &[
    // Files.
    ("read", fs::read, Status::Full),
    ("write", fs::write, Status::Full),
    ("open", fs::open, Status::Full),
    (
        "openat",
        fs::openat,
        Status::Partial("no O_TMPFILE or O_ASYNC (EINVAL)"),
    ),
    ("creat", fs::creat, Status::Full),
    ("close", fs::close, Status::Full),
    ("close_range", fs::close_range, Status::Full),
    ("pread64", fs::pread64, Status::Full),
    ("pwrite64", fs::pwrite64, Status::Full),
    ("readv", fs::readv, Status::Full),
    ("writev", fs::writev, Status::Full),
    ("preadv", fs::preadv, Status::Full),
    ("pwritev", fs::pwritev, Status::Full),
    (
        "lseek",
        fs::lseek,
        Status::Partial("SEEK_DATA/SEEK_HOLE see files as having no holes"),
    ),
    (
        "_llseek",
        fs::llseek,
        Status::Partial("SEEK_DATA/SEEK_HOLE see files as having no holes"),
    ),
    ("fstat", fs::fstat, Status::Full),
    ("stat", fs::stat, Status::Full),
    ("lstat", fs::lstat, Status::Full),
    ("newfstatat", fs::newfstatat, Status::Full),
    ("statx", fs::statx, Status::Full),
    ("getdents64", fs::getdents64, Status::Full),
    ("mkdir", fs::mkdir, Status::Full),
    ("mkdirat", fs::mkdirat, Status::Full),
    ("rmdir", fs::rmdir, Status::Full),
    ("unlink", fs::unlink, Status::Full),
    ("unlinkat", fs::unlinkat, Status::Full),
    ("rename", fs::rename, Status::Full),
    ("renameat", fs::renameat, Status::Full),
    (
        "renameat2",
        fs::renameat2,
        Status::Partial("RENAME_NOREPLACE only; RENAME_EXCHANGE/WHITEOUT are EINVAL"),
    ),
    ("readlink", fs::readlink, Status::Full),
    ("readlinkat", fs::readlinkat, Status::Full),
    ("symlink", fs::symlink, Status::Full),
    ("symlinkat", fs::symlinkat, Status::Full),
    ("link", fs::link, Status::Full),
    ("linkat", fs::linkat, Status::Full),
    ("access", fs::access, Status::Full),
    ("faccessat", fs::faccessat, Status::Full),
    ("faccessat2", fs::faccessat2, Status::Full),
    ("chmod", fs::chmod, Status::Full),
    ("fchmod", fs::fchmod, Status::Full),
    ("fchmodat", fs::fchmodat, Status::Full),
    ("chown", fs::chown, Status::Full),
    ("fchown", fs::fchown, Status::Full),
    ("lchown", fs::lchown, Status::Full),
    ("fchownat", fs::fchownat, Status::Full),
    (
        "fcntl",
        fs::fcntl,
        Status::Partial(
            "POSIX record locks always succeed (one process: they cannot conflict); no OFD locks, leases, notifications or seals (EINVAL)",
        ),
    ),
    ("dup", fs::dup, Status::Full),
    ("dup2", fs::dup2, Status::Full),
    ("dup3", fs::dup3, Status::Full),
    (
        "ioctl",
        fs::ioctl,
        Status::Partial(
            "TCGETS/TCSETS* (stored; the serial console has no line discipline), TIOCGWINSZ, FIONREAD, FIONBIO, FIOCLEX/FIONCLEX; else ENOTTY",
        ),
    ),
    ("getcwd", fs::getcwd, Status::Full),
    ("chdir", fs::chdir, Status::Full),
    ("fchdir", fs::fchdir, Status::Full),
    ("truncate", fs::truncate, Status::Full),
    ("ftruncate", fs::ftruncate, Status::Full),
    (
        "fallocate",
        fs::fallocate,
        Status::Partial("mode 0 and FALLOC_FL_KEEP_SIZE; other modes EOPNOTSUPP"),
    ),
    ("fsync", fs::fsync, Status::Full),
    ("fdatasync", fs::fsync, Status::Full),
    ("sync", fs::sync, Status::Full),
    ("syncfs", fs::fsync, Status::Full),
    ("umask", fs::umask, Status::Full),
    ("utimensat", fs::utimensat, Status::Full),
    ("statfs", fs::statfs, Status::Full),
    ("fstatfs", fs::fstatfs, Status::Full),
    ("pipe", fs::pipe, Status::Full),
    ("pipe2", fs::pipe2, Status::Full),
    ("sendfile", fs::sendfile, Status::Full),
    ("fadvise64", fs::fadvise64, Status::Full),
    ("readahead", fs::readahead, Status::Full),
    // Memory.
    (
        "mmap",
        mm::mmap,
        Status::Partial(
            "no MAP_HUGETLB (EINVAL); MAP_LOCKED/MAP_POPULATE/MAP_NORESERVE accepted as hints",
        ),
    ),
    ("munmap", mm::munmap, Status::Full),
    ("mprotect", mm::mprotect, Status::Full),
    (
        "mremap",
        mm::mremap,
        Status::Partial("no MREMAP_DONTUNMAP and no old_size 0 duplication (EINVAL)"),
    ),
    (
        "madvise",
        mm::madvise,
        Status::Partial(
            "MADV_DONTNEED/FREE drop pages; hints with nothing to act on (no swap, fork or dumps) are accepted",
        ),
    ),
    ("brk", mm::brk, Status::Full),
    ("mincore", mm::mincore, Status::Full),
    ("msync", mm::msync, Status::Full),
    ("mlock", mm::mlock, Status::Full),
    ("munlock", mm::mlock, Status::Full),
    // Threads and processes.
    (
        "clone",
        threads::clone,
        Status::Partial("threads only (CLONE_VM|CLONE_THREAD...); fork-like clones are ENOSYS"),
    ),
    (
        "clone3",
        threads::clone3,
        Status::Partial("threads only, as clone"),
    ),
    (
        "fork",
        threads::fork,
        Status::Partial("always ENOSYS: Keel runs one address space"),
    ),
    (
        "vfork",
        threads::fork,
        Status::Partial("always ENOSYS: Keel runs one address space"),
    ),
    (
        "execve",
        threads::execve,
        Status::Partial("always ENOSYS: Keel runs one program"),
    ),
    (
        "wait4",
        threads::wait4,
        Status::Partial("there are never children: ECHILD"),
    ),
    ("set_tid_address", threads::set_tid_address, Status::Full),
    ("set_robust_list", threads::set_robust_list, Status::Full),
    ("get_robust_list", threads::get_robust_list, Status::Full),
    (
        "futex",
        threads::futex,
        Status::Partial(
            "WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, WAIT_BITSET, WAKE_BITSET; PI ops without priority inheritance",
        ),
    ),
    ("exit", threads::exit, Status::Full),
    ("exit_group", threads::exit_group, Status::Full),
    ("gettid", threads::gettid, Status::Full),
    ("getpid", threads::getpid, Status::Full),
    ("getppid", threads::getppid, Status::Full),
    ("tgkill", signal::tgkill, Status::Full),
    ("tkill", signal::tkill, Status::Full),
    (
        "kill",
        signal::kill,
        Status::Partial("only the process itself (pid 1 or 0)"),
    ),
    ("sched_yield", threads::sched_yield, Status::Full),
    (
        "sched_getaffinity",
        threads::sched_getaffinity,
        Status::Full,
    ),
    (
        "sched_setaffinity",
        threads::sched_setaffinity,
        Status::Partial("checked and accepted; threads are not pinned"),
    ),
    (
        "sched_getscheduler",
        threads::sched_getscheduler,
        Status::Full,
    ),
    ("sched_getparam", threads::sched_getparam, Status::Full),
    ("getpriority", threads::getpriority, Status::Full),
    (
        "setpriority",
        threads::setpriority,
        Status::Partial("accepted; the scheduler has no priorities"),
    ),
    // Time.
    ("nanosleep", time::nanosleep, Status::Full),
    ("clock_nanosleep", time::clock_nanosleep, Status::Full),
    ("clock_gettime", time::clock_gettime, Status::Full),
    ("clock_getres", time::clock_getres, Status::Full),
    ("gettimeofday", time::gettimeofday, Status::Full),
    ("time", time::time, Status::Full),
    ("times", time::times, Status::Full),
    (
        "getrusage",
        time::getrusage,
        Status::Partial("CPU times only"),
    ),
    // Signals.
    ("rt_sigaction", signal::rt_sigaction, Status::Full),
    ("rt_sigprocmask", signal::rt_sigprocmask, Status::Full),
    ("rt_sigreturn", signal::rt_sigreturn, Status::Full),
    ("sigaltstack", signal::sigaltstack, Status::Full),
    ("rt_sigpending", signal::rt_sigpending, Status::Full),
    ("rt_sigsuspend", signal::rt_sigsuspend, Status::Full),
    ("rt_sigtimedwait", signal::rt_sigtimedwait, Status::Full),
    // Polling and event objects.
    ("poll", poll::poll, Status::Full),
    ("ppoll", poll::ppoll, Status::Full),
    ("select", poll::select, Status::Full),
    ("pselect6", poll::pselect6, Status::Full),
    ("epoll_create", poll::epoll_create, Status::Full),
    ("epoll_create1", poll::epoll_create1, Status::Full),
    (
        "epoll_ctl",
        poll::epoll_ctl,
        Status::Partial("EPOLLEXCLUSIVE accepted as plain registration"),
    ),
    ("epoll_wait", poll::epoll_wait, Status::Full),
    ("epoll_pwait", poll::epoll_pwait, Status::Full),
    ("epoll_pwait2", poll::epoll_pwait2, Status::Full),
    ("eventfd", poll::eventfd, Status::Full),
    ("eventfd2", poll::eventfd2, Status::Full),
    ("timerfd_create", poll::timerfd_create, Status::Full),
    (
        "timerfd_settime",
        poll::timerfd_settime,
        Status::Partial("no TFD_TIMER_CANCEL_ON_SET"),
    ),
    ("timerfd_gettime", poll::timerfd_gettime, Status::Full),
    // Sockets.
    (
        "socket",
        net::socket,
        Status::Partial(
            "AF_UNIX (stream, dgram), AF_INET and AF_INET6 (TCP, UDP); SOCK_SEQPACKET, SOCK_RAW and other families are refused",
        ),
    ),
    (
        "socketpair",
        net::socketpair,
        Status::Partial("AF_UNIX stream and dgram"),
    ),
    ("bind", net::bind, Status::Full),
    (
        "listen",
        net::listen,
        Status::Partial("TCP backlog capped at 64 pending connections; more are refused"),
    ),
    ("accept", net::accept, Status::Full),
    ("accept4", net::accept4, Status::Full),
    ("connect", net::connect, Status::Full),
    (
        "sendto",
        net::sendto,
        Status::Partial("MSG_DONTWAIT, MSG_NOSIGNAL, MSG_MORE, MSG_EOR; MSG_OOB is EOPNOTSUPP"),
    ),
    ("send", net::send, Status::Partial("as sendto")),
    (
        "sendmsg",
        net::sendmsg,
        Status::Partial("no ancillary data (SCM_RIGHTS/SCM_CREDENTIALS: EINVAL)"),
    ),
    (
        "recvfrom",
        net::recvfrom,
        Status::Partial("MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC; MSG_OOB is EOPNOTSUPP"),
    ),
    ("recv", net::recv, Status::Partial("as recvfrom")),
    (
        "recvmsg",
        net::recvmsg,
        Status::Partial("as recvfrom; never returns ancillary data"),
    ),
    ("sendmmsg", net::sendmmsg, Status::Partial("as sendmsg")),
    (
        "recvmmsg",
        net::recvmmsg,
        Status::Partial("as recvmsg; MSG_WAITFORONE"),
    ),
    ("socketcall", net::socketcall, Status::Full),
    ("shutdown", net::shutdown, Status::Full),
    ("getsockname", net::getsockname, Status::Full),
    ("getpeername", net::getpeername, Status::Full),
    (
        "setsockopt",
        net::setsockopt,
        Status::Partial(
            "SO_REUSEADDR/REUSEPORT/KEEPALIVE/BROADCAST/RCVBUF/SNDBUF/LINGER/RCVTIMEO/SNDTIMEO/PASSCRED, TCP_NODELAY/KEEPIDLE/KEEPINTVL/KEEPCNT, IP_TTL, IPV6_UNICAST_HOPS, IPV6_V6ONLY; else ENOPROTOOPT",
        ),
    ),
    (
        "getsockopt",
        net::getsockopt,
        Status::Partial(
            "the options setsockopt takes, plus SO_TYPE/ERROR/DOMAIN/PROTOCOL/ACCEPTCONN/PEERCRED",
        ),
    ),
    // Identity, limits, misc.
    ("getrandom", misc::getrandom, Status::Full),
    ("uname", misc::uname, Status::Full),
    ("sysinfo", misc::sysinfo, Status::Full),
    ("getrlimit", misc::getrlimit, Status::Full),
    ("ugetrlimit", misc::getrlimit, Status::Full),
    ("setrlimit", misc::setrlimit, Status::Full),
    ("prlimit64", misc::prlimit64, Status::Full),
    ("getuid", misc::getuid, Status::Full),
    ("geteuid", misc::geteuid, Status::Full),
    ("getgid", misc::getgid, Status::Full),
    ("getegid", misc::getegid, Status::Full),
    ("getresuid", misc::getresuid, Status::Full),
    ("getresgid", misc::getresgid, Status::Full),
    ("getgroups", misc::getgroups, Status::Full),
    ("setgroups", misc::setgroups, Status::Full),
    (
        "setuid",
        misc::setuid,
        Status::Partial(
            "identity is recorded and reported; file permissions are not enforced (one app per VM)",
        ),
    ),
    ("setgid", misc::setgid, Status::Partial("as setuid")),
    ("setresuid", misc::setresuid, Status::Partial("as setuid")),
    ("setresgid", misc::setresgid, Status::Partial("as setuid")),
    ("setreuid", misc::setreuid, Status::Partial("as setuid")),
    ("setregid", misc::setregid, Status::Partial("as setuid")),
    ("getpgid", misc::getpgid, Status::Full),
    ("getpgrp", misc::getpgrp, Status::Full),
    ("getsid", misc::getpgid, Status::Full),
    ("setsid", misc::setsid, Status::Full),
    (
        "setpgid",
        misc::setpgid,
        Status::Partial("the process is its own group; only that is accepted"),
    ),
    (
        "arch_prctl",
        misc::arch_prctl,
        Status::Partial("ARCH_SET_FS/GET_FS; ARCH_SET_GS is EINVAL (GS is the kernel's)"),
    ),
    (
        "prctl",
        misc::prctl,
        Status::Partial(
            "NAME, DUMPABLE, PDEATHSIG, NO_NEW_PRIVS, CHILD_SUBREAPER, CAPBSET_READ, GET_SECCOMP; else EINVAL",
        ),
    ),
    ("membarrier", misc::membarrier, Status::Full),
    (
        "rseq",
        misc::enosys_quietly,
        Status::Partial("ENOSYS (allowed by the Linux ABI; glibc falls back)"),
    ),
    (
        "sched_get_priority_max",
        misc::sched_get_priority_max,
        Status::Full,
    ),
    (
        "sched_get_priority_min",
        misc::sched_get_priority_min,
        Status::Full,
    ),
];

struct Table {
    handlers: Vec<Option<Handler>>,
    warned: SpinLock<BTreeSet<u64>>,
}

static TABLE: spin::Once<Table> = spin::Once::new();

/// Build this arch's dispatch table.
pub fn init(abi: &'static Abi) {
    TABLE.call_once(|| {
        let max = abi.numbers.last().map_or(0, |&(n, _)| n as usize);
        let mut handlers = alloc::vec![None; max + 1];
        for &(nr, name) in abi.numbers {
            handlers[nr as usize] = IMPLEMENTED
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|&(_, h, _)| h);
        }
        Table {
            handlers,
            warned: SpinLock::new(BTreeSet::new()),
        }
    });
}

fn unimplemented(abi: &Abi, nr: u64) -> SysResult {
    let table = TABLE.get().expect("dispatch table built");
    if table.warned.lock().insert(nr) {
        match abi.syscall_name(nr) {
            Some(name) => {
                keel_core::kprintln!("keel: {name} (system call {nr}) is not implemented: ENOSYS")
            }
            None => keel_core::kprintln!("keel: unknown system call {nr}: ENOSYS"),
        }
    }
    Err(Errno::ENOSYS)
}

/// Put a result in the frame per the arch's convention.
pub fn set_return(abi: &Abi, frame: &mut AppFrame, r: SysResult) {
    const CR0_SO: u64 = 1 << 28;
    match abi.errors {
        ErrorConvention::Negative => {
            frame.gpr[abi.ret_reg] = match r {
                Ok(v) => v as u64,
                Err(e) => (-(e.0 as i64)) as u64,
            }
        }
        ErrorConvention::PositiveWithSummaryOverflow => match r {
            Ok(v) => {
                frame.gpr[abi.ret_reg] = v as u64;
                frame.extra[3] &= !CR0_SO;
            }
            Err(e) => {
                frame.gpr[abi.ret_reg] = e.0 as u64;
                frame.extra[3] |= CR0_SO;
            }
        },
    }
}

/// The system call entry (registered with core as the app's syscall hook).
pub fn dispatch(frame: &mut AppFrame) {
    let abi = process::get().abi;
    let nr = frame.gpr[abi.nr_reg];
    let args = abi.arg_regs.map(|r| frame.gpr[r]);
    let handler = TABLE.get().and_then(|t| {
        usize::try_from(nr)
            .ok()
            .and_then(|i| t.handlers.get(i).copied().flatten())
    });
    let mut call = Call {
        args,
        frame,
        abi,
        frame_replaced: false,
    };
    let result = match handler {
        Some(h) => h(&mut call),
        None => unimplemented(abi, nr),
    };
    if !call.frame_replaced {
        set_return(abi, call.frame, result);
    }
    crate::signal::deliver_pending(call.frame);
}
