//! Identity, limits and machine information: getrandom, uname, sysinfo,
//! rlimits, user and group ids, process groups, arch_prctl, prctl,
//! membarrier.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use keel_hal::machine;

use super::Call;
use crate::errno::{Errno, SysResult};
use crate::process::{self, Credentials, PID, UNLIMITED};
use crate::{mem, thread};

/// The kernel release uname reports: recent enough for every libc's
/// minimum-version check; "keel" marks what it really is.
pub const RELEASE: &str = "6.12.0-keel";

/// getrandom(2).
pub fn getrandom(c: &mut Call<'_>) -> SysResult {
    const GRND_NONBLOCK: u64 = 1;
    const GRND_RANDOM: u64 = 2;
    const GRND_INSECURE: u64 = 4;
    let flags = c.args[2];
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == GRND_RANDOM | GRND_INSECURE
    {
        return Err(Errno::EINVAL);
    }
    // The generator is seeded before the app starts: it never blocks.
    let len = (c.args[1] as usize).min((1 << 25) - 1);
    let mut buf = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        keel_core::random::fill(&mut buf[..n]);
        if let Err(e) = mem::write_bytes(c.args[0] + done as u64, &buf[..n]) {
            return if done > 0 { Ok(done as isize) } else { Err(e) };
        }
        done += n;
    }
    Ok(done as isize)
}

/// The machine name uname reports for this arch.
pub fn machine_name(arch: &str) -> &'static str {
    match arch {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        _ => "ppc64le",
    }
}

/// uname(2).
pub fn uname(c: &mut Call<'_>) -> SysResult {
    let mut b = [0u8; 6 * 65];
    let host = process::get().hostname.lock().clone();
    let version = alloc::format!("#1 SMP Keel {}", env!("CARGO_PKG_VERSION"));
    let fields = [
        "Linux",
        host.as_str(),
        RELEASE,
        version.as_str(),
        machine_name(c.abi.name),
        "(none)",
    ];
    for (i, f) in fields.iter().enumerate() {
        let n = f.len().min(64);
        b[i * 65..i * 65 + n].copy_from_slice(&f.as_bytes()[..n]);
    }
    mem::write_bytes(c.args[0], &b)?;
    Ok(0)
}

/// sysinfo(2).
pub fn sysinfo(c: &mut Call<'_>) -> SysResult {
    let (free, total) = keel_core::memory::frame::stats();
    let page = keel_core::memory::PAGE_SIZE as u64;
    let mut b = [0u8; 112];
    let mut put = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(0, keel_core::time::monotonic_ns() / 1_000_000_000);
    put(32, total as u64 * page);
    put(40, free as u64 * page);
    let procs = process::get().thread_count() as u16;
    b[80..82].copy_from_slice(&procs.to_le_bytes());
    b[104..108].copy_from_slice(&1u32.to_le_bytes()); // mem_unit
    mem::write_bytes(c.args[0], &b)?;
    Ok(0)
}

const RLIMIT_NOFILE: usize = 7;
const RLIM_NLIMITS: usize = 16;
/// Most descriptors a process may have (Linux's fs.nr_open).
const NR_OPEN: u64 = 1 << 20;

fn limit_index(resource: u64) -> Result<usize, Errno> {
    usize::try_from(resource)
        .ok()
        .filter(|&r| r < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)
}

fn write_limit(addr: u64, (soft, hard): (u64, u64)) -> Result<(), Errno> {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&soft.to_le_bytes());
    b[8..16].copy_from_slice(&hard.to_le_bytes());
    mem::write_bytes(addr, &b)
}

fn set_limit(r: usize, addr: u64) -> Result<(), Errno> {
    let b = mem::read_bytes(addr, 16)?;
    let soft = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let hard = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    if soft > hard {
        return Err(Errno::EINVAL);
    }
    let p = process::get();
    if r == RLIMIT_NOFILE {
        if hard > NR_OPEN && hard != UNLIMITED {
            return Err(Errno::EPERM);
        }
        if hard == UNLIMITED {
            return Err(Errno::EPERM); // Linux refuses an unlimited NOFILE too
        }
        p.fds.lock().limit = soft as usize;
    }
    let mut limits = p.limits.lock();
    // Raising a hard limit needs privilege.
    if hard > limits[r].1 && p.creds.lock().uid[1] != 0 {
        return Err(Errno::EPERM);
    }
    limits[r] = (soft, hard);
    Ok(())
}

/// getrlimit(2).
pub fn getrlimit(c: &mut Call<'_>) -> SysResult {
    let r = limit_index(c.args[0])?;
    write_limit(c.args[1], process::get().limits.lock()[r])?;
    Ok(0)
}

