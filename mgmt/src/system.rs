//! The `System` trait: everything the management API reads from or does to
//! the running kernel, so the HTTP side never touches kernel internals.
//!
//! The kernel implements it by calling keel-core (threads, memory, power),
//! keel-fs (files), keel-net (interfaces, sockets) and keel-linux (apps);
//! host tests implement it with a fake. The plain types below are what the
//! endpoints serialise, so the JSON shape is defined here, next to the
//! data, and documented in `openapi.json`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use serde::Serialize;

/// Why a system call-out failed. Each maps to one HTTP status, so the
/// kernel side only has to pick the closest meaning (usually from an errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysError {
    /// No such file, app, variable … (404).
    NotFound,
    /// The kernel refuses (permissions, read-only filesystem) (403).
    PermissionDenied,
    /// The target already exists (409).
    AlreadyExists,
    /// A directory is not empty (409).
    NotEmpty,
    /// A file operation met a directory (409).
    IsDirectory,
    /// A path component or the target is not a directory (409).
    NotDirectory,
    /// The resource is in a state that forbids this (app already ended,
    /// device busy) (409).
    Conflict,
    /// The filesystem is full or a quota is hit (507).
    NoSpace,
    /// The request names something the kernel cannot accept (bad path,
    /// bad program, bad argument) (400).
    InvalidInput,
    /// The kernel has no such feature on this machine (501).
    Unsupported,
    /// An I/O error the caller cannot fix (500).
    Io,
}

impl SysError {
    /// The HTTP status for this error.
    pub fn status(self) -> u16 {
        match self {
            SysError::NotFound => 404,
            SysError::PermissionDenied => 403,
            SysError::AlreadyExists
            | SysError::NotEmpty
            | SysError::IsDirectory
            | SysError::NotDirectory
            | SysError::Conflict => 409,
            SysError::NoSpace => 507,
            SysError::InvalidInput => 400,
            SysError::Unsupported => 501,
            SysError::Io => 500,
        }
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SysError::NotFound => "not found",
            SysError::PermissionDenied => "permission denied",
            SysError::AlreadyExists => "already exists",
            SysError::NotEmpty => "directory not empty",
            SysError::IsDirectory => "is a directory",
            SysError::NotDirectory => "not a directory",
            SysError::Conflict => "conflicts with the current state",
            SysError::NoSpace => "no space left",
            SysError::InvalidInput => "invalid input",
            SysError::Unsupported => "not supported on this system",
            SysError::Io => "I/O error",
        })
    }
}

/// Result of a `System` call.
pub type SysResult<T> = Result<T, SysError>;

/// Kernel name and build.
#[derive(Debug, Clone, Serialize)]
pub struct OsVersion {
    /// "Keel".
    pub name: String,
    /// Release version, e.g. "0.1.0".
    pub version: String,
    /// Build identifier (commit, profile); free text.
    pub build: String,
    /// Architecture, e.g. "x86_64".
    pub arch: String,
}

/// Memory in bytes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryInfo {
    /// Usable RAM.
    pub total: u64,
    /// RAM not in use.
    pub free: u64,
}

/// Scheduler state of a kernel or app thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreadState {
    /// On a CPU now.
    Running,
    /// Ready, waiting for a CPU.
    Runnable,
    /// Blocked on something (lock, I/O, sleep).
    Waiting,
    /// Exited, not yet reaped.
    Dead,
}

/// One thread.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadInfo {
    /// Kernel thread id (the app sees it as its TID).
    pub id: u64,
    /// Name (app threads: their comm).
    pub name: String,
    /// State right now.
    pub state: ThreadState,
    /// CPU it last ran on.
    pub cpu: u32,
    /// CPU time used, nanoseconds.
    pub cpu_time_ns: u64,
}

/// Power-off or reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Stop the VM.
    PowerOff,
    /// Restart the VM.
    Reboot,
}

/// How a file is opened for an API transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read an existing regular file.
    Read,
    /// Create or truncate a regular file and write it.
    Replace,
    /// Create a new regular file; `AlreadyExists` if there is one.
    CreateNew,
}

/// Kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Device, FIFO, socket.
    Other,
}

/// What `stat` tells.
#[derive(Debug, Clone, Serialize)]
pub struct FileStat {
    /// Kind of node.
    #[serde(rename = "type")]
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (the low 12 bits of st_mode).
    pub mode: u32,
    /// Last modification, seconds since the Unix epoch.
    pub modified: i64,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Serialize)]
