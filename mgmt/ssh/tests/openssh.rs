//! End to end with the stock OpenSSH client: the session served over std
//! TCP on 127.0.0.1 (random port) by the `serve` example's code, keys made
//! by ssh-keygen, `ssh host free` non-interactively, and an interactive
//! session through a real pty (`script`) with an arrow-key edit.
//!
//! These need `ssh`, `ssh-keygen` and `script` (util-linux); a missing
//! tool fails the test rather than skipping it, so a green run always
//! means OpenSSH really logged in.

#[path = "../examples/serve.rs"]
#[allow(dead_code)]
mod serve;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_mgmt::testing::Fake;
use keel_ssh::{AuthorizedKeys, Config, HostKey};

/// Every external command gets this long; a hang is a failure.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Server {
    port: u16,
    dir: PathBuf,
    host_key: HostKey,
    sys: Arc<Mutex<Fake>>,
}

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "keel-ssh-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (OpenSSH) must be installed for this test");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    path
}

/// A server whose authorized_keys holds a fresh ssh-keygen key `id`.
fn start() -> Server {
    start_with(16 * 1024, 16 * 1024)
}

/// [`start`] with the transport's read and write sizes.
fn start_with(read_size: usize, write_size: usize) -> Server {
    let dir = temp_dir();
    let id = keygen(&dir, "id");
    let text = std::fs::read_to_string(id.with_extension("pub")).unwrap();
    let (authorized, skipped) = AuthorizedKeys::parse(&text);
    assert_eq!((authorized.len(), skipped.len()), (1, 0));
    let host_key = HostKey::generate(&mut serve::OsRng, "keel-test-host");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sys = Arc::new(Mutex::new(Fake::new()));
    let config = Arc::new(Config {
        host_key: host_key.clone(),
        authorized,
    });
    let shared = sys.clone();
    std::thread::spawn(move || {
        serve::accept_loop_with(listener, config, shared, read_size, write_size)
    });
    Server {
        port,
        dir,
        host_key,
        sys,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The child's output once it exits, read while it runs (a pipe left
/// unread fills at 64 KiB and stalls the child); killed after [`TIMEOUT`].
fn wait(child: Child, what: &str) -> Output {
    let pid = child.id();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match result.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what}: no end after {TIMEOUT:?}");
        }
    }
}

