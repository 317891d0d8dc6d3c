//! AF_UNIX sockets, stream and datagram, entirely in the kernel: names in
//! the abstract namespace or the filesystem (a socket node that connect
//! finds by inode), listen queues, socketpair, and the end-of-file and
//! broken-pipe rules of Linux.
//!
//! A connected stream pair shares a `Channel`: one byte queue per
//! direction and, per side, whether it shut writing or reading. A closed
//! socket shuts both on its side, which the peer sees as end of file
//! (reading) or EPIPE (writing).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use keel_core::sync::{SpinLock, WaitQueue};
use keel_fs::{FileLike, FileType, FsError, FsResult, Metadata, PollEvents, Readiness};

use super::socket::{self, AF_UNIX, Received, SocketOps, msg, opt};
use crate::errno::Errno;

/// Bytes one direction of a stream connection holds before writers wait
/// (about Linux's default socket buffer).
pub const STREAM_CAPACITY: usize = 256 * 1024;
/// Datagrams a socket queues before senders wait.
const DGRAM_QUEUE: usize = 256;
/// Largest datagram.
pub const MAX_DGRAM: usize = 212_992;
/// Longest sun_path.
const PATH_MAX: usize = 108;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
static NEXT_AUTOBIND: AtomicU64 = AtomicU64::new(1);

/// Stream or datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_STREAM.
    Stream,
    /// SOCK_DGRAM.
    Dgram,
}

/// Where a name lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The abstract namespace (sun_path starting with NUL).
    Abstract(Vec<u8>),
    /// A socket node in the filesystem, by (device, inode).
    Node(u64, u64),
}

/// A decoded sockaddr_un.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// Only the family (autobind on bind).
    Unnamed,
    /// Abstract name (without the leading NUL).
    Abstract(Vec<u8>),
    /// Filesystem path.
    Path(String),
}

impl Addr {
    /// Decode `raw` (the whole sockaddr the app passed).
    pub fn decode(raw: &[u8]) -> Result<Self, Errno> {
        if raw.len() < 2 {
            return Err(Errno::EINVAL);
        }
        if u16::from_le_bytes([raw[0], raw[1]]) != AF_UNIX {
            return Err(Errno::EINVAL);
        }
        let path = &raw[2..raw.len().min(2 + PATH_MAX)];
        if path.is_empty() {
            return Ok(Addr::Unnamed);
        }
        if path[0] == 0 {
            return Ok(Addr::Abstract(path[1..].to_vec()));
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        Ok(Addr::Path(
            String::from_utf8_lossy(&path[..end]).into_owned(),
        ))
    }

    /// Encode as getsockname/accept return it.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = AF_UNIX.to_le_bytes().to_vec();
        match self {
            Addr::Unnamed => {}
            Addr::Abstract(n) => {
                v.push(0);
                v.extend_from_slice(n);
            }
            Addr::Path(p) => {
                v.extend_from_slice(p.as_bytes());
                v.push(0);
            }
        }
        v
    }
}

static NAMES: SpinLock<BTreeMap<Key, Weak<UnixSocket>>> = SpinLock::new(BTreeMap::new());

/// Find the filesystem node of a socket path: (dev, ino).
fn node_key(path: &str, create: bool) -> Result<Key, Errno> {
    let p = crate::process::get();
    let base = crate::paths::base(crate::paths::AT_FDCWD, path)?;
    if create {
        let (dir, name) = p.vfs.resolve_parent(&base, path)?;
        if dir.inode.lookup(&name).is_ok() {
            return Err(Errno::EADDRINUSE);
        }
        let umask = p.umask.load(Ordering::Relaxed);
        let node = dir.inode.create(&name, FileType::Socket, 0o777 & !umask)?;
        let m = node.metadata();
        return Ok(Key::Node(m.dev, m.ino));
    }
    let r = crate::paths::resolve_at(crate::paths::AT_FDCWD, path, true)?;
    let m = r.inode.metadata();
    if m.file_type() != FileType::Socket {
        return Err(Errno::ECONNREFUSED);
    }
    Ok(Key::Node(m.dev, m.ino))
}

