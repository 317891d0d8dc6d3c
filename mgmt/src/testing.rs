//! A fake `System`: an in-memory file tree with a capacity, an environment,
//! apps with logs, and fixed machine facts. It records what the API did to
//! it (largest write, open handles) so tests can check streaming and leaks.
//!
//! Public behind the `testing` feature so every management front end (the
//! REST API here, the SSH shell in keel-ssh) and the host examples test
//! against the same double.

// A test double: its fields are the knobs and records tests poke at, named
// for what they hold.
#![allow(missing_docs)]

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

use crate::system::*;

#[derive(Debug, Clone)]
pub enum Node {
    File(Vec<u8>),
    Dir,
}

pub struct FakeFile {
    pub path: String,
    pub writable: bool,
}

pub struct Fake {
    pub files: BTreeMap<String, Node>,
    /// Bytes of file data the "disk" holds at most.
    pub capacity: usize,
    pub read_only: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub apps: Vec<AppInfo>,
    pub logs: BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    pub cmdline: String,
    pub hostname: String,
    pub power: Vec<PowerAction>,
    pub signals: Vec<(u64, i32)>,
    pub open_handles: usize,
    pub largest_write: usize,
    pub largest_read: usize,
    /// Makes `close` fail with this error (a txg commit failing).
    pub close_error: Option<SysError>,
    /// When non-zero, about one file operation in `chaos` fails with an
    /// error drawn from every kind, to show each failure is answered and
    /// nothing leaks.
    pub chaos: u64,
    pub chaos_state: u64,
}

impl Default for Fake {
    fn default() -> Self {
        Self::new()
    }
}

