//! Threads and process identity: clone/clone3 (threads only), exit and
//! exit_group, futex, tids, affinity.

use alloc::sync::Arc;
use core::sync::atomic::Ordering;

use keel_hal::AppFrame;

use super::{Call, set_return};
use crate::abi::CloneOrder;
use crate::errno::{Errno, SysResult};
use crate::thread::{self, LinuxThread};
use crate::{futex, mem, process, time_util};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_DETACHED: u64 = 0x400000;
const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
const CLONE_IO: u64 = 0x8000_0000;
const THREAD_FLAGS: u64 = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
const KNOWN: u64 = THREAD_FLAGS
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID
    | CLONE_IO
    | 0xff; // exit signal

struct CloneArgs {
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

/// clone(2).
pub fn clone(c: &mut Call<'_>) -> SysResult {
    let (child_tid, tls) = match c.abi.clone_order {
        CloneOrder::ChildTidThenTls => (c.args[3], c.args[4]),
        CloneOrder::TlsThenChildTid => (c.args[4], c.args[3]),
    };
    let a = CloneArgs {
        flags: c.args[0],
        stack: c.args[1],
        parent_tid: c.args[2],
        child_tid,
        tls,
    };
    start_thread(c, a)
}

/// clone3(2).
pub fn clone3(c: &mut Call<'_>) -> SysResult {
    let size = c.args[1] as usize;
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let raw = mem::read_bytes(c.args[0], size)?;
    let field = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    if raw[88.min(size)..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG); // set_tid/cgroup and later fields: not supported
    }
    let (flags, child_tid, parent_tid, stack, stack_size, tls) =
        (field(0), field(2), field(3), field(5), field(6), field(7));
    if flags & CLONE_PIDFD != 0 || field(8) != 0 {
        return Err(Errno::EINVAL);
    }
    let stack_top = if stack != 0 { stack + stack_size } else { 0 };
    start_thread(
        c,
        CloneArgs {
            flags: flags | (field(4) & 0xff),
            stack: stack_top,
            parent_tid,
            child_tid,
            tls,
        },
    )
}

fn start_thread(c: &mut Call<'_>, a: CloneArgs) -> SysResult {
    if a.flags & THREAD_FLAGS != THREAD_FLAGS || a.flags & CLONE_VFORK != 0 {
        // A new process (fork, vfork, posix_spawn): Keel runs one address space.
        return Err(Errno::ENOSYS);
    }
    if a.flags & !KNOWN != 0 {
        return Err(Errno::EINVAL);
    }
    let p = process::get();
    let parent = thread::current();
    let tid = p.new_tid();
    let lt = LinuxThread::new(tid, parent.mask());
    if a.flags & CLONE_CHILD_CLEARTID != 0 {
        lt.clear_child_tid.store(a.child_tid, Ordering::Release);
    }
    if a.flags & CLONE_PARENT_SETTID != 0 {
        mem::write_u32(a.parent_tid, tid)?;
    }
    if a.flags & CLONE_CHILD_SETTID != 0 {
        mem::write_u32(a.child_tid, tid)?;
    }
    // The child resumes right after the system call, returning 0.
    let mut frame: AppFrame = *c.frame;
    set_return(c.abi, &mut frame, Ok(0));
    if a.stack != 0 {
        frame.sp = a.stack;
        if c.abi.name == "ppc64" {
            frame.gpr[1] = a.stack;
        }
    }
    let thread_pointer = match (a.flags & CLONE_SETTLS != 0, c.abi.tls_reg) {
        (true, Some(reg)) => {
            frame.gpr[reg] = a.tls;
            None
        }
        (true, None) => Some(a.tls),
        (false, _) => (c.abi.tls_reg.is_none()).then(keel_hal::machine::app_thread_pointer),
    };
    p.add_thread(lt.clone(), None);
    let handle = keel_core::app::spawn_app_thread("app".into(), frame, thread_pointer, lt.clone());
    lt.core.call_once(|| Arc::downgrade(handle.thread()));
    p.set_core_thread(tid, handle.thread().clone());
    Ok(tid as isize)
}

