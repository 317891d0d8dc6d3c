//! timerfd: a timer whose expirations are read as a count. Expiry is
//! computed from the monotonic clock when asked; a kernel thread is not
//! needed — a sleeping reader or poller sleeps until the next expiry.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_core::sync::SpinLock;
use keel_core::time;
use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, PollWaiter, Readiness};

#[derive(Clone, Copy, Default)]
struct Setting {
    /// Next expiry (monotonic ns), 0 = disarmed.
    next: u64,
    /// Period (ns), 0 = one-shot.
    interval: u64,
    /// Expirations counted but not read.
    pending: u64,
}

/// A timerfd.
pub struct TimerFd {
    setting: SpinLock<Setting>,
    /// Whether absolute times are on the realtime clock.
    realtime: bool,
    nonblock: AtomicBool,
    readiness: Readiness,
}

impl Setting {
    /// Fold expirations up to `now` into `pending`.
    fn advance(&mut self, now: u64) {
        if self.next == 0 || now < self.next {
            return;
        }
        match (now - self.next).checked_div(self.interval) {
            None => {
                // One-shot.
                self.pending += 1;
                self.next = 0;
            }
            Some(periods) => {
                self.pending += periods + 1;
                self.next += (periods + 1) * self.interval;
            }
        }
    }
}

impl TimerFd {
    /// A disarmed timer on the realtime (`realtime`) or monotonic clock.
    pub fn new(nonblock: bool, realtime: bool) -> Self {
        Self {
            setting: SpinLock::new(Setting::default()),
            realtime,
            nonblock: AtomicBool::new(nonblock),
            readiness: Readiness::new(),
        }
    }

    /// Whether absolute times given to it are realtime-clock times.
    pub fn is_realtime(&self) -> bool {
        self.realtime
    }

    /// Arm (`next` 0 disarms); returns the old (remaining, interval).
    pub fn set(&self, next: u64, interval: u64) -> (u64, u64) {
        let now = time::monotonic_ns();
        let mut s = self.setting.lock();
        s.advance(now);
        let old = (s.next.saturating_sub(now), s.interval);
        *s = Setting {
            next,
            interval,
            pending: 0,
        };
        drop(s);
        self.readiness.notify();
        old
    }

    /// (time to next expiry, interval).
    pub fn get(&self) -> (u64, u64) {
        let now = time::monotonic_ns();
        let mut s = self.setting.lock();
        s.advance(now);
        (
            if s.next == 0 {
                0
            } else {
                s.next.saturating_sub(now)
            },
            s.interval,
        )
    }

    /// The next expiry, for pollers deciding how long to sleep.
    pub fn next_expiry(&self) -> Option<u64> {
        let s = self.setting.lock();
        (s.next != 0 && s.pending == 0).then_some(s.next)
    }
}

impl FileLike for TimerFd {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        if buf.len() < 8 {
            return Err(FsError::Invalid);
        }
        let waiter = PollWaiter::new();
        self.readiness.watch(&waiter);
        loop {
            let next = {
                let mut s = self.setting.lock();
                s.advance(time::monotonic_ns());
                if s.pending > 0 {
                    buf[..8].copy_from_slice(&s.pending.to_le_bytes());
                    s.pending = 0;
                    return Ok(8);
                }
                s.next
            };
            if self.nonblocking() {
                return Err(FsError::WouldBlock);
            }
            if crate::signal::interrupted() {
                return Err(FsError::Interrupted);
            }
            // Disarmed (next == 0): only a settime can end the wait, and it
            // notifies the readiness list this waiter is on.
            let deadline = (next != 0).then_some(next);
            crate::signal::with_interruptible(&waiter, || waiter.wait(deadline));
        }
    }

    fn write(&self, _data: &[u8]) -> FsResult<usize> {
        Err(FsError::Invalid)
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(super::anon_metadata(FileType::Regular, 0))
    }

    fn poll(&self) -> PollEvents {
        let mut s = self.setting.lock();
        s.advance(time::monotonic_ns());
        if s.pending > 0 {
            PollEvents::IN
        } else {
            PollEvents::default()
        }
    }

    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.readiness)
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (true, false)
    }

    fn path(&self) -> String {
        "anon_inode:[timerfd]".into()
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
