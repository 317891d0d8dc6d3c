//! Waiting for descriptors: poll, select and their signal-mask variants,
//! epoll, and the event objects (eventfd, timerfd).

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::time;
use keel_fs::{FileLike, FileType, PollEvents, PollWaiter};

use super::Call;
use crate::errno::{Errno, SysResult};
use crate::fdtable::Fd;
use crate::objects::epoll::{EPOLLEXCLUSIVE, Epoll};
use crate::objects::eventfd::EventFd;
use crate::objects::timerfd::TimerFd;
use crate::objects::wake_hint;
use crate::time_util::{self, read_timespec, read_timeval};
use crate::{mem, process, signal, thread};

const O_NONBLOCK: u64 = 0o4000;
const O_CLOEXEC: u64 = 0o2000000;

/// Wait until one of `watched` has one of its events (or ERR/HUP/NVAL),
/// `deadline` passes, or a signal arrives. Returns each entry's events.
fn wait_any(
    watched: &[(Option<Arc<dyn FileLike>>, u16)],
    deadline: Option<u64>,
) -> Result<Vec<u16>, Errno> {
    const ALWAYS: u16 = PollEvents::ERR.0 | PollEvents::HUP.0;
    let waiter = PollWaiter::new();
    for (f, _) in watched {
        if let Some(r) = f.as_ref().and_then(|f| f.readiness()) {
            r.watch(&waiter);
        }
    }
    loop {
        let revents: Vec<u16> = watched
            .iter()
            .map(|(f, events)| match f {
                Some(f) => f.poll().0 & (events | ALWAYS),
                None => PollEvents::NVAL.0,
            })
            .collect();
        if revents.iter().any(|&r| r != 0) || deadline.is_some_and(|d| d <= time::monotonic_ns()) {
            return Ok(revents);
        }
        if signal::interrupted() {
            return Err(Errno::EINTR);
        }
        let hint = watched
            .iter()
            .filter_map(|(f, _)| f.as_ref().and_then(|f| wake_hint(f.as_ref())))
            .min();
        let wake = match (deadline, hint) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        signal::with_interruptible(&waiter, || waiter.wait(wake));
    }
}

fn deadline_in_ms(ms: i64) -> Option<u64> {
    (ms >= 0).then(|| time::monotonic_ns().saturating_add(ms as u64 * 1_000_000))
}

fn poll_common(fds_addr: u64, nfds: u64, deadline: Option<u64>) -> SysResult {
    let p = process::get();
    if nfds > p.limit(7) {
        return Err(Errno::EINVAL);
    }
    let raw = mem::read_bytes(fds_addr, nfds as usize * 8)?;
    let mut watched = Vec::with_capacity(nfds as usize);
    let mut skip = Vec::with_capacity(nfds as usize);
    {
        let fds = p.fds.lock();
        for e in raw.chunks_exact(8) {
            let fd = i32::from_le_bytes(e[0..4].try_into().expect("4 bytes"));
            let events = u16::from_le_bytes([e[4], e[5]]);
            skip.push(fd < 0);
            watched.push((
                if fd < 0 {
                    None
                } else {
                    fds.file(i64::from(fd)).ok()
                },
                events,
            ));
        }
    }
    // Negative descriptors are ignored: watch nothing for them.
    let active: Vec<(Option<Arc<dyn FileLike>>, u16)> = watched
        .iter()
        .zip(&skip)
        .filter(|(_, s)| !**s)
        .map(|(w, _)| w.clone())
        .collect();
    let revents = if active.is_empty() {
        wait_until(deadline)?;
        Vec::new()
    } else {
        wait_any(&active, deadline)?
    };
    let mut out = raw;
    let mut ready = 0;
    let mut next = revents.into_iter();
    for (i, e) in out.chunks_exact_mut(8).enumerate() {
        let r = if skip[i] { 0 } else { next.next().unwrap_or(0) };
        e[6..8].copy_from_slice(&r.to_le_bytes());
        ready += usize::from(r != 0);
    }
    mem::write_bytes(fds_addr, &out)?;
    Ok(ready as isize)
}