impl Fake {
    pub fn new() -> Self {
        let mut files = BTreeMap::new();
        files.insert("/".to_string(), Node::Dir);
        files.insert("/etc".to_string(), Node::Dir);
        files.insert(
            "/etc/hosts".to_string(),
            Node::File(b"127.0.0.1 localhost\n".to_vec()),
        );
        files.insert("/ro".to_string(), Node::Dir);
        let mut env = BTreeMap::new();
        env.insert("PATH".to_string(), "/bin".to_string());
        let mut logs = BTreeMap::new();
        logs.insert(1, (b"hello\nworld\n".to_vec(), b"oops\n".to_vec()));
        Fake {
            files,
            capacity: 256 * 1024 * 1024,
            read_only: vec!["/ro".to_string()],
            env,
            apps: vec![AppInfo {
                id: 1,
                path: "/bin/true".to_string(),
                argv: vec!["true".to_string()],
                state: AppState::Exited { code: 0 },
                started_ns: 5,
                ended_ns: Some(9),
            }],
            logs,
            cmdline: "keel.root=auto".to_string(),
            hostname: "keel".to_string(),
            power: Vec::new(),
            signals: Vec::new(),
            open_handles: 0,
            largest_write: 0,
            largest_read: 0,
            close_error: None,
            chaos: 0,
            chaos_state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Maybe fail, if chaos is on.
    fn chaos(&mut self) -> SysResult<()> {
        if self.chaos == 0 {
            return Ok(());
        }
        // xorshift64: deterministic, so a failure replays.
        let mut x = self.chaos_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.chaos_state = x;
        if !x.is_multiple_of(self.chaos) {
            return Ok(());
        }
        const ALL: [SysError; 11] = [
            SysError::NotFound,
            SysError::PermissionDenied,
            SysError::AlreadyExists,
            SysError::NotEmpty,
            SysError::IsDirectory,
            SysError::NotDirectory,
            SysError::Conflict,
            SysError::NoSpace,
            SysError::InvalidInput,
            SysError::Unsupported,
            SysError::Io,
        ];
        Err(ALL[(x >> 32) as usize % ALL.len()])
    }

    fn used(&self) -> usize {
        self.files
            .values()
            .map(|n| match n {
                Node::File(d) => d.len(),
                Node::Dir => 0,
            })
            .sum()
    }

    fn parent(path: &str) -> &str {
        match path.rfind('/') {
            Some(0) => "/",
            Some(i) => &path[..i],
            None => "/",
        }
    }

    fn check_parent(&self, path: &str) -> SysResult<()> {
        if path == "/" {
            return Err(SysError::AlreadyExists);
        }
        if self.read_only.iter().any(|p| path.starts_with(p.as_str())) {
            return Err(SysError::PermissionDenied);
        }
        match self.files.get(Self::parent(path)) {
            Some(Node::Dir) => Ok(()),
            Some(Node::File(_)) => Err(SysError::NotDirectory),
            None => Err(SysError::NotFound),
        }
    }

    pub fn file(&self, path: &str) -> Option<&Vec<u8>> {
        match self.files.get(path) {
            Some(Node::File(d)) => Some(d),
            _ => None,
        }
    }
}

fn stat_of(node: &Node) -> FileStat {
    match node {
        Node::File(d) => FileStat {
            kind: FileKind::File,
            size: d.len() as u64,
            mode: 0o644,
            modified: 1_700_000_000,
        },
        Node::Dir => FileStat {
            kind: FileKind::Directory,
            size: 0,
            mode: 0o755,
            modified: 1_700_000_000,
        },
    }
}

impl System for Fake {
    type File = FakeFile;

    fn version(&self) -> OsVersion {
        OsVersion {
            name: "Keel".to_string(),
            version: "0.1.0".to_string(),
            build: "test".to_string(),
            arch: "x86_64".to_string(),
        }
    }
    fn uptime_ns(&self) -> u64 {
        3_500_000_000
    }
    fn wall_clock_ns(&self) -> Option<u64> {
        Some(1_795_999_596_000_000_000)
    }
    fn memory(&self) -> MemoryInfo {
        MemoryInfo {
            total: 1 << 30,
            free: 1 << 29,
        }
    }
    fn cmdline(&self) -> String {
        self.cmdline.clone()
    }
    fn set_cmdline(&mut self, cmdline: &str) -> SysResult<()> {
        self.cmdline = cmdline.to_string();
        Ok(())
    }
    fn hostname(&self) -> String {
        self.hostname.clone()
    }
    fn set_hostname(&mut self, name: &str) -> SysResult<()> {
        self.hostname = name.to_string();
        Ok(())
    }
    fn dmesg(&self) -> String {
        "keel: booted\n".to_string()
    }
    fn threads(&self) -> Vec<ThreadInfo> {
        vec![ThreadInfo {
            id: 1,
            name: "idle".to_string(),
            state: ThreadState::Runnable,
            cpu: 0,
            cpu_time_ns: 42,
        }]
    }
    fn power(&mut self, action: PowerAction) -> SysResult<()> {
        self.power.push(action);
        Ok(())
    }
    fn env_list(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn env_get(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn env_set(&mut self, name: &str, value: &str) -> SysResult<()> {
        self.env.insert(name.to_string(), value.to_string());
        Ok(())
    }
    fn env_remove(&mut self, name: &str) -> SysResult<()> {
        self.env.remove(name).map(|_| ()).ok_or(SysError::NotFound)
    }
    fn stat(&mut self, path: &str) -> SysResult<FileStat> {
        self.chaos()?;
        self.files.get(path).map(stat_of).ok_or(SysError::NotFound)
    }
    fn list_dir(&mut self, path: &str) -> SysResult<Vec<DirEntry>> {
        self.chaos()?;
        match self.files.get(path) {
            Some(Node::Dir) => {}
            Some(Node::File(_)) => return Err(SysError::NotDirectory),
            None => return Err(SysError::NotFound),
        }
        Ok(self
            .files
            .iter()
            .filter(|(p, _)| p.as_str() != "/" && Self::parent(p) == path)
            .map(|(p, n)| DirEntry {
                name: p.rsplit('/').next().unwrap_or("").to_string(),
                stat: stat_of(n),
            })
            .collect())
    }
    fn open(&mut self, path: &str, mode: OpenMode) -> SysResult<FakeFile> {
        self.chaos()?;
        match mode {
            OpenMode::Read => match self.files.get(path) {
                Some(Node::File(_)) => {}
                Some(Node::Dir) => return Err(SysError::IsDirectory),
                None => return Err(SysError::NotFound),
            },
            OpenMode::Replace | OpenMode::CreateNew => {
                self.check_parent(path)?;
                match self.files.get(path) {
                    Some(Node::Dir) => return Err(SysError::IsDirectory),
                    Some(Node::File(_)) if mode == OpenMode::CreateNew => {
                        return Err(SysError::AlreadyExists);
                    }
                    _ => {}
                }
                self.files.insert(path.to_string(), Node::File(Vec::new()));
            }
        }
        self.open_handles += 1;
        Ok(FakeFile {
            path: path.to_string(),
            writable: mode != OpenMode::Read,
        })
    }
    fn read_at(&mut self, file: &mut FakeFile, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.largest_read = self.largest_read.max(buf.len());
        self.chaos()?;
        let data = self.file(&file.path).ok_or(SysError::NotFound)?;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }
    fn write_at(&mut self, file: &mut FakeFile, offset: u64, data: &[u8]) -> SysResult<()> {
        assert!(file.writable, "write to a file opened for reading");
        self.largest_write = self.largest_write.max(data.len());
        self.chaos()?;
        if self.used() + data.len() > self.capacity {
            return Err(SysError::NoSpace);
        }
        let Some(Node::File(content)) = self.files.get_mut(&file.path) else {
            return Err(SysError::NotFound);
        };
        let end = offset as usize + data.len();
        if content.len() < end {
            content.resize(end, 0);
        }
        content[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
    fn close(&mut self, _file: FakeFile) -> SysResult<()> {
        self.open_handles -= 1;
        self.chaos()?;
        match self.close_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    fn mkdir(&mut self, path: &str) -> SysResult<()> {
        self.chaos()?;
        self.check_parent(path)?;
        if self.files.contains_key(path) {
            return Err(SysError::AlreadyExists);
        }
        self.files.insert(path.to_string(), Node::Dir);
        Ok(())
    }
    fn remove(&mut self, path: &str) -> SysResult<()> {
        self.chaos()?;
        if self.read_only.iter().any(|p| path.starts_with(p.as_str())) {
            return Err(SysError::PermissionDenied);
        }
        match self.files.get(path) {
            None => Err(SysError::NotFound),
            Some(Node::Dir) if path == "/" => Err(SysError::PermissionDenied),
            Some(Node::Dir)
                if self
                    .files
                    .keys()
                    .any(|p| p != "/" && Self::parent(p) == path) =>
            {
                Err(SysError::NotEmpty)
            }
            Some(_) => {
                self.files.remove(path);
                Ok(())
            }
        }
    }
    fn fs_usage(&mut self) -> Vec<FsUsage> {
        let used = self.used() as u64;
        vec![FsUsage {
            mountpoint: "/".to_string(),
            filesystem: "zfs".to_string(),
            source: "keel/root".to_string(),
            total: self.capacity as u64,
            free: self.capacity as u64 - used,
            available: self.capacity as u64 - used,
        }]
    }
    fn app_start(&mut self, spec: &AppSpec) -> SysResult<u64> {
        if self.file(&spec.path).is_none() {
            return Err(SysError::NotFound);
        }
        let id = self.apps.len() as u64 + 1;
        self.apps.push(AppInfo {
            id,
            path: spec.path.clone(),
            argv: spec.argv.clone(),
            state: AppState::Running,
            started_ns: 100,
            ended_ns: None,
        });
        let env: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| alloc::format!("{k}={v}"))
            .collect();
        self.logs
            .insert(id, (env.join("\n").into_bytes(), Vec::new()));
        Ok(id)
    }
    fn apps(&self) -> Vec<AppInfo> {
        self.apps.clone()
    }
    fn app_signal(&mut self, id: u64, signal: i32) -> SysResult<()> {
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(SysError::NotFound)?;
        if app.state != AppState::Running {
            return Err(SysError::Conflict);
        }
        app.state = AppState::Killed { signal };
        app.ended_ns = Some(200);
        self.signals.push((id, signal));
        Ok(())
    }
    fn app_log(&self, id: u64, stream: LogStream, max: usize) -> SysResult<Vec<u8>> {
        let (out, err) = self.logs.get(&id).ok_or(SysError::NotFound)?;
        let log = if stream == LogStream::Stdout {
            out
        } else {
            err
        };
        Ok(log[log.len().saturating_sub(max)..].to_vec())
    }
    fn interfaces(&self) -> Vec<Interface> {
        vec![Interface {
            name: "eth0".to_string(),
            mac: "52:54:00:12:34:56".to_string(),
            mtu: 1500,
            up: true,
            addresses: vec![IfAddress {
                address: IpAddr::V4(Ipv4Addr::new(10, 0, 2, 15)),
                prefix_len: 24,
            }],
            rx_bytes: 1000,
            tx_bytes: 2000,
            rx_packets: 10,
            tx_packets: 20,
        }]
    }
    fn routes(&self) -> Vec<Route> {
        vec![Route {
            destination: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2))),
            interface: "eth0".to_string(),
        }]
    }
    fn socket_stats(&self) -> SocketStats {
        SocketStats {
            tcp_listen: 1,
            tcp_established: 2,
            ..SocketStats::default()
        }
    }
    fn hardware(&self) -> HardwareInfo {
        HardwareInfo {
            arch: "x86_64".to_string(),
            processor_count: 2,
            cpu_model: "QEMU Virtual CPU".to_string(),
            cpu_flags: vec!["sse2".to_string(), "rdtscp".to_string()],
            hypervisor: Some("TCG".to_string()),
            firmware: Some("PVH".to_string()),
            machine: "microvm".to_string(),
        }
    }
    fn metrics(&self) -> Metrics {
        Metrics {
            syscalls: vec![Counter {
                name: "read".to_string(),
                count: 7,
            }],
            context_switches: 11,
            page_faults: 3,
            interrupts: vec![Counter {
                name: "timer".to_string(),
                count: 99,
            }],
            net_rx_bytes: 1000,
            net_tx_bytes: 2000,
            disk_read_bytes: 4096,
            disk_write_bytes: 8192,
        }
    }
}
