//! One SSH connection as a byte-in, byte-out state machine: the transport
//! feeds what the peer sent to [`Session::recv`] and writes what
//! [`Session::send`] hands out, until [`Session::is_finished`].
//!
//! The protocol (key exchange, encryption, public-key auth, channels) is
//! the `sunset` crate's; this module answers its events: our host key,
//! the authorized-keys check, session channels running `exec` commands
//! through [`Shell`] and `shell` requests through [`Console`].

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use keel_mgmt::system::System;
use sunset::{ChanData, ChanFail, ChanHandle, Event, PubKey, Runner, ServEvent, Server};

use crate::console::{Console, terminal_text};
use crate::keys::{AuthorizedKeys, HostKey};
use crate::shell::Shell;

/// What a server needs to accept connections.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's identity.
    pub host_key: HostKey,
    /// Who may log in.
    pub authorized: AuthorizedKeys,
}

/// Session channels per connection; sunset itself has room for 4.
const MAX_CHANNELS: usize = 2;
/// Channel input read per step; the shell needs little.
const READ_CHUNK: usize = 1024;

#[derive(Debug)]
enum Mode {
    /// Opened; no shell or exec request yet.
    Idle,
    /// Interactive shell (boxed: the editor and history are big).
    Shell(alloc::boxed::Box<Console>),
    /// A command ran; its output is draining.
    Exec,
}

#[derive(Debug)]
struct Channel {
    handle: ChanHandle,
    pty: bool,
    mode: Mode,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The channel's work is over once its output is out.
    ending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Everything the user should see is queued; finish when it is out.
    Closing,
    Finished,
}

