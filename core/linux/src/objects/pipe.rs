//! Pipes: a bounded byte ring shared by a read end and a write end.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use keel_core::sync::{SpinLock, WaitQueue};
use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, Readiness};

/// Bytes a pipe holds before writers wait (Linux's default).
pub const CAPACITY: usize = 65536;
/// Writes of at most this many bytes are atomic (PIPE_BUF).
const PIPE_BUF: usize = 4096;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

struct Shared {
    data: SpinLock<VecDeque<u8>>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    changed: WaitQueue,
    readiness: Readiness,
    ino: u64,
}

/// One end of a pipe.
pub struct PipeEnd {
    shared: Arc<Shared>,
    writer: bool,
    nonblock: AtomicBool,
}

/// A new pipe: (read end, write end).
pub fn new(nonblock: bool) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let shared = Arc::new(Shared {
        data: SpinLock::new(VecDeque::new()),
        readers: AtomicUsize::new(1),
        writers: AtomicUsize::new(1),
        changed: WaitQueue::new(),
        readiness: Readiness::new(),
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
    });
    let end = |writer| {
        Arc::new(PipeEnd {
            shared: shared.clone(),
            writer,
            nonblock: AtomicBool::new(nonblock),
        })
    };
    (end(false), end(true))
}

impl PipeEnd {
    fn notify(&self) {
        self.shared.changed.wake_all();
        self.shared.readiness.notify();
    }

    /// Bytes waiting to be read (FIONREAD).
    pub fn available(&self) -> usize {
        self.shared.data.lock().len()
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        if self.writer {
            self.shared.writers.fetch_sub(1, Ordering::AcqRel);
        } else {
            self.shared.readers.fetch_sub(1, Ordering::AcqRel);
        }
        self.notify();
    }
}

impl FileLike for PipeEnd {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        if self.writer {
            return Err(FsError::BadFile);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut d = self.shared.data.lock();
                if !d.is_empty() {
                    let n = buf.len().min(d.len());
                    for (slot, b) in buf.iter_mut().zip(d.drain(..n)) {
                        *slot = b;
                    }
                    drop(d);
                    self.notify();
                    return Ok(n);
                }
                if self.shared.writers.load(Ordering::Acquire) == 0 {
                    return Ok(0); // end of file
                }
            }
            if self.nonblocking() {
                return Err(FsError::WouldBlock);
            }
            if crate::signal::interrupted() {
                return Err(FsError::Interrupted);
            }
            self.shared.changed.wait_until(|| {
                !self.shared.data.lock().is_empty()
                    || self.shared.writers.load(Ordering::Acquire) == 0
                    || crate::signal::interrupted()
            });
        }
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        if !self.writer {
            return Err(FsError::BadFile);
        }
        let mut done = 0;
        while done < data.len() {
            if self.shared.readers.load(Ordering::Acquire) == 0 {
                crate::signal::raise_on_current(crate::signal::SIGPIPE);
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(FsError::BrokenPipe)
                };
            }
            let room = {
                let mut d = self.shared.data.lock();
                let room = CAPACITY - d.len();
                let rest = data.len() - done;
                // Small writes go in whole or not at all (PIPE_BUF atomicity).
                let n = if rest <= PIPE_BUF && room < rest {
                    0
                } else {
                    room.min(rest)
                };
                d.extend(&data[done..done + n]);
                done += n;
                n
            };
            if room > 0 {
                self.notify();
                continue;
            }
            if self.nonblocking() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(FsError::WouldBlock)
                };
            }
            if crate::signal::interrupted() {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(FsError::Interrupted)
                };
            }
            let want = (data.len() - done).min(PIPE_BUF);
            self.shared.changed.wait_until(|| {
                CAPACITY - self.shared.data.lock().len() >= want
                    || self.shared.readers.load(Ordering::Acquire) == 0
                    || crate::signal::interrupted()
            });
        }
        Ok(done)
    }

    fn metadata(&self) -> FsResult<Metadata> {
        let mut m = super::anon_metadata(FileType::Fifo, self.shared.ino);
        m.size = self.available() as u64;
        Ok(m)
    }

    fn poll(&self) -> PollEvents {
        let len = self.shared.data.lock().len();
        if self.writer {
            let mut e = PollEvents::default();
            if self.shared.readers.load(Ordering::Acquire) == 0 {
                e = e.union(PollEvents::ERR);
            } else if CAPACITY - len >= PIPE_BUF {
                e = e.union(PollEvents::OUT);
            }
            e
        } else {
            let mut e = PollEvents::default();
            if len > 0 {
                e = e.union(PollEvents::IN);
            }
            if self.shared.writers.load(Ordering::Acquire) == 0 {
                e = e.union(PollEvents::HUP);
            }
            e
        }
    }

    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.shared.readiness)
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (!self.writer, self.writer)
    }

    fn path(&self) -> String {
        alloc::format!("pipe:[{}]", self.shared.ino)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