#[derive(Default)]
struct Sig {
    generation: AtomicU64,
    queue: WaitQueue,
    readiness: Readiness,
}

impl Sig {
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.queue.wake_all();
        self.readiness.notify();
    }
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

struct Channel {
    /// data[i]: bytes waiting for side i to read.
    data: [SpinLock<VecDeque<u8>>; 2],
    /// Side i will send nothing more.
    wr_shut: [AtomicBool; 2],
    /// Side i will read nothing more.
    rd_shut: [AtomicBool; 2],
    sigs: [Arc<Sig>; 2],
}

enum State {
    Idle,
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<UnixSocket>>,
    },
    Connected {
        ch: Arc<Channel>,
        side: usize,
    },
}

/// One AF_UNIX socket.
pub struct UnixSocket {
    kind: Kind,
    me: Weak<UnixSocket>,
    sig: Arc<Sig>,
    nonblock: AtomicBool,
    state: SpinLock<State>,
    name: SpinLock<Option<(Key, Addr)>>,
    peer_name: SpinLock<Option<Addr>>,
    dgram_in: SpinLock<VecDeque<(Vec<u8>, Addr)>>,
    dgram_peer: SpinLock<Option<Weak<UnixSocket>>>,
    /// Datagram shutdown: [read, write].
    dgram_shut: [AtomicBool; 2],
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
    passcred: AtomicBool,
    ino: u64,
}

impl UnixSocket {
    /// A new unbound socket.
    pub fn new(kind: Kind, nonblock: bool) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            kind,
            me: me.clone(),
            sig: Arc::new(Sig::default()),
            nonblock: AtomicBool::new(nonblock),
            state: SpinLock::new(State::Idle),
            name: SpinLock::new(None),
            peer_name: SpinLock::new(None),
            dgram_in: SpinLock::new(VecDeque::new()),
            dgram_peer: SpinLock::new(None),
            dgram_shut: [AtomicBool::new(false), AtomicBool::new(false)],
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            passcred: AtomicBool::new(false),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// socketpair(2): two connected sockets.
    pub fn pair(kind: Kind, nonblock: bool) -> (Arc<Self>, Arc<Self>) {
        let a = Self::new(kind, nonblock);
        let b = Self::new(kind, nonblock);
        match kind {
            Kind::Stream => {
                let ch = Arc::new(Channel {
                    data: [
                        SpinLock::new(VecDeque::new()),
                        SpinLock::new(VecDeque::new()),
                    ],
                    wr_shut: [AtomicBool::new(false), AtomicBool::new(false)],
                    rd_shut: [AtomicBool::new(false), AtomicBool::new(false)],
                    sigs: [a.sig.clone(), b.sig.clone()],
                });
                *a.state.lock() = State::Connected {
                    ch: ch.clone(),
                    side: 0,
                };
                *b.state.lock() = State::Connected { ch, side: 1 };
            }
            Kind::Dgram => {
                *a.dgram_peer.lock() = Some(Arc::downgrade(&b));
                *b.dgram_peer.lock() = Some(Arc::downgrade(&a));
            }
        }
        *a.peer_name.lock() = Some(Addr::Unnamed);
        *b.peer_name.lock() = Some(Addr::Unnamed);
        (a, b)
    }

    fn my_addr(&self) -> Addr {
        self.name
            .lock()
            .as_ref()
            .map_or(Addr::Unnamed, |(_, a)| a.clone())
    }

    fn channel(&self) -> Option<(Arc<Channel>, usize)> {
        match &*self.state.lock() {
            State::Connected { ch, side } => Some((ch.clone(), *side)),
            _ => None,
        }
    }

    fn register(&self, key: Key, addr: Addr) -> Result<(), Errno> {
        let mut names = NAMES.lock();
        if names.get(&key).is_some_and(|w| w.strong_count() > 0) {
            return Err(Errno::EADDRINUSE);
        }
        names.insert(key.clone(), self.me.clone());
        *self.name.lock() = Some((key, addr));
        Ok(())
    }