/// fork/vfork: Keel runs one address space.
pub fn fork(_c: &mut Call<'_>) -> SysResult {
    Err(Errno::ENOSYS)
}

/// execve: Keel runs one program.
pub fn execve(_c: &mut Call<'_>) -> SysResult {
    Err(Errno::ENOSYS)
}

/// wait4: there are never children.
pub fn wait4(_c: &mut Call<'_>) -> SysResult {
    Err(Errno::ECHILD)
}

/// Walk the robust list at thread exit: mutexes this thread still holds
/// are marked owner-died and a waiter is woken.
fn release_robust_list(lt: &LinuxThread) {
    let head = lt.robust_list.load(Ordering::Acquire);
    if head == 0 {
        return;
    }
    let (Ok(mut entry), Ok(offset)) = (mem::read_u64(head), mem::read_u64(head + 8)) else {
        return;
    };
    let pending = mem::read_u64(head + 16).unwrap_or(0);
    let release = |entry: u64| {
        let word = entry.wrapping_add(offset) & !1;
        if let Ok(v) = futex::read_word(word)
            && v & futex::TID_MASK == lt.tid
            && let Ok(old) = futex::update(word, |v| (v & futex::WAITERS) | futex::OWNER_DIED)
            && old & futex::WAITERS != 0
        {
            futex::wake(word, 1, u32::MAX);
        }
    };
    for _ in 0..2048 {
        if entry == head || entry == 0 {
            break;
        }
        release(entry & !1);
        entry = mem::read_u64(entry & !1).unwrap_or(head);
    }
    if pending != 0 {
        release(pending & !1);
    }
}

/// End the calling thread with `status`.
pub fn exit_thread(status: u32) -> ! {
    let lt = thread::current();
    release_robust_list(&lt);
    let clear = lt.clear_child_tid.load(Ordering::Acquire);
    if clear != 0 && mem::write_u32(clear, 0).is_ok() {
        futex::wake(clear, 1, u32::MAX);
    }
    crate::signal::forget_thread(&lt);
    process::get().remove_thread(lt.tid, status, keel_core::sched::current_runtime_ns());
    drop(lt);
    keel_core::sched::exit(keel_core::sched::ExitReason::Returned)
}

/// exit(2): this thread only.
pub fn exit(c: &mut Call<'_>) -> SysResult {
    exit_thread(c.args[0] as u32 & 0xff)
}

/// exit_group(2): the app is done; power off with its status.
pub fn exit_group(c: &mut Call<'_>) -> SysResult {
    crate::shutdown_with((c.args[0] & 0xff) as u8)
}

/// set_tid_address(2).
pub fn set_tid_address(c: &mut Call<'_>) -> SysResult {
    let lt = thread::current();
    lt.clear_child_tid.store(c.args[0], Ordering::Release);
    Ok(lt.tid as isize)
}

/// set_robust_list(2).
pub fn set_robust_list(c: &mut Call<'_>) -> SysResult {
    if c.args[1] != 24 {
        return Err(Errno::EINVAL);
    }
    thread::current()
        .robust_list
        .store(c.args[0], Ordering::Release);
    Ok(0)
}

/// get_robust_list(2).
pub fn get_robust_list(c: &mut Call<'_>) -> SysResult {
    let tid = c.args[0] as u32;
    let lt = if tid == 0 {
        thread::current()
    } else {
        process::get().thread(tid).ok_or(Errno::ESRCH)?.0
    };
    mem::write_u64(c.args[1], lt.robust_list.load(Ordering::Acquire))?;
    mem::write_u64(c.args[2], 24)?;
    Ok(0)
}