pub struct DirEntry {
    /// Name within the directory.
    pub name: String,
    /// Its attributes.
    #[serde(flatten)]
    pub stat: FileStat,
}

/// One mounted filesystem's space.
#[derive(Debug, Clone, Serialize)]
pub struct FsUsage {
    /// Where it is mounted.
    pub mountpoint: String,
    /// Filesystem type ("zfs", "ramfs", …).
    pub filesystem: String,
    /// Source (pool/dataset, device), free text.
    pub source: String,
    /// Total bytes.
    pub total: u64,
    /// Free bytes.
    pub free: u64,
    /// Bytes available to unprivileged writers.
    pub available: u64,
}

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Path of the program in the filesystem.
    pub path: String,
    /// Full argv, including argv\[0\].
    pub argv: Vec<String>,
    /// Extra environment, `NAME=value`, on top of the system environment.
    pub env: Vec<(String, String)>,
}

/// How an app is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AppState {
    /// Still running.
    Running,
    /// Called exit.
    Exited {
        /// Exit status.
        code: i32,
    },
    /// Ended by a signal.
    Killed {
        /// Signal number.
        signal: i32,
    },
}

/// A started app.
#[derive(Debug, Clone, Serialize)]
pub struct AppInfo {
    /// Id chosen by the kernel, unique for the boot.
    pub id: u64,
    /// Program path.
    pub path: String,
    /// argv as started.
    pub argv: Vec<String>,
    /// State and exit status.
    #[serde(flatten)]
    pub state: AppState,
    /// Start time, nanoseconds since boot.
    pub started_ns: u64,
    /// End time, nanoseconds since boot, once ended.
    pub ended_ns: Option<u64>,
}

/// An app's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// fd 1.
    Stdout,
    /// fd 2.
    Stderr,
}

/// An address on an interface.
#[derive(Debug, Clone, Serialize)]
pub struct IfAddress {
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// One network interface.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    /// Name ("eth0", "lo").
    pub name: String,
    /// MAC address as "aa:bb:cc:dd:ee:ff"; empty for loopback.
    pub mac: String,
    /// MTU in bytes.
    pub mtu: u32,
    /// Link up.
    pub up: bool,
    /// Configured addresses.
    pub addresses: Vec<IfAddress>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

/// One route.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Destination network.
    pub destination: IpAddr,
    /// Its prefix length (0 for the default route).
    pub prefix_len: u8,
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface name.
    pub interface: String,
}

/// Socket counts by protocol and state.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SocketStats {
    /// TCP sockets listening.
    pub tcp_listen: u64,
    /// TCP connections established.
    pub tcp_established: u64,
    /// TCP sockets in any other state.
    pub tcp_other: u64,
    /// UDP sockets.
    pub udp: u64,
    /// Unix-domain sockets.
    pub unix: u64,
}

/// Processors and platform.
#[derive(Debug, Clone, Serialize)]
pub struct HardwareInfo {
    /// Architecture, e.g. "aarch64".
    pub arch: String,
    /// Online processors.
    pub processor_count: u32,
    /// CPU model string if the CPU tells one.
    pub cpu_model: String,
    /// Feature flags (cpuid names, HWCAP names, …).
    pub cpu_flags: Vec<String>,
    /// Hypervisor name if detected ("KVM", "TCG", "Xen").
    pub hypervisor: Option<String>,
    /// Firmware / boot protocol ("PVH", "UEFI", "SLOF", …).
    pub firmware: Option<String>,
    /// Machine model ("microvm", "virt", "pseries").
    pub machine: String,
}

/// A named counter.
#[derive(Debug, Clone, Serialize)]
pub struct Counter {
    /// Name (syscall name, interrupt line).
    pub name: String,
    /// Count since boot.
    pub count: u64,
}

/// Kernel counters since boot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// System calls by name.
    pub syscalls: Vec<Counter>,
    /// Context switches.
    pub context_switches: u64,
    /// Page faults.
    pub page_faults: u64,
    /// Interrupts by line or vector name.
    pub interrupts: Vec<Counter>,
    /// Bytes received on all interfaces.
    pub net_rx_bytes: u64,
    /// Bytes sent on all interfaces.
    pub net_tx_bytes: u64,
    /// Bytes read from disks.
    pub disk_read_bytes: u64,
    /// Bytes written to disks.
    pub disk_write_bytes: u64,
}