/// Sleep until `deadline` with nothing to watch (poll with no descriptors).
fn wait_until(deadline: Option<u64>) -> Result<(), Errno> {
    let waiter = PollWaiter::new();
    while deadline.is_none_or(|d| time::monotonic_ns() < d) {
        if signal::interrupted() {
            return Err(Errno::EINTR);
        }
        signal::with_interruptible(&waiter, || waiter.wait(deadline));
    }
    Ok(())
}

/// Install the temporary signal mask at `addr` (NULL: none) for the call.
fn temporary_mask(addr: u64, size: u64) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = mem::read_u64(addr)? & !((1 << 8) | (1 << 18)); // never SIGKILL/SIGSTOP
    thread::current().set_temporary_mask(mask);
    Ok(())
}

/// poll(2).
pub fn poll(c: &mut Call<'_>) -> SysResult {
    poll_common(c.args[0], c.args[1], deadline_in_ms(c.i32(2).into()))
}

/// ppoll(2).
pub fn ppoll(c: &mut Call<'_>) -> SysResult {
    let deadline = time_util::relative_deadline(c.args[2])?;
    temporary_mask(c.args[3], c.args[4])?;
    poll_common(c.args[0], c.args[1], deadline)
}

fn select_common(c: &Call<'_>, deadline: Option<u64>) -> SysResult {
    let nfds = c.i32(0);
    if nfds < 0 || i64::from(nfds) > process::get().limit(7) as i64 {
        return Err(Errno::EINVAL);
    }
    let n = nfds as usize;
    let bytes = n.div_ceil(64) * 8;
    let read_set = |addr: u64| -> Result<Option<Vec<u8>>, Errno> {
        if addr == 0 {
            Ok(None)
        } else {
            mem::read_bytes(addr, bytes).map(Some)
        }
    };
    let sets = [
        read_set(c.args[1])?,
        read_set(c.args[2])?,
        read_set(c.args[3])?,
    ];
    const READ: u16 = PollEvents::IN.0 | PollEvents::HUP.0 | PollEvents::ERR.0;
    const WRITE: u16 = PollEvents::OUT.0 | PollEvents::ERR.0;
    const EXCEPT: u16 = PollEvents::PRI.0;
    let wants = [READ, WRITE, EXCEPT];
    let mut watched = Vec::new();
    let mut which = Vec::new();
    {
        let fds = process::get().fds.lock();
        for fd in 0..n {
            let mut events = 0;
            for (set, want) in sets.iter().zip(wants) {
                if set
                    .as_ref()
                    .is_some_and(|s| s[fd / 8] & (1 << (fd % 8)) != 0)
                {
                    events |= want;
                }
            }
            if events != 0 {
                watched.push((Some(fds.file(fd as i64)?), events));
                which.push((fd, events));
            }
        }
    }
    let revents = if watched.is_empty() {
        wait_until(deadline)?;
        Vec::new()
    } else {
        wait_any(&watched, deadline)?
    };
    let mut out: [Vec<u8>; 3] = core::array::from_fn(|_| alloc::vec![0u8; bytes]);
    let mut count = 0;
    for (&(fd, asked), r) in which.iter().zip(revents) {
        for (i, want) in wants.iter().enumerate() {
            if asked & want != 0 && r & want != 0 {
                out[i][fd / 8] |= 1 << (fd % 8);
                count += 1;
            }
        }
    }
    for (i, addr) in [c.args[1], c.args[2], c.args[3]].into_iter().enumerate() {
        if addr != 0 {
            mem::write_bytes(addr, &out[i])?;
        }
    }
    Ok(count as isize)
}

