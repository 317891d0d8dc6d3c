//! epoll: an interest list and a wait for readiness on any of it.
//! Level-triggered entries report whatever is ready; edge-triggered ones
//! only when the file's readiness changed since they last reported.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use keel_core::sync::SpinLock;
use keel_core::time;
use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, PollWaiter, Readiness};

/// EPOLLET.
pub const EPOLLET: u32 = 1 << 31;
/// EPOLLONESHOT.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// EPOLLEXCLUSIVE.
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// EPOLLWAKEUP.
pub const EPOLLWAKEUP: u32 = 1 << 29;
const ALWAYS: u32 = 0x8 | 0x10; // EPOLLERR | EPOLLHUP

struct Interest {
    file: Weak<dyn FileLike>,
    events: u32,
    data: u64,
    /// Readiness generation last reported (edge-triggered), or None.
    reported: Option<u64>,
    /// One-shot entry that fired and is now disabled.
    disarmed: bool,
}

/// An epoll instance.
pub struct Epoll {
    interest: SpinLock<BTreeMap<(i32, usize), Interest>>,
    waiter: Arc<PollWaiter>,
    readiness: Readiness,
}

fn key(fd: i32, file: &Arc<dyn FileLike>) -> (i32, usize) {
    (fd, Arc::as_ptr(file) as *const () as usize)
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

impl Epoll {
    /// An empty interest list.
    pub fn new() -> Self {
        Self {
            interest: SpinLock::new(BTreeMap::new()),
            waiter: PollWaiter::new(),
            readiness: Readiness::new(),
        }
    }

    /// EPOLL_CTL_ADD.
    pub fn add(&self, fd: i32, file: &Arc<dyn FileLike>, events: u32, data: u64) -> FsResult<()> {
        let mut i = self.interest.lock();
        let k = key(fd, file);
        if i.contains_key(&k) {
            return Err(FsError::Exists);
        }
        if let Some(r) = file.readiness() {
            r.watch(&self.waiter);
        }
        i.insert(
            k,
            Interest {
                file: Arc::downgrade(file),
                events,
                data,
                reported: None,
                disarmed: false,
            },
        );
        drop(i);
        self.waiter.notify();
        Ok(())
    }

    /// EPOLL_CTL_MOD.
    pub fn modify(
        &self,
        fd: i32,
        file: &Arc<dyn FileLike>,
        events: u32,
        data: u64,
    ) -> FsResult<()> {
        let mut i = self.interest.lock();
        let e = i.get_mut(&key(fd, file)).ok_or(FsError::NotFound)?;
        *e = Interest {
            file: Arc::downgrade(file),
            events,
            data,
            reported: None,
            disarmed: false,
        };
        drop(i);
        self.waiter.notify();
        Ok(())
    }

    /// EPOLL_CTL_DEL.
    pub fn remove(&self, fd: i32, file: &Arc<dyn FileLike>) -> FsResult<()> {
        self.interest
            .lock()
            .remove(&key(fd, file))
            .map(|_| ())
            .ok_or(FsError::NotFound)
    }

    /// Ready (events, data) pairs now, at most `max`.
    fn collect(&self, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut i = self.interest.lock();
        i.retain(|_, e| e.file.strong_count() > 0);
        for e in i.values_mut() {
            if out.len() == max {
                break;
            }
            if e.disarmed {
                continue;
            }
            let Some(file) = e.file.upgrade() else {
                continue;
            };
            let ready = u32::from(file.poll().0) & (e.events | ALWAYS);
            if ready == 0 {
                continue;
            }
            if e.events & EPOLLET != 0 {
                let generation = file.readiness().map_or(0, Readiness::generation);
                if e.reported == Some(generation) {
                    continue;
                }
                e.reported = Some(generation);
            }
            if e.events & EPOLLONESHOT != 0 {
                e.disarmed = true;
            }
            out.push((ready, e.data));
        }
        out
    }

    /// The earliest time a watched file needs looking at again.
    fn next_timer(&self) -> Option<u64> {
        let files: Vec<Arc<dyn FileLike>> = self
            .interest
            .lock()
            .values()
            .filter_map(|e| e.file.upgrade())
            .collect();
        files
            .iter()
            .filter_map(|f| super::wake_hint(f.as_ref()))
            .min()
    }

    /// Wait until something is ready or `deadline` (None: for ever,
    /// Some(0): do not wait); returns what is ready.
    pub fn wait(&self, max: usize, deadline: Option<u64>) -> FsResult<Vec<(u32, u64)>> {
        loop {
            let ready = self.collect(max);
            if !ready.is_empty() {
                return Ok(ready);
            }
            let now = time::monotonic_ns();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(ready);
            }
            if crate::signal::interrupted() {
                return Err(FsError::Interrupted);
            }
            let wake = match (deadline, self.next_timer()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            crate::signal::with_interruptible(&self.waiter, || self.waiter.wait(wake));
        }
    }
}

impl FileLike for Epoll {
    fn read(&self, _buf: &mut [u8]) -> FsResult<usize> {
        Err(FsError::Invalid)
    }
    fn write(&self, _data: &[u8]) -> FsResult<usize> {
        Err(FsError::Invalid)
    }
    fn metadata(&self) -> FsResult<Metadata> {
        Ok(super::anon_metadata(FileType::Regular, 0))
    }
    fn poll(&self) -> PollEvents {
        if self.collect_peek() {
            PollEvents::IN
        } else {
            PollEvents::default()
        }
    }
    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.readiness)
    }
    fn nonblocking(&self) -> bool {
        false
    }
    fn set_status(&self, _nonblock: bool, _append: bool) {}
    fn access(&self) -> (bool, bool) {
        (true, true)
    }
    fn path(&self) -> String {
        "anon_inode:[eventpoll]".into()
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Epoll {
    /// Whether anything is ready, without consuming edge-triggered events.
    fn collect_peek(&self) -> bool {
        self.interest.lock().values().any(|e| {
            !e.disarmed
                && e.file
                    .upgrade()
                    .is_some_and(|f| u32::from(f.poll().0) & (e.events | ALWAYS) != 0)
        })
    }
}