impl Server {
    /// The ssh command line for `key`, checking the host key against a
    /// known_hosts file that holds ours: a wrong host key fails the login.
    fn ssh_args(&self, key: &Path) -> Vec<String> {
        let known = self.dir.join("known_hosts");
        std::fs::write(
            &known,
            format!(
                "[127.0.0.1]:{} {}\n",
                self.port,
                self.host_key.public_line()
            ),
        )
        .unwrap();
        [
            "-p",
            &self.port.to_string(),
            "-i",
            key.to_str().unwrap(),
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", known.display()),
            "-o",
            "ConnectTimeout=10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn exec(&self, key: &Path, command: &str) -> (String, String) {
        let child = Command::new("ssh")
            .args(self.ssh_args(key))
            .arg("keel@127.0.0.1")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ssh (OpenSSH client) must be installed for this test");
        let out = wait(child, command);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn openssh_runs_commands_non_interactively() {
    let server = start();
    let id = server.dir.join("id");

    let (out, err) = server.exec(&id, "free");
    assert!(
        out.contains("Mem:       1073741824      536870912      536870912"),
        "stdout {out:?} stderr {err:?}"
    );

    let (out, _) = server.exec(&id, "cat /etc/hosts");
    assert_eq!(out, "127.0.0.1 localhost\n");

    // Errors arrive on stderr, apart from stdout.
    let (out, err) = server.exec(&id, "ls /etc /nope");
    assert_eq!(out, "/etc:\nhosts\n");
    assert!(err.contains("ls: /nope: not found"), "{err:?}");

    // Commands act on the system.
    server.exec(&id, "mkdir /srv");
    assert!(server.sys.lock().unwrap().files.contains_key("/srv"));
}

#[test]
fn openssh_through_a_transport_of_tiny_reads_and_writes() {
    // One byte per read, seven per write: every packet arrives and leaves
    // in pieces, as it may from a TCP stack with small windows.
    let server = start_with(1, 7);
    let id = server.dir.join("id");
    let (out, err) = server.exec(&id, "cat /etc/hosts");
    assert_eq!(out, "127.0.0.1 localhost\n", "stderr {err:?}");
    // Output across many packets and window adjustments.
    server.sys.lock().unwrap().files.insert(
        "/big".into(),
        keel_mgmt::testing::Node::File(b"0123456789abcdef".repeat(16 * 1024)),
    );
    let (out, err) = server.exec(&id, "cat /big");
    assert_eq!(out.len(), 256 * 1024, "stderr {err:?}");
    assert!(out.starts_with("0123456789abcdef0123"));
}

/// Known failure, kept runnable (`cargo test -p keel-ssh -- --ignored`):
/// sunset 0.6 cannot close a channel, so the session ends the connection
/// instead, and OpenSSH drops output it has received but not yet written
/// to its stdout when it sees the connection end. With 1 MiB most runs
/// lose part of it. Passes reliably once channels are closed properly.
#[test]
#[ignore = "sunset 0.6 cannot close a channel; see docs/management.md"]
fn long_output_survives_the_end_of_the_session() {
    let server = start();
    let id = server.dir.join("id");
    server.sys.lock().unwrap().files.insert(
        "/big".into(),
        keel_mgmt::testing::Node::File(b"0123456789abcdef".repeat(64 * 1024)),
    );
    let (out, err) = server.exec(&id, "cat /big");
    assert_eq!(out.len(), 1024 * 1024, "stderr {err:?}");
}

#[test]
fn openssh_with_an_unknown_key_is_refused() {
    let server = start();
    let stranger = keygen(&server.dir, "stranger");
    let (out, err) = server.exec(&stranger, "reboot");
    assert_eq!(out, "");
    assert!(err.contains("Permission denied (publickey)"), "{err:?}");
    assert!(server.sys.lock().unwrap().power.is_empty());
}

#[test]
fn ssh_keygen_reads_our_host_key_file() {
    let server = start();
    let path = server.dir.join("host_key");
    std::fs::write(&path, server.host_key.to_openssh(&mut serve::OsRng)).unwrap();
    // OpenSSH insists on private key files only their owner can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap();
    let ours = server.host_key.public_line();
    let words = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(words(&public), words(&ours));
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&path)
        .output()
        .unwrap();
    let fp = String::from_utf8(fp.stdout).unwrap();
    assert!(fp.contains(&server.host_key.fingerprint()), "{fp}");
}

/// Wait until `output` holds `needle` (counting from `from`), or fail.
fn expect(output: &Mutex<Vec<u8>>, needle: &str, from: usize) -> usize {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
        if let Some(at) = text.get(from..).and_then(|t| t.find(needle)) {
            return from + at + needle.len();
        }
        if Instant::now() > deadline {
            panic!("no {needle:?} on the terminal after {TIMEOUT:?}; it shows {text:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn openssh_interactive_session_through_a_pty() {
    let server = start();
    let id = server.dir.join("id");
    let mut ssh = vec!["ssh".to_string(), "-tt".to_string()];
    ssh.extend(server.ssh_args(&id));
    ssh.push("keel@127.0.0.1".into());
    // `script` gives ssh a real pty on our side, as a person at a terminal
    // has; ssh then asks the server for one.
    let mut child = Command::new("script")
        .args(["-q", "-f", "-e", "-c", &ssh.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) must be installed for this test");
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut keys = child.stdin.take().unwrap();
    let mut at = expect(&output, "keel:/$ ", 0);

    // "pd", left arrow, "w": the line is "pwd".
    keys.write_all(b"pd\x1b[Dw\r").unwrap();
    at = expect(&output, "\r\n/\r\nkeel:/$ ", at);

    keys.write_all(b"cd /etc\r").unwrap();
    at = expect(&output, "keel:/etc$ ", at);

    // Up twice recalls "pwd"; it runs in the new directory.
    keys.write_all(b"\x1b[A\x1b[A\r").unwrap();
    at = expect(&output, "\r\n/etc\r\nkeel:/etc$ ", at);

    // Ctrl-C drops a half-typed line: nothing runs.
    keys.write_all(b"reboot\x03").unwrap();
    at = expect(&output, "^C\r\nkeel:/etc$ ", at);
    assert!(server.sys.lock().unwrap().power.is_empty());

    // Backspace (DEL, what terminals send) removes the stray letter.
    keys.write_all(b"pwdq\x7f\r").unwrap();
    at = expect(&output, "\r\n/etc\r\nkeel:/etc$ ", at);

    // Ctrl-D on an empty line ends the session.
    keys.write_all(b"\x04").unwrap();
    expect(&output, "closed", at);
    drop(keys);
    wait(child, "interactive ssh");
}