/// setrlimit(2).
pub fn setrlimit(c: &mut Call<'_>) -> SysResult {
    set_limit(limit_index(c.args[0])?, c.args[1])?;
    Ok(0)
}

/// prlimit64(2): only the process itself exists.
pub fn prlimit64(c: &mut Call<'_>) -> SysResult {
    if c.args[0] != 0 && c.args[0] != u64::from(PID) {
        return Err(Errno::ESRCH);
    }
    let r = limit_index(c.args[1])?;
    let old = process::get().limits.lock()[r];
    if c.args[2] != 0 {
        set_limit(r, c.args[2])?;
    }
    if c.args[3] != 0 {
        write_limit(c.args[3], old)?;
    }
    Ok(0)
}

fn creds() -> Credentials {
    process::get().creds.lock().clone()
}

/// getuid(2).
pub fn getuid(_c: &mut Call<'_>) -> SysResult {
    Ok(creds().uid[0] as isize)
}

/// geteuid(2).
pub fn geteuid(_c: &mut Call<'_>) -> SysResult {
    Ok(creds().uid[1] as isize)
}

/// getgid(2).
pub fn getgid(_c: &mut Call<'_>) -> SysResult {
    Ok(creds().gid[0] as isize)
}

/// getegid(2).
pub fn getegid(_c: &mut Call<'_>) -> SysResult {
    Ok(creds().gid[1] as isize)
}

fn write_ids(c: &Call<'_>, ids: [u32; 3]) -> SysResult {
    for (i, id) in ids.iter().enumerate() {
        mem::write_u32(c.args[i], *id)?;
    }
    Ok(0)
}

/// getresuid(2).
pub fn getresuid(c: &mut Call<'_>) -> SysResult {
    write_ids(c, creds().uid)
}

/// getresgid(2).
pub fn getresgid(c: &mut Call<'_>) -> SysResult {
    write_ids(c, creds().gid)
}

/// getgroups(2).
pub fn getgroups(c: &mut Call<'_>) -> SysResult {
    let groups = creds().groups;
    let size = c.args[0] as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(groups.len() as isize);
    }
    if (size as usize) < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: alloc::vec::Vec<u8> = groups.iter().flat_map(|g| g.to_le_bytes()).collect();
    mem::write_bytes(c.args[1], &bytes)?;
    Ok(groups.len() as isize)
}

/// setgroups(2).
pub fn setgroups(c: &mut Call<'_>) -> SysResult {
    let n = c.args[0] as usize;
    if n > 65536 {
        return Err(Errno::EINVAL);
    }
    let raw = mem::read_bytes(c.args[1], n * 4)?;
    let mut cr = process::get().creds.lock();
    if cr.uid[1] != 0 {
        return Err(Errno::EPERM);
    }
    cr.groups = raw
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    Ok(0)
}

/// Which ids an id change touches, by the setres* rules: `None` leaves
/// one unchanged; without privilege each new id must be one of the
/// current three.
fn change_ids(ids: &mut [u32; 3], new: [Option<u32>; 3], privileged: bool) -> Result<(), Errno> {
    if !privileged && new.iter().flatten().any(|n| !ids.contains(n)) {
        return Err(Errno::EPERM);
    }
    for (slot, n) in ids.iter_mut().zip(new) {
        if let Some(n) = n {
            *slot = n;
        }
    }
    Ok(())
}

fn id_arg(v: u64) -> Option<u32> {
    (v as u32 != u32::MAX).then_some(v as u32)
}

fn set_ids(user: bool, new: [Option<u32>; 3]) -> SysResult {
    let mut cr = process::get().creds.lock();
    let privileged = cr.uid[1] == 0;
    let ids = if user { &mut cr.uid } else { &mut cr.gid };
    change_ids(ids, new, privileged)?;
    Ok(0)
}

/// setuid(2): with privilege all three ids change; without, the effective one.
pub fn setuid(c: &mut Call<'_>) -> SysResult {
    let id = id_arg(c.args[0]).ok_or(Errno::EINVAL)?;
    let privileged = process::get().creds.lock().uid[1] == 0;
    set_ids(
        true,
        if privileged {
            [Some(id); 3]
        } else {
            [None, Some(id), None]
        },
    )
}

/// setgid(2).
pub fn setgid(c: &mut Call<'_>) -> SysResult {
    let id = id_arg(c.args[0]).ok_or(Errno::EINVAL)?;
    let privileged = process::get().creds.lock().uid[1] == 0;
    set_ids(
        false,
        if privileged {
            [Some(id); 3]
        } else {
            [None, Some(id), None]
        },
    )
}