/// One SSH server connection.
pub struct Session {
    runner: Runner<'static, Server>,
    host_key: sunset::SignKey,
    authorized: AuthorizedKeys,
    channels: Vec<Channel>,
    state: State,
    user: Option<String>,
    /// The key last allowed: a query is allowed before the client proves
    /// it holds the key, so it only becomes `user` on `Authenticated`.
    allowed: Option<String>,
    exit_status: Option<u8>,
    error: Option<String>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("user", &self.user)
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl Session {
    /// A server session for a freshly accepted connection.
    pub fn new(config: &Config) -> Self {
        Session {
            runner: Runner::new_server_owned(),
            host_key: config.host_key.sign_key(),
            authorized: config.authorized.clone(),
            channels: Vec::new(),
            state: State::Running,
            user: None,
            allowed: None,
            exit_status: None,
            error: None,
        }
    }

    /// Take bytes the peer sent; returns how many were used. Fewer than
    /// offered means the session wants its output drained by
    /// [`Session::send`] first: call `send`, then offer the rest again.
    pub fn recv<S: System>(&mut self, sys: &mut S, data: &[u8]) -> usize {
        let mut taken = 0;
        loop {
            self.pump(sys);
            if taken == data.len() || self.state != State::Running {
                break;
            }
            match self.runner.input(&data[taken..]) {
                Ok(0) => break,
                Ok(n) => taken += n.min(data.len() - taken),
                Err(e) => {
                    self.fail(e);
                    break;
                }
            }
        }
        self.pump(sys);
        // Once finished, input is pointless: swallow it so callers do not
        // spin offering it.
        if self.state == State::Finished {
            return data.len();
        }
        taken
    }

    /// Bytes to send to the peer, written to `out`; 0 when there are none
    /// right now.
    pub fn send<S: System>(&mut self, sys: &mut S, out: &mut [u8]) -> usize {
        self.pump(sys);
        if self.state == State::Finished {
            return 0;
        }
        let pending = self.runner.output_buf();
        let n = pending.len().min(out.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.runner.consume_output(n);
        self.pump(sys);
        n
    }

    /// Whether [`Session::send`] has something now.
    pub fn has_output(&self) -> bool {
        self.state != State::Finished && self.runner.is_output_pending()
    }

    /// The peer closed its side of the connection.
    pub fn peer_closed<S: System>(&mut self, sys: &mut S) {
        self.runner.close_input();
        self.pump(sys);
        if !self.runner.is_output_pending() {
            self.state = State::Finished;
        }
    }

    /// The connection broke; nothing more will be sent or received.
    pub fn abort(&mut self) {
        self.state = State::Finished;
    }

    /// The transport should close the connection: the session ended (the
    /// user's command or shell is done and its output is out, the peer
    /// left, or the protocol failed).
    pub fn is_finished(&self) -> bool {
        match self.state {
            State::Finished => true,
            State::Closing => !self.runner.is_output_pending(),
            State::Running => false,
        }
    }

    /// The comment of the authorized key that logged in, once one has.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Exit status of the last `exec` command.
    pub fn exit_status(&self) -> Option<u8> {
        self.exit_status
    }

    /// Why the session failed, if it did (for the kernel log).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, e: sunset::Error) {
        if self.error.is_none() {
            self.error = Some(alloc::format!("{e}"));
        }
        self.state = State::Finished;
    }

    /// Handle every event sunset has, move channel data both ways, until
    /// nothing changes.
    fn pump<S: System>(&mut self, sys: &mut S) {
        // Bounded: each round either makes progress or stops; the bound
        // only guards against a library bug turning into a kernel hang.
        for _ in 0..10_000 {
            if self.state == State::Finished {
                return;
            }
            let moved = match self.events(sys) {
                Ok(moved) => moved,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            let flowed = match self.channel_io(sys) {
                Ok(flowed) => flowed,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            if !moved && !flowed {
                return;
            }
        }
    }

    /// Answer sunset's events; true if there were any.
    fn events<S: System>(&mut self, sys: &mut S) -> Result<bool, sunset::Error> {
        let mut any = false;
        loop {
            let ev = self.runner.progress()?;
            let ev = match ev {
                Event::None => return Ok(any),
                Event::Progressed => {
                    any = true;
                    continue;
                }
                Event::Cli(_) => return Ok(any),
                Event::Serv(ev) => ev,
            };
            any = true;
            match ev {
                ServEvent::Hostkeys(h) => h.hostkeys(&[&self.host_key])?,
                ServEvent::FirstAuth(mut a) => {
                    // Public keys only: say so from the first answer, so
                    // the client never offers a password prompt.
                    a.set_auth_methods(false, true)?;
                    a.reject()?;
                }
                ServEvent::PasswordAuth(mut a) => {
                    a.set_auth_methods(false, true)?;
                    a.reject()?;
                }
                ServEvent::PubkeyAuth(a) => {
                    let key = match a.pubkey() {
                        Ok(PubKey::Ed25519(k)) => Some(k.key.0),
                        _ => None,
                    };
                    match key.filter(|k| self.authorized.allows(k)) {
                        Some(k) => {
                            self.allowed =
                                Some(self.authorized.comment(&k).unwrap_or("").to_string());
                            a.allow()?;
                        }
                        None => a.reject()?,
                    }
                }
                ServEvent::Authenticated => self.user = self.allowed.take(),
                ServEvent::OpenSession(o) => {
                    if self.channels.len() >= MAX_CHANNELS {
                        o.reject(ChanFail::SSH_OPEN_RESOURCE_SHORTAGE)?;
                    } else {
                        let handle = o.accept()?;
                        self.channels.push(Channel {
                            handle,
                            pty: false,
                            mode: Mode::Idle,
                            stdout: Vec::new(),
                            stderr: Vec::new(),
                            ending: false,
                        });
                    }
                }
                ServEvent::SessionPty(p) => match find(&mut self.channels, p.channel()) {
                    Some(ch) if matches!(ch.mode, Mode::Idle) => {
                        ch.pty = true;
                        p.succeed()?;
                    }
                    _ => p.fail()?,
                },
                ServEvent::SessionShell(s) => match find(&mut self.channels, s.channel()) {
                    Some(ch) if matches!(ch.mode, Mode::Idle) => {
                        s.succeed()?;
                        let mut console = Console::new();
                        console.start(sys, &mut ch.stdout);
                        ch.mode = Mode::Shell(alloc::boxed::Box::new(console));
                    }
                    _ => s.fail()?,
                },
                ServEvent::SessionExec(e) => {
                    let command = e.command().map(|c| c.to_string());
                    let num = e.channel();
                    match (command, find(&mut self.channels, num)) {
                        (Ok(command), Some(ch)) if matches!(ch.mode, Mode::Idle) => {
                            e.succeed()?;
                            let result = Shell::new().run(sys, &command);
                            if ch.pty {
                                // A pty merges the streams and wants CR LF.
                                terminal_text(&result.stdout, &mut ch.stdout);
                                terminal_text(&result.stderr, &mut ch.stdout);
                            } else {
                                ch.stdout.extend_from_slice(result.stdout.as_bytes());
                                ch.stderr.extend_from_slice(result.stderr.as_bytes());
                            }
                            ch.mode = Mode::Exec;
                            ch.ending = true;
                            self.exit_status = Some(result.status);
                        }
                        _ => e.fail()?,
                    }
                }
                // No sftp or other subsystems; environment variables are
                // not applied (the shell has none of its own).
                ServEvent::SessionSubsystem(e) => e.fail()?,
                ServEvent::SessionEnv(e) => e.fail()?,
                ServEvent::Defunct => {
                    self.state = State::Finished;
                    return Ok(true);
                }
                ServEvent::PollAgain => {}
            }
        }
    }

    /// Feed channel input to the shells and queue their output; true if
    /// any byte moved.
    fn channel_io<S: System>(&mut self, sys: &mut S) -> Result<bool, sunset::Error> {
        let mut moved = false;
        // Input: sunset holds one incoming data packet at a time, and
        // everything waits until it is read, so always take it.
        if let Some((num, _, _)) = self.runner.read_channel_ready() {
            let Some(index) = self.channels.iter().position(|c| c.handle.num() == num) else {
                return Ok(false);
            };
            let ch = &mut self.channels[index];
            match &mut ch.mode {
                Mode::Shell(console) => {
                    let mut buf = [0u8; READ_CHUNK];
                    let n = self
                        .runner
                        .read_channel(&ch.handle, ChanData::Normal, &mut buf)?;
                    console.input(sys, &buf[..n], &mut ch.stdout);
                    if console.is_closed() {
                        ch.ending = true;
                    }
                    moved |= n > 0;
                }
                // Nobody reads stdin of a finished command or a channel
                // without a request yet.
                Mode::Exec | Mode::Idle => {
                    self.runner.discard_read_channel(&ch.handle)?;
                    moved = true;
                }
            }
        }
        // Output, as far as the peer's window allows.
        for ch in &mut self.channels {
            for (data, kind) in [
                (&mut ch.stdout, ChanData::Normal),
                (&mut ch.stderr, ChanData::Stderr),
            ] {
                while !data.is_empty() {
                    let n = self.runner.write_channel(&ch.handle, kind, data)?;
                    if n == 0 {
                        break;
                    }
                    data.drain(..n.min(data.len()));
                    moved = true;
                }
            }
        }
        // sunset 0.6 cannot send exit-status or close a channel from the
        // server side, so a finished command or shell ends the whole
        // connection once its output is out (OpenSSH then reports the
        // connection closed). Upstream: mkj/sunset#22; see
        // docs/management.md.
        if self.state == State::Running
            && self
                .channels
                .iter()
                .any(|c| c.ending && c.stdout.is_empty() && c.stderr.is_empty())
        {
            self.state = State::Closing;
        }
        Ok(moved)
    }
}

/// A free function, not a method: sunset's event borrows the runner while
/// the channel list is needed.
fn find(channels: &mut [Channel], num: sunset::ChanNum) -> Option<&mut Channel> {
    channels.iter_mut().find(|c| c.handle.num() == num)
}