/// futex(2).
pub fn futex(c: &mut Call<'_>) -> SysResult {
    const PRIVATE: u64 = 128;
    const CLOCK_REALTIME: u64 = 256;
    let (addr, op, val) = (c.args[0], c.args[1], c.args[2] as u32);
    let cmd = op & !(PRIVATE | CLOCK_REALTIME);
    let realtime = op & CLOCK_REALTIME != 0;
    let tid = thread::current().tid;
    match cmd {
        0 => {
            // FUTEX_WAIT: relative timeout.
            let deadline = time_util::relative_deadline(c.args[3])?;
            futex::wait(addr, val, u32::MAX, deadline).map(|()| 0)
        }
        9 => {
            // FUTEX_WAIT_BITSET: absolute timeout.
            let bitset = c.args[5] as u32;
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = time_util::absolute_deadline(c.args[3], realtime)?;
            futex::wait(addr, val, bitset, deadline).map(|()| 0)
        }
        1 => Ok(futex::wake(addr, val as usize, u32::MAX) as isize),
        10 => {
            let bitset = c.args[5] as u32;
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(futex::wake(addr, val as usize, bitset) as isize)
        }
        3 => futex::requeue(addr, c.args[4], val as usize, c.args[3] as usize, None)
            .map(|n| n as isize),
        4 => futex::requeue(
            addr,
            c.args[4],
            val as usize,
            c.args[3] as usize,
            Some(c.args[5] as u32),
        )
        .map(|n| n as isize),
        5 => futex::wake_op(
            addr,
            c.args[4],
            val as usize,
            c.args[3] as usize,
            c.args[5] as u32,
        )
        .map(|n| n as isize),
        6 => futex::lock_pi(
            addr,
            tid,
            time_util::absolute_deadline(c.args[3], true)?,
            false,
        )
        .map(|()| 0),
        13 => futex::lock_pi(
            addr,
            tid,
            time_util::absolute_deadline(c.args[3], realtime)?,
            false,
        )
        .map(|()| 0),
        8 => futex::lock_pi(addr, tid, None, true).map(|()| 0),
        7 => futex::unlock_pi(addr, tid).map(|()| 0),
        _ => Err(Errno::ENOSYS),
    }
}

/// gettid(2).
pub fn gettid(_c: &mut Call<'_>) -> SysResult {
    Ok(thread::current().tid as isize)
}

/// getpid(2).
pub fn getpid(_c: &mut Call<'_>) -> SysResult {
    Ok(process::PID as isize)
}

/// getppid(2): the process has no parent in the VM.
pub fn getppid(_c: &mut Call<'_>) -> SysResult {
    Ok(0)
}

/// sched_yield(2).
pub fn sched_yield(_c: &mut Call<'_>) -> SysResult {
    keel_core::sched::yield_now();
    Ok(0)
}

fn cpu_mask_bytes() -> alloc::vec::Vec<u8> {
    let mut mask = alloc::vec![0u8; 8];
    for cpu in keel_core::sched::online() {
        if cpu < 64 {
            mask[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    mask
}

/// sched_getaffinity(2): every online CPU.
pub fn sched_getaffinity(c: &mut Call<'_>) -> SysResult {
    let len = c.args[1] as usize;
    if len < 8 || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    mem::write_bytes(c.args[2], &cpu_mask_bytes())?;
    Ok(8)
}

/// sched_setaffinity(2): accepted when it names an online CPU.
pub fn sched_setaffinity(c: &mut Call<'_>) -> SysResult {
    let len = (c.args[1] as usize).min(8);
    let mask = mem::read_bytes(c.args[2], len)?;
    let online = cpu_mask_bytes();
    if mask.iter().zip(online.iter()).all(|(a, b)| a & b == 0) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// sched_getscheduler(2): SCHED_OTHER.
pub fn sched_getscheduler(_c: &mut Call<'_>) -> SysResult {
    Ok(0)
}

/// sched_getparam(2): priority 0.
pub fn sched_getparam(c: &mut Call<'_>) -> SysResult {
    mem::write_i32(c.args[1], 0)?;
    Ok(0)
}

/// getpriority(2): nice 0 (the kernel returns 20 - nice).
pub fn getpriority(_c: &mut Call<'_>) -> SysResult {
    Ok(20)
}

/// setpriority(2): accepted.
pub fn setpriority(_c: &mut Call<'_>) -> SysResult {
    Ok(0)
}