/// select(2): the timeout is updated with the time left, as Linux does.
pub fn select(c: &mut Call<'_>) -> SysResult {
    let deadline = if c.args[4] != 0 {
        Some(time::monotonic_ns().saturating_add(read_timeval(c.args[4])?))
    } else {
        None
    };
    let r = select_common(c, deadline);
    if let Some(d) = deadline {
        time_util::write_timeval(c.args[4], d.saturating_sub(time::monotonic_ns()))?;
    }
    r
}

/// pselect6(2): the sixth argument points at {sigset pointer, size}.
pub fn pselect6(c: &mut Call<'_>) -> SysResult {
    let deadline = if c.args[4] != 0 {
        Some(time::monotonic_ns().saturating_add(read_timespec(c.args[4])?))
    } else {
        None
    };
    if c.args[5] != 0 {
        let b = mem::read_bytes(c.args[5], 16)?;
        let set = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let size = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        temporary_mask(set, size)?;
    }
    select_common(c, deadline)
}

fn install(file: Arc<dyn FileLike>, cloexec: bool) -> SysResult {
    Ok(process::get().fds.lock().insert(Fd { file, cloexec })? as isize)
}

/// epoll_create(2).
pub fn epoll_create(c: &mut Call<'_>) -> SysResult {
    if c.i32(0) <= 0 {
        return Err(Errno::EINVAL);
    }
    install(Arc::new(Epoll::new()), false)
}

/// epoll_create1(2).
pub fn epoll_create1(c: &mut Call<'_>) -> SysResult {
    if c.args[0] & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    install(Arc::new(Epoll::new()), c.args[0] & O_CLOEXEC != 0)
}

fn epoll_of(f: &Arc<dyn FileLike>) -> Result<&Epoll, Errno> {
    f.as_any().downcast_ref::<Epoll>().ok_or(Errno::EINVAL)
}