/// setresuid(2).
pub fn setresuid(c: &mut Call<'_>) -> SysResult {
    set_ids(
        true,
        [id_arg(c.args[0]), id_arg(c.args[1]), id_arg(c.args[2])],
    )
}

/// setresgid(2).
pub fn setresgid(c: &mut Call<'_>) -> SysResult {
    set_ids(
        false,
        [id_arg(c.args[0]), id_arg(c.args[1]), id_arg(c.args[2])],
    )
}

/// setreuid(2): the saved id follows the effective one when the real id
/// is set or the effective one changes to something else.
pub fn setreuid(c: &mut Call<'_>) -> SysResult {
    set_re(true, id_arg(c.args[0]), id_arg(c.args[1]))
}

/// setregid(2).
pub fn setregid(c: &mut Call<'_>) -> SysResult {
    set_re(false, id_arg(c.args[0]), id_arg(c.args[1]))
}

fn set_re(user: bool, real: Option<u32>, effective: Option<u32>) -> SysResult {
    let ids = if user { creds().uid } else { creds().gid };
    let new_effective = effective.unwrap_or(ids[1]);
    let saved = (real.is_some() || effective.is_some_and(|e| e != ids[0])).then_some(new_effective);
    set_ids(user, [real, effective, saved])
}

/// getpgid(2) and getsid(2): the process leads its own group and session.
pub fn getpgid(c: &mut Call<'_>) -> SysResult {
    if c.args[0] != 0 && c.args[0] != u64::from(PID) {
        return Err(Errno::ESRCH);
    }
    Ok(PID as isize)
}

/// getpgrp(2).
pub fn getpgrp(_c: &mut Call<'_>) -> SysResult {
    Ok(PID as isize)
}

/// setsid(2): the process already leads its group, so Linux says EPERM.
pub fn setsid(_c: &mut Call<'_>) -> SysResult {
    Err(Errno::EPERM)
}

/// setpgid(2): only "make myself a group leader", which it already is.
pub fn setpgid(c: &mut Call<'_>) -> SysResult {
    let (pid, pgid) = (c.args[0], c.args[1]);
    if (pid != 0 && pid != u64::from(PID)) || (pgid != 0 && pgid != u64::from(PID)) {
        return Err(if (pgid as i64) < 0 {
            Errno::EINVAL
        } else {
            Errno::ESRCH
        });
    }
    Ok(0)
}