/// Everything the API needs from the kernel.
///
/// One value serves every connection of the server; calls come from the
/// server's own thread, never concurrently, so `&mut self` is enough and
/// the kernel side does its own locking inside each call.
pub trait System {
    /// An open file during a streamed download or upload. Dropped without
    /// [`System::close`] only when the connection died mid-transfer.
    type File;

    // ---- /os ----
    /// Kernel name, version, build, arch.
    fn version(&self) -> OsVersion;
    /// Nanoseconds since boot.
    fn uptime_ns(&self) -> u64;
    /// Wall-clock time, nanoseconds since the Unix epoch, if known (RTC).
    fn wall_clock_ns(&self) -> Option<u64>;
    /// RAM totals.
    fn memory(&self) -> MemoryInfo;
    /// The kernel command line in force.
    fn cmdline(&self) -> String;
    /// Store a command line for the next boot.
    fn set_cmdline(&mut self, cmdline: &str) -> SysResult<()>;
    /// Host name.
    fn hostname(&self) -> String;
    /// Change the host name (what uname reports from now on).
    fn set_hostname(&mut self, name: &str) -> SysResult<()>;
    /// The kernel log (console history), oldest first.
    fn dmesg(&self) -> String;
    /// Every thread.
    fn threads(&self) -> Vec<ThreadInfo>;
    /// Power off or reboot. The implementation must let the HTTP response
    /// go out first (act from another thread after a short delay).
    fn power(&mut self, action: PowerAction) -> SysResult<()>;

    // ---- /env: the environment new apps inherit ----
    /// All variables, sorted by name.
    fn env_list(&self) -> Vec<(String, String)>;
    /// One variable.
    fn env_get(&self, name: &str) -> Option<String>;
    /// Set (create or replace) a variable.
    fn env_set(&mut self, name: &str, value: &str) -> SysResult<()>;
    /// Remove a variable; `NotFound` if unset.
    fn env_remove(&mut self, name: &str) -> SysResult<()>;

    // ---- /file, /fs ----
    /// Attributes of `path` (absolute), following symlinks.
    fn stat(&mut self, path: &str) -> SysResult<FileStat>;
    /// Entries of the directory `path`, without "." and "..".
    fn list_dir(&mut self, path: &str) -> SysResult<Vec<DirEntry>>;
    /// Open a regular file for a transfer.
    fn open(&mut self, path: &str, mode: OpenMode) -> SysResult<Self::File>;
    /// Read from `offset`; `Ok(0)` at end of file.
    fn read_at(&mut self, file: &mut Self::File, offset: u64, buf: &mut [u8]) -> SysResult<usize>;
    /// Write all of `data` at `offset`.
    fn write_at(&mut self, file: &mut Self::File, offset: u64, data: &[u8]) -> SysResult<()>;
    /// Finish a transfer: for writes, make the data durable (a ZFS txg
    /// commit may report `NoSpace` here).
    fn close(&mut self, file: Self::File) -> SysResult<()>;
    /// Create a directory.
    fn mkdir(&mut self, path: &str) -> SysResult<()>;
    /// Remove a file or an empty directory.
    fn remove(&mut self, path: &str) -> SysResult<()>;
    /// Space on each mounted filesystem.
    fn fs_usage(&mut self) -> Vec<FsUsage>;

    // ---- /app ----
    /// Start a program; returns its id.
    fn app_start(&mut self, spec: &AppSpec) -> SysResult<u64>;
    /// Running and ended apps, oldest first.
    fn apps(&self) -> Vec<AppInfo>;
    /// Send `signal` to a running app; `Conflict` if it has ended.
    fn app_signal(&mut self, id: u64, signal: i32) -> SysResult<()>;
    /// The last `max` bytes the app wrote to `stream` (kept in a ring by
    /// the kernel).
    fn app_log(&self, id: u64, stream: LogStream, max: usize) -> SysResult<Vec<u8>>;

    // ---- /network ----
    /// Interfaces with addresses and counters.
    fn interfaces(&self) -> Vec<Interface>;
    /// Routing table.
    fn routes(&self) -> Vec<Route>;
    /// Socket counts.
    fn socket_stats(&self) -> SocketStats;

    // ---- /hardware, /metrics ----
    /// Processors and platform.
    fn hardware(&self) -> HardwareInfo;
    /// Counters since boot.
    fn metrics(&self) -> Metrics;
}