/// epoll_ctl(2).
pub fn epoll_ctl(c: &mut Call<'_>) -> SysResult {
    const ADD: u64 = 1;
    const DEL: u64 = 2;
    const MOD: u64 = 3;
    let (epfd, op, fd) = (c.int(0), c.args[1], c.int(2));
    let (ep_file, target) = {
        let fds = process::get().fds.lock();
        (fds.file(epfd)?, fds.file(fd)?)
    };
    let ep = epoll_of(&ep_file)?;
    if epfd == fd {
        return Err(Errno::EINVAL);
    }
    if matches!(
        target.metadata()?.file_type(),
        FileType::Regular | FileType::Directory
    ) && target.inode().is_some()
    {
        return Err(Errno::EPERM); // files are always ready: Linux refuses them
    }
    let event = |c: &Call<'_>| -> Result<(u32, u64), Errno> {
        let size = c.abi.epoll_event_size;
        let b = mem::read_bytes(c.args[3], size)?;
        let events = u32::from_le_bytes(b[0..4].try_into().expect("4 bytes"));
        let at = size - 8;
        Ok((
            events,
            u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")),
        ))
    };
    match op {
        ADD => {
            let (events, data) = event(c)?;
            ep.add(fd as i32, &target, events, data)?;
        }
        MOD => {
            let (events, data) = event(c)?;
            if events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            ep.modify(fd as i32, &target, events, data)?;
        }
        DEL => ep.remove(fd as i32, &target)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

fn epoll_wait_common(c: &Call<'_>, deadline: Option<u64>) -> SysResult {
    let max = c.i32(2);
    if max <= 0 || max > (i32::MAX / 16) {
        return Err(Errno::EINVAL);
    }
    let ep_file = process::get().fds.lock().file(c.int(0))?;
    let ep = epoll_of(&ep_file)?;
    let ready = ep.wait(max as usize, deadline)?;
    let size = c.abi.epoll_event_size;
    let mut out = alloc::vec![0u8; ready.len() * size];
    for (slot, (events, data)) in out.chunks_exact_mut(size).zip(&ready) {
        slot[0..4].copy_from_slice(&events.to_le_bytes());
        slot[size - 8..].copy_from_slice(&data.to_le_bytes());
    }
    mem::write_bytes(c.args[1], &out)?;
    Ok(ready.len() as isize)
}

/// epoll_wait(2).
pub fn epoll_wait(c: &mut Call<'_>) -> SysResult {
    epoll_wait_common(c, deadline_in_ms(c.i32(3).into()))
}

/// epoll_pwait(2).
pub fn epoll_pwait(c: &mut Call<'_>) -> SysResult {
    temporary_mask(c.args[4], c.args[5])?;
    epoll_wait_common(c, deadline_in_ms(c.i32(3).into()))
}

/// epoll_pwait2(2): a timespec timeout.
pub fn epoll_pwait2(c: &mut Call<'_>) -> SysResult {
    let deadline = time_util::relative_deadline(c.args[3])?;
    temporary_mask(c.args[4], c.args[5])?;
    epoll_wait_common(c, deadline)
}

/// eventfd(2).
pub fn eventfd(c: &mut Call<'_>) -> SysResult {
    install(
        Arc::new(EventFd::new(u64::from(c.args[0] as u32), false, false)),
        false,
    )
}

/// eventfd2(2).
pub fn eventfd2(c: &mut Call<'_>) -> SysResult {
    const EFD_SEMAPHORE: u64 = 1;
    let flags = c.args[1];
    if flags & !(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let e = EventFd::new(
        u64::from(c.args[0] as u32),
        flags & EFD_SEMAPHORE != 0,
        flags & O_NONBLOCK != 0,
    );
    install(Arc::new(e), flags & O_CLOEXEC != 0)
}

/// timerfd_create(2).
pub fn timerfd_create(c: &mut Call<'_>) -> SysResult {
    let flags = c.args[1];
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let realtime = match c.args[0] {
        0 | 8 => true,      // CLOCK_REALTIME(_ALARM)
        1 | 7 | 9 => false, // CLOCK_MONOTONIC, CLOCK_BOOTTIME(_ALARM)
        _ => return Err(Errno::EINVAL),
    };
    install(
        Arc::new(TimerFd::new(flags & O_NONBLOCK != 0, realtime)),
        flags & O_CLOEXEC != 0,
    )
}

fn timer_of(f: &Arc<dyn FileLike>) -> Result<&TimerFd, Errno> {
    f.as_any().downcast_ref::<TimerFd>().ok_or(Errno::EINVAL)
}

fn write_itimerspec(addr: u64, (remaining, interval): (u64, u64)) -> Result<(), Errno> {
    let mut b = [0u8; 32];
    b[0..16].copy_from_slice(&time_util::encode_timespec(interval));
    b[16..32].copy_from_slice(&time_util::encode_timespec(remaining));
    mem::write_bytes(addr, &b)
}

/// timerfd_settime(2).
pub fn timerfd_settime(c: &mut Call<'_>) -> SysResult {
    const TFD_TIMER_ABSTIME: u64 = 1;
    let f = process::get().fds.lock().file(c.int(0))?;
    let t = timer_of(&f)?;
    let flags = c.args[1];
    if flags & !TFD_TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL); // including TFD_TIMER_CANCEL_ON_SET
    }
    let interval = read_timespec(c.args[2])?;
    let value = read_timespec(c.args[2] + 16)?;
    let next = if value == 0 {
        0
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let at = if t.is_realtime() {
            time_util::realtime_to_monotonic(value)
        } else {
            value
        };
        at.max(1)
    } else {
        time::monotonic_ns().saturating_add(value)
    };
    let old = t.set(next, interval);
    if c.args[3] != 0 {
        write_itimerspec(c.args[3], old)?;
    }
    Ok(0)
}

/// timerfd_gettime(2).
pub fn timerfd_gettime(c: &mut Call<'_>) -> SysResult {
    let f = process::get().fds.lock().file(c.int(0))?;
    write_itimerspec(c.args[1], timer_of(&f)?.get())?;
    Ok(0)
}
