//! futex(2) on app memory, over core's address-keyed wait queues.

use keel_core::app::{cmpxchg_u32, copy_in};
use keel_core::sync::{WaitError, nudge, requeue_keyed, wait_keyed, wake_keyed};

use crate::errno::Errno;

/// FUTEX_WAITERS.
pub const WAITERS: u32 = 0x8000_0000;
/// FUTEX_OWNER_DIED.
pub const OWNER_DIED: u32 = 0x4000_0000;
/// FUTEX_TID_MASK.
pub const TID_MASK: u32 = 0x3fff_ffff;

/// Read the app word at `addr` (EFAULT if unreadable, EINVAL if misaligned).
pub fn read_word(addr: u64) -> Result<u32, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 4];
    if copy_in(addr as usize, &mut b) {
        Ok(u32::from_le_bytes(b))
    } else {
        Err(Errno::EFAULT)
    }
}

fn errno_of(e: WaitError) -> Errno {
    match e {
        WaitError::ValueChanged => Errno::EAGAIN,
        WaitError::TimedOut => Errno::ETIMEDOUT,
        WaitError::Fault => Errno::EFAULT,
    }
}

/// FUTEX_WAIT(_BITSET): sleep while the word holds `expected`.
pub fn wait(addr: u64, expected: u32, bitset: u32, deadline: Option<u64>) -> Result<(), Errno> {
    // Fault the page in with interrupts on; the check under the bucket lock
    // then needs no paging.
    read_word(addr)?;
    let lt = crate::thread::current();
    lt.futex_word
        .store(addr, core::sync::atomic::Ordering::Release);
    let r = wait_keyed(
        addr as usize,
        bitset,
        || {
            let mut b = [0u8; 4];
            copy_in(addr as usize, &mut b).then(|| u32::from_le_bytes(b) == expected)
        },
        deadline,
        crate::signal::interrupted,
    );
    lt.futex_word
        .store(0, core::sync::atomic::Ordering::Release);
    r.map_err(errno_of)?;
    if crate::signal::interrupted() {
        return Err(Errno::EINTR);
    }
    Ok(())
}

/// FUTEX_WAKE(_BITSET).
pub fn wake(addr: u64, count: usize, bitset: u32) -> usize {
    wake_keyed(addr as usize, count, bitset)
}

/// Wake a thread waiting on `addr` so it notices a signal.
pub fn interrupt(addr: u64) {
    nudge(addr as usize);
}

/// FUTEX_(CMP_)REQUEUE: wake `count`, move up to `requeue` to `to`.
pub fn requeue(
    from: u64,
    to: u64,
    count: usize,
    requeue: usize,
    expect: Option<u32>,
) -> Result<usize, Errno> {
    read_word(from)?;
    let check = || match expect {
        None => Some(true),
        Some(v) => {
            let mut b = [0u8; 4];
            copy_in(from as usize, &mut b).then(|| u32::from_le_bytes(b) == v)
        }
    };
    let (woken, moved) =
        requeue_keyed(from as usize, to as usize, count, requeue, check).map_err(errno_of)?;
    Ok(if expect.is_some() {
        woken + moved
    } else {
        woken
    })
}

/// Atomically apply `f` to the app word at `addr`; returns the old value.
pub fn update(addr: u64, f: impl Fn(u32) -> u32) -> Result<u32, Errno> {
    let mut old = read_word(addr)?;
    loop {
        match cmpxchg_u32(addr as usize, old, f(old)) {
            Some(found) if found == old => return Ok(old),
            Some(found) => old = found,
            None => return Err(Errno::EFAULT),
        }
    }
}

/// FUTEX_WAKE_OP.
pub fn wake_op(
    addr: u64,
    addr2: u64,
    count: usize,
    count2: usize,
    encoded: u32,
) -> Result<usize, Errno> {
    let op = (encoded >> 28) & 7;
    let shift = encoded & (8 << 28) != 0;
    let cmp = (encoded >> 24) & 15;
    let mut oparg = (encoded >> 12) & 0xfff;
    let cmparg = encoded & 0xfff;
    if shift {
        if oparg > 31 {
            return Err(Errno::EINVAL);
        }
        oparg = 1 << oparg;
    }
    let old = update(addr2, |v| match op {
        0 => oparg,
        1 => v.wrapping_add(oparg),
        2 => v | oparg,
        3 => v & !oparg,
        _ => v ^ oparg,
    })?;
    if op > 4 || cmp > 5 {
        return Err(Errno::ENOSYS);
    }
    let mut woken = wake(addr, count, u32::MAX);
    let (o, a) = (old as i32, cmparg as i32);
    let hit = match cmp {
        0 => o == a,
        1 => o != a,
        2 => o < a,
        3 => o <= a,
        4 => o > a,
        _ => o >= a,
    };
    if hit {
        woken += wake(addr2, count2, u32::MAX);
    }
    Ok(woken)
}

/// FUTEX_LOCK_PI / TRYLOCK_PI (no priority inheritance: Keel's scheduler
/// has no priorities to inherit).
pub fn lock_pi(addr: u64, tid: u32, deadline: Option<u64>, try_only: bool) -> Result<(), Errno> {
    loop {
        let v = read_word(addr)?;
        if v & TID_MASK == tid {
            return Err(Errno::EDEADLK);
        }
        if v & TID_MASK == 0 {
            // Free (maybe with waiters or owner-died bits): take it.
            if cmpxchg_u32(addr as usize, v, tid | (v & WAITERS)) == Some(v) {
                return Ok(());
            }
            continue;
        }
        if try_only {
            return Err(Errno::EAGAIN);
        }
        let want = v | WAITERS;
        if v != want && cmpxchg_u32(addr as usize, v, want) != Some(v) {
            continue;
        }
        match wait(addr, want, u32::MAX, deadline) {
            Ok(()) | Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
}

/// FUTEX_UNLOCK_PI.
pub fn unlock_pi(addr: u64, tid: u32) -> Result<(), Errno> {
    let v = read_word(addr)?;
    if v & TID_MASK != tid {
        return Err(Errno::EPERM);
    }
    if cmpxchg_u32(addr as usize, v, 0) != Some(v) {
        return Err(Errno::EAGAIN);
    }
    if v & WAITERS != 0 {
        wake(addr, 1, u32::MAX);
    }
    Ok(())
}
