//! /dev: the device files runtimes expect — null, zero, full, random,
//! urandom, and the console (also as tty) — plus the usual links to the
//! standard descriptors.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use keel_hal::machine;

use crate::error::{FsError, FsResult};
use crate::file::{FileLike, OpenFlags, PollEvents};
use crate::node::{DirEntry, FileType, Inode, Metadata, Timespec};

/// Which device a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// Discards writes, reads end of file.
    Null,
    /// Reads zeros.
    Zero,
    /// Reads zeros, writes fail with ENOSPC.
    Full,
    /// Random bytes (never blocks: the generator is seeded at boot).
    Random,
    /// Random bytes.
    Urandom,
    /// The system console.
    Console,
}

impl Device {
    /// (major, minor) as on Linux, so tools that check them are not surprised.
    const fn number(self) -> (u32, u32) {
        match self {
            Device::Null => (1, 3),
            Device::Zero => (1, 5),
            Device::Full => (1, 7),
            Device::Random => (1, 8),
            Device::Urandom => (1, 9),
            Device::Console => (5, 1),
        }
    }
}

const DEV: u64 = 5;

/// A device node.
pub struct DeviceNode {
    device: Device,
    ino: u64,
    name: &'static str,
}

impl Inode for DeviceNode {
    fn metadata(&self) -> Metadata {
        let (major, minor) = self.device.number();
        Metadata {
            dev: DEV,
            ino: self.ino,
            mode: FileType::CharDevice.mode_bits() | 0o666,
            nlink: 1,
            rdev: (u64::from(major) << 8) | u64::from(minor),
            blksize: 4096,
            atime: Timespec::default(),
            ..Default::default()
        }
    }

    fn open_special(self: Arc<Self>, flags: OpenFlags) -> FsResult<Arc<dyn FileLike>> {
        Ok(Arc::new(DeviceFile {
            node: self,
            readable: flags.read,
            writable: flags.write,
            nonblock: AtomicBool::new(flags.nonblock),
        }))
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// An open device.
pub struct DeviceFile {
    node: Arc<DeviceNode>,
    readable: bool,
    writable: bool,
    nonblock: AtomicBool,
}

impl DeviceFile {
    /// A console file not opened through /dev (the app's fds 0, 1 and 2).
    pub fn console(read: bool, write: bool) -> Arc<dyn FileLike> {
        let node = Arc::new(DeviceNode {
            device: Device::Console,
            ino: 100,
            name: "console",
        });
        Arc::new(DeviceFile {
            node,
            readable: read,
            writable: write,
            nonblock: AtomicBool::new(false),
        })
    }
}

impl FileLike for DeviceFile {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        if !self.readable {
            return Err(FsError::BadFile);
        }
        match self.node.device {
            Device::Null => Ok(0),
            Device::Zero | Device::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Device::Random | Device::Urandom => {
                keel_core::random::fill(buf);
                Ok(buf.len())
            }
            Device::Console => read_console(buf, self.nonblock.load(Ordering::Relaxed)),
        }
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        if !self.writable {
            return Err(FsError::BadFile);
        }
        match self.node.device {
            Device::Full => Err(FsError::NoSpace),
            Device::Console => {
                machine::console_write(data);
                Ok(data.len())
            }
            Device::Random | Device::Urandom => {
                keel_core::random::add_entropy(data);
                Ok(data.len())
            }
            Device::Null | Device::Zero => Ok(data.len()),
        }
    }

    fn pread(&self, buf: &mut [u8], _offset: u64) -> FsResult<usize> {
        match self.node.device {
            Device::Console => Err(FsError::NotSeekable),
            _ => self.read(buf),
        }
    }

    fn pwrite(&self, data: &[u8], _offset: u64) -> FsResult<usize> {
        match self.node.device {
            Device::Console => Err(FsError::NotSeekable),
            _ => self.write(data),
        }
    }

    fn seek(&self, _offset: i64, _whence: crate::file::Whence) -> FsResult<u64> {
        match self.node.device {
            Device::Console => Err(FsError::NotSeekable),
            _ => Ok(0),
        }
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(self.node.metadata())
    }

    fn poll(&self) -> PollEvents {
        match self.node.device {
            Device::Console if !console_has_input() => PollEvents::OUT,
            _ => PollEvents::IN.union(PollEvents::OUT),
        }
    }

    fn poll_interval_ns(&self) -> Option<u64> {
        (self.node.device == Device::Console).then_some(CONSOLE_POLL_NS)
    }

    fn is_tty(&self) -> bool {
        self.node.device == Device::Console
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (self.readable, self.writable)
    }

    fn path(&self) -> String {
        alloc::format!("/dev/{}", self.node.name)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// How often a waiting reader or poller looks at the console again. An
/// interrupt-driven console replaces the naps when the serial driver grows
/// receive interrupts.
const CONSOLE_POLL_NS: u64 = 10_000_000;

/// A byte taken from the console by `poll` before anyone read it.
static CONSOLE_PEEKED: keel_core::sync::SpinLock<Option<u8>> = keel_core::sync::SpinLock::new(None);

fn console_has_input() -> bool {
    let mut peeked = CONSOLE_PEEKED.lock();
    if peeked.is_none() {
        *peeked = machine::console_read();
    }
    peeked.is_some()
}

fn console_byte() -> Option<u8> {
    CONSOLE_PEEKED.lock().take().or_else(machine::console_read)
}

/// Read what the console has (a line at most, CR read as NL); wait for at
/// least one byte unless non-blocking.
fn read_console(buf: &mut [u8], nonblock: bool) -> FsResult<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        let mut n = 0;
        while n < buf.len() {
            match console_byte() {
                Some(b'\r') => {
                    buf[n] = b'\n';
                    n += 1;
                    break;
                }
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                    if b == b'\n' {
                        break;
                    }
                }
                None => break,
            }
        }
        if n > 0 {
            return Ok(n);
        }
        if nonblock {
            return Err(FsError::WouldBlock);
        }
        if crate::interrupted() {
            return Err(FsError::Interrupted);
        }
        keel_core::time::sleep_ns(CONSOLE_POLL_NS);
    }
}