/// arch_prctl(2) (x86_64).
pub fn arch_prctl(c: &mut Call<'_>) -> SysResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    const ARCH_GET_CPUID: u64 = 0x1011;
    match c.args[0] {
        ARCH_SET_FS => {
            // A non-canonical base would fault in the kernel: refuse it.
            if c.args[1] != 0 && !keel_core::app::in_app_range(c.args[1] as usize, 1) {
                return Err(Errno::EPERM);
            }
            machine::set_app_thread_pointer(c.args[1]);
            Ok(0)
        }
        ARCH_GET_FS => {
            mem::write_u64(c.args[1], machine::app_thread_pointer())?;
            Ok(0)
        }
        ARCH_GET_CPUID => Ok(1),
        // GS belongs to the kernel (per-CPU data).
        ARCH_SET_GS | ARCH_GET_GS => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

/// Process-wide prctl settings.
static PDEATHSIG: AtomicU32 = AtomicU32::new(0);
static DUMPABLE: AtomicU32 = AtomicU32::new(1);
static NO_NEW_PRIVS: AtomicU32 = AtomicU32::new(0);
static CHILD_SUBREAPER: AtomicU32 = AtomicU32::new(0);

/// prctl(2).
pub fn prctl(c: &mut Call<'_>) -> SysResult {
    const PR_SET_PDEATHSIG: u64 = 1;
    const PR_GET_PDEATHSIG: u64 = 2;
    const PR_GET_DUMPABLE: u64 = 3;
    const PR_SET_DUMPABLE: u64 = 4;
    const PR_SET_NAME: u64 = 15;
    const PR_GET_NAME: u64 = 16;
    const PR_GET_SECCOMP: u64 = 21;
    const PR_CAPBSET_READ: u64 = 23;
    const PR_SET_CHILD_SUBREAPER: u64 = 36;
    const PR_GET_CHILD_SUBREAPER: u64 = 37;
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    const PR_GET_NO_NEW_PRIVS: u64 = 39;
    const CAP_LAST_CAP: u64 = 40;
    let a = c.args;
    match a[0] {
        PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            // Stored and reported; the parent (the VM) never dies first.
            PDEATHSIG.store(a[1] as u32, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            mem::write_i32(a[1], PDEATHSIG.load(Ordering::Relaxed) as i32)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(DUMPABLE.load(Ordering::Relaxed) as isize),
        PR_SET_DUMPABLE => {
            if a[1] > 1 {
                return Err(Errno::EINVAL);
            }
            DUMPABLE.store(a[1] as u32, Ordering::Relaxed);
            Ok(0)
        }
        PR_SET_NAME => {
            let mut raw = [0u8; 16];
            let name = mem::read_cstr(a[1], 4096)?;
            let n = name.len().min(15);
            raw[..n].copy_from_slice(&name.as_bytes()[..n]);
            *thread::current().name.lock() = raw;
            Ok(0)
        }
        PR_GET_NAME => {
            let raw = *thread::current().name.lock();
            mem::write_bytes(a[1], &raw)?;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(0),
        PR_CAPBSET_READ => {
            if a[1] > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            Ok(1)
        }
        PR_SET_CHILD_SUBREAPER => {
            CHILD_SUBREAPER.store(u32::from(a[1] != 0), Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            mem::write_i32(a[1], CHILD_SUBREAPER.load(Ordering::Relaxed) as i32)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            NO_NEW_PRIVS.store(1, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(NO_NEW_PRIVS.load(Ordering::Relaxed) as isize),
        _ => Err(Errno::EINVAL),
    }
}

/// membarrier commands registered so far.
static MEMBARRIER_REGISTERED: AtomicU64 = AtomicU64::new(0);

/// membarrier(2): a barrier on every CPU by running a function there
/// (the interrupt that runs it orders memory on that CPU).
pub fn membarrier(c: &mut Call<'_>) -> SysResult {
    const QUERY: u64 = 0;
    const GLOBAL: u64 = 1;
    const GLOBAL_EXPEDITED: u64 = 2;
    const REGISTER_GLOBAL_EXPEDITED: u64 = 4;
    const PRIVATE_EXPEDITED: u64 = 8;
    const REGISTER_PRIVATE_EXPEDITED: u64 = 16;
    const PRIVATE_EXPEDITED_SYNC_CORE: u64 = 32;
    const REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 64;
    const SUPPORTED: u64 = GLOBAL
        | GLOBAL_EXPEDITED
        | REGISTER_GLOBAL_EXPEDITED
        | PRIVATE_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED
        | PRIVATE_EXPEDITED_SYNC_CORE
        | REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;
    let (cmd, flags) = (c.args[0], c.args[1]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let barrier = || {
        keel_core::smp::on_each_cpu(&|| core::sync::atomic::fence(Ordering::SeqCst));
        Ok(0)
    };
    match cmd {
        QUERY => Ok(SUPPORTED as isize),
        GLOBAL => barrier(),
        REGISTER_GLOBAL_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED
        | REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            MEMBARRIER_REGISTERED.fetch_or(cmd, Ordering::AcqRel);
            Ok(0)
        }
        GLOBAL_EXPEDITED | PRIVATE_EXPEDITED | PRIVATE_EXPEDITED_SYNC_CORE => {
            // Expedited commands need their registration first (cmd << 1).
            if MEMBARRIER_REGISTERED.load(Ordering::Acquire) & (cmd << 1) == 0 {
                return Err(Errno::EPERM);
            }
            barrier()
        }
        _ => Err(Errno::EINVAL),
    }
}

/// A call Keel does not implement and that callers are known to handle
/// (rseq: glibc falls back); not worth a console line.
pub fn enosys_quietly(_c: &mut Call<'_>) -> SysResult {
    Err(Errno::ENOSYS)
}

/// sched_get_priority_max(2).
pub fn sched_get_priority_max(c: &mut Call<'_>) -> SysResult {
    match c.args[0] {
        0 | 3 | 5 => Ok(0), // SCHED_OTHER, SCHED_BATCH, SCHED_IDLE
        1 | 2 => Ok(99),    // SCHED_FIFO, SCHED_RR
        _ => Err(Errno::EINVAL),
    }
}

/// sched_get_priority_min(2).
pub fn sched_get_priority_min(c: &mut Call<'_>) -> SysResult {
    match c.args[0] {
        0 | 3 | 5 => Ok(0),
        1 | 2 => Ok(1),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprivileged_id_changes_stay_within_the_current_ids() {
        let mut ids = [1000, 1000, 0];
        assert_eq!(change_ids(&mut ids, [None, Some(0), None], false), Ok(()));
        assert_eq!(ids, [1000, 0, 0]);
        let mut ids = [1000, 1000, 1000];
        assert_eq!(
            change_ids(&mut ids, [None, Some(0), None], false),
            Err(Errno::EPERM)
        );
        assert_eq!(
            change_ids(&mut ids, [Some(5), Some(5), Some(5)], true),
            Ok(())
        );
        assert_eq!(ids, [5, 5, 5]);
    }
}