    fn autobind(&self) -> Result<(), Errno> {
        if self.name.lock().is_some() {
            return Ok(());
        }
        // Linux's autobind: five hex digits in the abstract namespace.
        loop {
            let n = NEXT_AUTOBIND.fetch_add(1, Ordering::Relaxed) & 0xfffff;
            let name = alloc::format!("{n:05x}").into_bytes();
            match self.register(Key::Abstract(name.clone()), Addr::Abstract(name)) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
    }

    fn lookup(addr: &Addr) -> Result<Arc<UnixSocket>, Errno> {
        let key = match addr {
            Addr::Unnamed => return Err(Errno::EINVAL),
            Addr::Abstract(n) => Key::Abstract(n.clone()),
            Addr::Path(p) => node_key(p, false)?,
        };
        NAMES
            .lock()
            .get(&key)
            .and_then(Weak::upgrade)
            .ok_or(Errno::ECONNREFUSED)
    }

    fn nonblocking_with(&self, flags: u32) -> bool {
        self.nonblocking() || flags & msg::DONTWAIT != 0
    }

    fn stream_send(&self, data: &[u8], flags: u32) -> Result<usize, Errno> {
        let (ch, side) = self.channel().ok_or(Errno::ENOTCONN)?;
        let peer = 1 - side;
        let nonblock = self.nonblocking_with(flags);
        let deadline = socket::deadline_after(self.sndtimeo.load(Ordering::Relaxed));
        let mut done = 0;
        loop {
            let r = socket::blocking(
                nonblock,
                deadline,
                &self.sig.queue,
                || self.sig.generation(),
                || {
                    if ch.wr_shut[side].load(Ordering::Acquire)
                        || ch.rd_shut[peer].load(Ordering::Acquire)
                    {
                        return Err(Errno::EPIPE);
                    }
                    let mut q = ch.data[peer].lock();
                    let room = STREAM_CAPACITY.saturating_sub(q.len());
                    if room == 0 {
                        return Err(Errno::EAGAIN);
                    }
                    let n = room.min(data.len() - done);
                    q.extend(&data[done..done + n]);
                    Ok(n)
                },
            );
            match r {
                Ok(n) => {
                    done += n;
                    ch.sigs[peer].bump();
                    if done == data.len() || nonblock {
                        return Ok(done);
                    }
                }
                Err(_) if done > 0 => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }

    fn stream_recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        let (ch, side) = self.channel().ok_or(Errno::ENOTCONN)?;
        let peer = 1 - side;
        let nonblock = self.nonblocking_with(flags);
        let deadline = socket::deadline_after(self.rcvtimeo.load(Ordering::Relaxed));
        let peek = flags & msg::PEEK != 0;
        let mut done = 0;
        loop {
            let r = socket::blocking(
                nonblock,
                deadline,
                &self.sig.queue,
                || self.sig.generation(),
                || {
                    let mut q = ch.data[side].lock();
                    if !q.is_empty() {
                        let n = q.len().min(buf.len() - done);
                        for (slot, b) in buf[done..done + n].iter_mut().zip(q.iter()) {
                            *slot = *b;
                        }
                        if !peek {
                            q.drain(..n);
                        }
                        return Ok(n);
                    }
                    if ch.wr_shut[peer].load(Ordering::Acquire)
                        || ch.rd_shut[side].load(Ordering::Acquire)
                    {
                        return Ok(0);
                    }
                    Err(Errno::EAGAIN)
                },
            );
            match r {
                Ok(n) => {
                    if n > 0 && !peek {
                        ch.sigs[peer].bump();
                    }
                    done += n;
                    let more = flags & msg::WAITALL != 0 && !peek && n > 0 && done < buf.len();
                    if !more {
                        return Ok(Received {
                            copied: done,
                            full: done,
                            from: None,
                        });
                    }
                }
                Err(_) if done > 0 => {
                    return Ok(Received {
                        copied: done,
                        full: done,
                        from: None,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn dgram_send(&self, data: &[u8], flags: u32, to: Option<&[u8]>) -> Result<usize, Errno> {
        if self.dgram_shut[1].load(Ordering::Acquire) {
            return Err(Errno::EPIPE);
        }
        if data.len() > MAX_DGRAM {
            return Err(Errno::EMSGSIZE);
        }
        let target = match to {
            Some(raw) => Self::lookup(&Addr::decode(raw)?)?,
            None => self
                .dgram_peer
                .lock()
                .clone()
                .ok_or(Errno::ENOTCONN)?
                .upgrade()
                .ok_or(Errno::ECONNREFUSED)?,
        };
        if target.kind != Kind::Dgram {
            return Err(Errno::EPROTOTYPE);
        }
        let from = self.my_addr();
        let deadline = socket::deadline_after(self.sndtimeo.load(Ordering::Relaxed));
        socket::blocking(
            self.nonblocking_with(flags),
            deadline,
            &target.sig.queue,
            || target.sig.generation(),
            || {
                if target.dgram_shut[0].load(Ordering::Acquire) {
                    return Err(Errno::ECONNREFUSED);
                }
                let mut q = target.dgram_in.lock();
                if q.len() >= DGRAM_QUEUE {
                    return Err(Errno::EAGAIN);
                }
                q.push_back((data.to_vec(), from.clone()));
                Ok(data.len())
            },
        )
        .inspect(|_| target.sig.bump())
    }

    fn dgram_recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        let peek = flags & msg::PEEK != 0;
        let deadline = socket::deadline_after(self.rcvtimeo.load(Ordering::Relaxed));
        let r = socket::blocking(
            self.nonblocking_with(flags),
            deadline,
            &self.sig.queue,
            || self.sig.generation(),
            || {
                let mut q = self.dgram_in.lock();
                let Some((d, from)) = q.front() else {
                    if self.dgram_shut[0].load(Ordering::Acquire) {
                        return Ok(Received {
                            copied: 0,
                            full: 0,
                            from: None,
                        });
                    }
                    return Err(Errno::EAGAIN);
                };
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                let out = Received {
                    copied: n,
                    full: d.len(),
                    from: Some(from.encode()),
                };
                if !peek {
                    q.pop_front();
                }
                Ok(out)
            },
        )?;
        if !peek {
            // Room freed: senders blocked on our queue look again.
            self.sig.bump();
        }
        Ok(r)
    }

    fn events(&self) -> u16 {
        const IN: u16 = PollEvents::IN.0;
        const OUT: u16 = PollEvents::OUT.0;
        const HUP: u16 = PollEvents::HUP.0;
        const RDHUP: u16 = PollEvents::RDHUP.0;
        if self.kind == Kind::Dgram {
            let mut e = OUT;
            if !self.dgram_in.lock().is_empty() || self.dgram_shut[0].load(Ordering::Acquire) {
                e |= IN;
            }
            if let Some(p) = self.dgram_peer.lock().as_ref().and_then(Weak::upgrade)
                && p.dgram_in.lock().len() >= DGRAM_QUEUE
            {
                e &= !OUT;
            }
            return e;
        }
        match &*self.state.lock() {
            State::Idle => HUP,
            State::Listening { pending, .. } => {
                if pending.is_empty() {
                    0
                } else {
                    IN
                }
            }
            State::Connected { ch, side } => {
                let (side, peer) = (*side, 1 - *side);
                let peer_wr = ch.wr_shut[peer].load(Ordering::Acquire);
                let my_wr = ch.wr_shut[side].load(Ordering::Acquire);
                let peer_rd = ch.rd_shut[peer].load(Ordering::Acquire);
                let mut e = 0;
                if !ch.data[side].lock().is_empty()
                    || peer_wr
                    || ch.rd_shut[side].load(Ordering::Acquire)
                {
                    e |= IN;
                }
                if peer_wr {
                    e |= RDHUP;
                }
                if my_wr || peer_rd || ch.data[peer].lock().len() < STREAM_CAPACITY {
                    // Writable, or a write would fail at once (EPIPE).
                    e |= OUT;
                }
                if peer_wr && (my_wr || peer_rd) {
                    e |= HUP;
                }
                e
            }
        }
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if let Some((key, _)) = self.name.lock().take() {
            let mut names = NAMES.lock();
            if names.get(&key).is_some_and(|w| w.ptr_eq(&self.me)) {
                names.remove(&key);
            }
        }
        let state = core::mem::replace(&mut *self.state.lock(), State::Idle);
        match state {
            State::Connected { ch, side } => {
                ch.wr_shut[side].store(true, Ordering::Release);
                ch.rd_shut[side].store(true, Ordering::Release);
                ch.data[side].lock().clear();
                ch.sigs[1 - side].bump();
            }
            // Connections nobody accepted close with the listener.
            State::Listening { pending, .. } => drop(pending),
            State::Idle => {}
        }
        self.dgram_shut[0].store(true, Ordering::Release);
        self.sig.bump();
    }
}

fn to_fs(e: Errno) -> FsError {
    match e {
        Errno::EAGAIN => FsError::WouldBlock,
        Errno::EINTR => FsError::Interrupted,
        Errno::EPIPE => FsError::BrokenPipe,
        e => FsError::Other(e.0),
    }
}

/// Raise SIGPIPE for a send that hit a broken connection, unless the app
/// asked not to (MSG_NOSIGNAL).
pub fn sigpipe_on_epipe<T>(r: Result<T, Errno>, flags: u32) -> Result<T, Errno> {
    if r.as_ref().err() == Some(&Errno::EPIPE) && flags & msg::NOSIGNAL == 0 {
        crate::signal::raise_on_current(crate::signal::SIGPIPE);
    }
    r
}

impl SocketOps for UnixSocket {
    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        if self.name.lock().is_some() {
            return Err(Errno::EINVAL);
        }
        match Addr::decode(raw)? {
            Addr::Unnamed => self.autobind(),
            Addr::Abstract(n) => self.register(Key::Abstract(n.clone()), Addr::Abstract(n)),
            Addr::Path(p) => {
                let key = node_key(&p, true)?;
                self.register(key, Addr::Path(p))
            }
        }
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        self.autobind()?;
        let backlog = backlog.clamp(1, 4096) as usize;
        let mut st = self.state.lock();
        match &mut *st {
            State::Idle => {
                *st = State::Listening {
                    backlog,
                    pending: VecDeque::new(),
                }
            }
            State::Listening { backlog: b, .. } => *b = backlog,
            State::Connected { .. } => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    fn accept(&self, nonblock: bool) -> Result<(Arc<dyn FileLike>, Vec<u8>), Errno> {
        if self.kind != Kind::Stream {
            return Err(Errno::EOPNOTSUPP);
        }
        let deadline = socket::deadline_after(self.rcvtimeo.load(Ordering::Relaxed));
        let s = socket::blocking(
            self.nonblocking(),
            deadline,
            &self.sig.queue,
            || self.sig.generation(),
            || match &mut *self.state.lock() {
                State::Listening { pending, .. } => pending.pop_front().ok_or(Errno::EAGAIN),
                _ => Err(Errno::EINVAL),
            },
        )?;
        // A connector waiting for backlog room looks again.
        self.sig.bump();
        s.nonblock.store(nonblock, Ordering::Relaxed);
        let peer = s
            .peer_name
            .lock()
            .as_ref()
            .map_or_else(|| Addr::Unnamed.encode(), Addr::encode);
        Ok((s as Arc<dyn FileLike>, peer))
    }

    fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        let addr = Addr::decode(raw)?;
        if addr == Addr::Unnamed {
            if self.kind == Kind::Dgram {
                // AF_UNSPEC-like: dissolve the association.
                *self.dgram_peer.lock() = None;
                *self.peer_name.lock() = None;
                return Ok(());
            }
            return Err(Errno::EINVAL);
        }
        let target = Self::lookup(&addr)?;
        if target.kind != self.kind {
            return Err(Errno::EPROTOTYPE);
        }
        if self.kind == Kind::Dgram {
            *self.dgram_peer.lock() = Some(Arc::downgrade(&target));
            *self.peer_name.lock() = Some(addr);
            return Ok(());
        }
        match &*self.state.lock() {
            State::Idle => {}
            State::Connected { .. } => return Err(Errno::EISCONN),
            State::Listening { .. } => return Err(Errno::EINVAL),
        }
        let server = UnixSocket::new(Kind::Stream, false);
        let ch = Arc::new(Channel {
            data: [
                SpinLock::new(VecDeque::new()),
                SpinLock::new(VecDeque::new()),
            ],
            wr_shut: [AtomicBool::new(false), AtomicBool::new(false)],
            rd_shut: [AtomicBool::new(false), AtomicBool::new(false)],
            sigs: [self.sig.clone(), server.sig.clone()],
        });
        *server.state.lock() = State::Connected {
            ch: ch.clone(),
            side: 1,
        };
        *server.name.lock() = target
            .name
            .lock()
            .clone()
            .map(|(_, a)| (Key::Abstract(Vec::new()), a));
        *server.peer_name.lock() = Some(self.my_addr());
        let deadline = socket::deadline_after(self.sndtimeo.load(Ordering::Relaxed));
        let mut server = Some(server);
        socket::blocking(
            self.nonblocking(),
            deadline,
            &target.sig.queue,
            || target.sig.generation(),
            || match &mut *target.state.lock() {
                State::Listening { backlog, pending } => {
                    if pending.len() >= *backlog {
                        return Err(Errno::EAGAIN);
                    }
                    if let Some(s) = server.take() {
                        pending.push_back(s);
                    }
                    Ok(())
                }
                _ => Err(Errno::ECONNREFUSED),
            },
        )?;
        *self.state.lock() = State::Connected { ch, side: 0 };
        *self.peer_name.lock() = Some(addr);
        target.sig.bump();
        self.sig.bump();
        Ok(())
    }

    fn send(&self, data: &[u8], flags: u32, to: Option<&[u8]>) -> Result<usize, Errno> {
        if flags & msg::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !msg::SEND_OK != 0 {
            return Err(Errno::EINVAL);
        }
        let r = match self.kind {
            Kind::Stream if to.is_some() && self.channel().is_some() => Err(Errno::EISCONN),
            Kind::Stream => self.stream_send(data, flags),
            Kind::Dgram => self.dgram_send(data, flags, to),
        };
        sigpipe_on_epipe(r, flags)
    }

    fn recv(&self, buf: &mut [u8], flags: u32) -> Result<Received, Errno> {
        if flags & msg::OOB != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !msg::RECV_OK != 0 {
            return Err(Errno::EINVAL);
        }
        match self.kind {
            Kind::Stream => self.stream_recv(buf, flags),
            Kind::Dgram => self.dgram_recv(buf, flags),
        }
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        if self.kind == Kind::Dgram {
            if self.dgram_peer.lock().is_none() {
                return Err(Errno::ENOTCONN);
            }
            if rd {
                self.dgram_shut[0].store(true, Ordering::Release);
            }
            if wr {
                self.dgram_shut[1].store(true, Ordering::Release);
            }
            self.sig.bump();
            return Ok(());
        }
        let (ch, side) = self.channel().ok_or(Errno::ENOTCONN)?;
        if rd {
            ch.rd_shut[side].store(true, Ordering::Release);
        }
        if wr {
            ch.wr_shut[side].store(true, Ordering::Release);
        }
        ch.sigs[0].bump();
        ch.sigs[1].bump();
        Ok(())
    }

    fn local_name(&self) -> Vec<u8> {
        self.my_addr().encode()
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let connected = match self.kind {
            Kind::Stream => self.channel().is_some(),
            Kind::Dgram => self.dgram_peer.lock().is_some(),
        };
        if !connected {
            return Err(Errno::ENOTCONN);
        }
        Ok(self
            .peer_name
            .lock()
            .as_ref()
            .map_or_else(|| Addr::Unnamed.encode(), Addr::encode))
    }

    fn set_option(&self, level: i32, name: i32, v: &[u8]) -> Result<(), Errno> {
        if level != opt::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        match name {
            opt::SO_RCVTIMEO => self
                .rcvtimeo
                .store(socket::timeval_ns(v)?, Ordering::Relaxed),
            opt::SO_SNDTIMEO => self
                .sndtimeo
                .store(socket::timeval_ns(v)?, Ordering::Relaxed),
            opt::SO_PASSCRED => self
                .passcred
                .store(socket::int_value(v)? != 0, Ordering::Relaxed),
            // Buffer sizes are fixed (STREAM_CAPACITY); Linux also treats
            // the value as advice. The setting is checked, not stored.
            opt::SO_SNDBUF | opt::SO_RCVBUF => {
                socket::int_value(v)?;
            }
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }

    fn get_option(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level != opt::SOL_SOCKET {
            return Err(Errno::EOPNOTSUPP);
        }
        Ok(match name {
            opt::SO_TYPE => socket::int_bytes(match self.kind {
                Kind::Stream => 1,
                Kind::Dgram => 2,
            }),
            opt::SO_DOMAIN => socket::int_bytes(i32::from(AF_UNIX)),
            opt::SO_PROTOCOL => socket::int_bytes(0),
            opt::SO_ERROR => socket::int_bytes(0),
            opt::SO_ACCEPTCONN => socket::int_bytes(i32::from(matches!(
                &*self.state.lock(),
                State::Listening { .. }
            ))),
            opt::SO_SNDBUF | opt::SO_RCVBUF => socket::int_bytes(STREAM_CAPACITY as i32),
            opt::SO_RCVTIMEO => socket::timeval_bytes(self.rcvtimeo.load(Ordering::Relaxed)),
            opt::SO_SNDTIMEO => socket::timeval_bytes(self.sndtimeo.load(Ordering::Relaxed)),
            opt::SO_PASSCRED => socket::int_bytes(i32::from(self.passcred.load(Ordering::Relaxed))),
            opt::SO_PEERCRED => {
                // One process: the peer is always us.
                let (uid, gid) = crate::process::try_get()
                    .map(|p| {
                        let c = p.creds.lock();
                        (c.uid[1], c.gid[1])
                    })
                    .unwrap_or((0, 0));
                let mut v = socket::int_bytes(1);
                v.extend_from_slice(&uid.to_le_bytes());
                v.extend_from_slice(&gid.to_le_bytes());
                v
            }
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    fn available(&self) -> usize {
        match self.kind {
            Kind::Stream => self
                .channel()
                .map_or(0, |(ch, side)| ch.data[side].lock().len()),
            Kind::Dgram => self.dgram_in.lock().front().map_or(0, |d| d.0.len()),
        }
    }
}

impl FileLike for UnixSocket {
    fn read(&self, buf: &mut [u8]) -> FsResult<usize> {
        self.recv(buf, 0).map(|r| r.copied).map_err(to_fs)
    }

    fn write(&self, data: &[u8]) -> FsResult<usize> {
        SocketOps::send(self, data, 0, None).map_err(to_fs)
    }

    fn metadata(&self) -> FsResult<Metadata> {
        Ok(super::anon_metadata(FileType::Socket, self.ino))
    }

    fn poll(&self) -> PollEvents {
        PollEvents(self.events())
    }

    fn readiness(&self) -> Option<&Readiness> {
        Some(&self.sig.readiness)
    }

    fn nonblocking(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_status(&self, nonblock: bool, _append: bool) {
        self.nonblock.store(nonblock, Ordering::Relaxed);
    }

    fn access(&self) -> (bool, bool) {
        (true, true)
    }

    fn path(&self) -> String {
        alloc::format!("socket:[{}]", self.ino)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(name: &str) -> Vec<u8> {
        Addr::Abstract(name.as_bytes().to_vec()).encode()
    }

    #[test]
    fn stream_pair_eof_and_epipe() {
        let (a, b) = UnixSocket::pair(Kind::Stream, true);
        assert_eq!(SocketOps::send(&*a, b"hello", msg::NOSIGNAL, None), Ok(5));
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf, msg::PEEK).unwrap().copied, 5);
        assert_eq!(b.recv(&mut buf, 0).unwrap().copied, 5);
        assert_eq!(b.recv(&mut buf, 0).err(), Some(Errno::EAGAIN));
        assert!(b.poll().0 & PollEvents::IN.0 == 0);
        a.shutdown(1).unwrap();
        assert_eq!(b.recv(&mut buf, 0).unwrap().copied, 0);
        assert!(b.poll().0 & PollEvents::RDHUP.0 != 0);
        assert_eq!(
            SocketOps::send(&*a, b"x", msg::NOSIGNAL, None),
            Err(Errno::EPIPE)
        );
        // b can still talk back until it goes away.
        assert_eq!(SocketOps::send(&*b, b"bye", msg::NOSIGNAL, None), Ok(3));
        assert_eq!(a.recv(&mut buf, 0).unwrap().copied, 3);
        drop(a);
        assert_eq!(
            SocketOps::send(&*b, b"x", msg::NOSIGNAL, None),
            Err(Errno::EPIPE)
        );
        assert!(b.poll().0 & PollEvents::HUP.0 != 0);
    }

    #[test]
    fn stream_buffer_fills_and_nonblocking_send_is_partial() {
        let (a, b) = UnixSocket::pair(Kind::Stream, true);
        let big = alloc::vec![7u8; STREAM_CAPACITY + 100];
        assert_eq!(
            SocketOps::send(&*a, &big, msg::NOSIGNAL, None),
            Ok(STREAM_CAPACITY)
        );
        assert_eq!(
            SocketOps::send(&*a, b"x", msg::NOSIGNAL, None),
            Err(Errno::EAGAIN)
        );
        assert_eq!(b.available(), STREAM_CAPACITY);
    }

    #[test]
    fn abstract_listen_connect_accept() {
        let l = UnixSocket::new(Kind::Stream, true);
        l.bind(&abs("keel-test-1")).unwrap();
        let dup = UnixSocket::new(Kind::Stream, true);
        assert_eq!(dup.bind(&abs("keel-test-1")), Err(Errno::EADDRINUSE));
        l.listen(1).unwrap();
        let c = UnixSocket::new(Kind::Stream, true);
        c.connect(&abs("keel-test-1")).unwrap();
        // Backlog 1 is full now.
        let c2 = UnixSocket::new(Kind::Stream, true);
        assert_eq!(c2.connect(&abs("keel-test-1")), Err(Errno::EAGAIN));
        assert_eq!(c.peer_name().unwrap(), abs("keel-test-1"));
        let (s, peer) = l.accept(false).unwrap();
        assert_eq!(peer, Addr::Unnamed.encode());
        assert_eq!(SocketOps::send(&*c, b"ping", 0, None), Ok(4));
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf), Ok(4));
        drop(l);
        let c3 = UnixSocket::new(Kind::Stream, true);
        assert_eq!(c3.connect(&abs("keel-test-1")), Err(Errno::ECONNREFUSED));
    }

    #[test]
    fn datagrams_keep_boundaries_and_senders() {
        let srv = UnixSocket::new(Kind::Dgram, true);
        srv.bind(&abs("keel-test-dg")).unwrap();
        let cli = UnixSocket::new(Kind::Dgram, true);
        cli.bind(&abs("keel-test-dg-cli")).unwrap();
        let to = abs("keel-test-dg");
        assert_eq!(SocketOps::send(&*cli, b"one", 0, Some(&to)), Ok(3));
        assert_eq!(SocketOps::send(&*cli, b"second", 0, Some(&to)), Ok(6));
        let mut buf = [0u8; 4];
        let r = srv.recv(&mut buf, msg::TRUNC).unwrap();
        assert_eq!((r.copied, r.full), (3, 3));
        assert_eq!(r.from.unwrap(), abs("keel-test-dg-cli"));
        let r = srv.recv(&mut buf, 0).unwrap();
        assert_eq!((r.copied, r.full), (4, 6));
        assert_eq!(srv.recv(&mut buf, 0).err(), Some(Errno::EAGAIN));
        drop(srv);
        assert_eq!(
            SocketOps::send(&*cli, b"x", 0, Some(&to)),
            Err(Errno::ECONNREFUSED)
        );
    }

    #[test]
    fn addresses_decode_and_encode() {
        assert_eq!(Addr::decode(&[1, 0]).unwrap(), Addr::Unnamed);
        let mut p = alloc::vec![1u8, 0];
        p.extend_from_slice(b"/tmp/s\0garbage");
        assert_eq!(Addr::decode(&p).unwrap(), Addr::Path("/tmp/s".into()));
        assert_eq!(Addr::decode(&[2, 0, 1]), Err(Errno::EINVAL));
        assert_eq!(Addr::decode(&[1]), Err(Errno::EINVAL));
        assert_eq!(Addr::Path("/a".into()).encode(), [1, 0, b'/', b'a', 0]);
    }
}