/// The /dev directory.
pub struct DevDir {
    nodes: Vec<(&'static str, Arc<dyn Inode>)>,
}

/// Build /dev.
pub fn new() -> Arc<DevDir> {
    let devices = [
        ("null", Device::Null),
        ("zero", Device::Zero),
        ("full", Device::Full),
        ("random", Device::Random),
        ("urandom", Device::Urandom),
        ("console", Device::Console),
        ("tty", Device::Console),
    ];
    let mut nodes: Vec<(&'static str, Arc<dyn Inode>)> = devices
        .iter()
        .enumerate()
        .map(|(i, &(name, device))| {
            (
                name,
                Arc::new(DeviceNode {
                    device,
                    ino: 10 + i as u64,
                    name,
                }) as Arc<dyn Inode>,
            )
        })
        .collect();
    for (i, (name, target)) in [
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("fd", "/proc/self/fd"),
    ]
    .into_iter()
    .enumerate()
    {
        nodes.push((
            name,
            Arc::new(crate::synth::StaticLink::new(
                DEV,
                40 + i as u64,
                target.to_string(),
            )),
        ));
    }
    Arc::new(DevDir { nodes })
}

impl Inode for DevDir {
    fn metadata(&self) -> Metadata {
        Metadata {
            dev: DEV,
            ino: 1,
            mode: FileType::Directory.mode_bits() | 0o755,
            nlink: 2,
            blksize: 4096,
            ..Default::default()
        }
    }
    fn lookup(&self, name: &str) -> FsResult<Arc<dyn Inode>> {
        self.nodes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, i)| i.clone())
            .ok_or(FsError::NotFound)
    }
    fn create(&self, _name: &str, _kind: FileType, _mode: u32) -> FsResult<Arc<dyn Inode>> {
        Err(FsError::Access)
    }
    fn entries(&self) -> FsResult<Vec<DirEntry>> {
        Ok(self
            .nodes
            .iter()
            .map(|(n, i)| {
                let m = i.metadata();
                DirEntry {
                    name: (*n).to_string(),
                    ino: m.ino,
                    kind: m.file_type(),
                }
            })
            .collect())
    }
    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}
