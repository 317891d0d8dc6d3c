//! `cargo keel run`: boot a kernel with the console on this terminal and
//! exit with the guest's exit status.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::arch::GuestExit;
use crate::protocol::{self, Line};
use crate::qemu::{Next, Session, Vm};
use crate::symbols::Symbols;

/// Exit status of `cargo keel run` when the kernel panicked.
pub const PANIC_STATUS: i32 = 101;
/// Exit status when the guest ended without saying how (crash, mismatch).
pub const UNKNOWN_STATUS: i32 = 125;

/// Build the kernel command line from the words after `--`: leading
/// `key=value` words are kernel options; the first other word starts the
/// app's argv, which goes after a `--` separator.
pub fn kernel_cmdline(words: &[String]) -> Result<String> {
    let split = words
        .iter()
        .position(|w| !is_option(w))
        .unwrap_or(words.len());
    let mut parts: Vec<String> = words[..split].to_vec();
    if split < words.len() {
        parts.push("--".into());
        for w in &words[split..] {
            if w.contains('"') {
                bail!(
                    "argument {w:?} contains a double quote, which the kernel command line cannot carry"
                );
            }
            parts.push(if w.is_empty() || w.chars().any(char::is_whitespace) {
                format!("\"{w}\"")
            } else {
                w.clone()
            });
        }
    }
    Ok(parts.join(" "))
}

fn is_option(word: &str) -> bool {
    match word.split_once('=') {
        Some((key, _)) => {
            !key.is_empty()
                && !key.contains('/')
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }
        None => false,
    }
}

/// Boot `vm` interactively; returns the process exit status to use.
pub fn run(vm: &Vm, timeout: Option<Duration>) -> Result<i32> {
    let symbols = Symbols::load(&vm.image);
    let session = Session::start(vm)?;
    let started = std::time::Instant::now();
    let mut marker = None;
    loop {
        let wait = match timeout {
            Some(t) => t.saturating_sub(started.elapsed()),
            None => Duration::from_secs(3600),
        };
        match session.next(wait) {
            Next::Line(raw) => {
                println!("{}", symbols.annotate(raw.trim_end_matches(['\r', '\n'])));
                if let Line::Exit(e) = protocol::parse(&raw) {
                    marker = Some(e);
                }
            }
            Next::End => break,
            Next::Silent if timeout.is_some_and(|t| started.elapsed() >= t) => {
                session.kill();
                eprintln!(
                    "cargo keel: stopped the guest after the {} s timeout",
                    timeout.unwrap_or_default().as_secs()
                );
                return Ok(UNKNOWN_STATUS);
            }
            Next::Silent => {}
        }
    }
    let (status, _) = session.wait()?;
    let code = status.code().unwrap_or(-1);
    Ok(match marker {
        None => {
            eprintln!(
                "cargo keel: the guest ended without an exit marker (QEMU status {code}): it crashed or was stopped"
            );
            UNKNOWN_STATUS
        }
        Some(exit) => {
            let expected = vm.arch.expected_qemu_status(exit);
            if code != expected {
                eprintln!(
                    "cargo keel: the guest said {exit:?} but QEMU exited with {code} (expected {expected}); treating it as a failure"
                );
                UNKNOWN_STATUS
            } else {
                match exit {
                    GuestExit::Code(n) => i32::from(n),
                    GuestExit::Panic => {
                        eprintln!("cargo keel: the kernel panicked");
                        PANIC_STATUS
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::kernel_cmdline;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn options_then_app_argv() {
        assert_eq!(
            kernel_cmdline(&words(&["keel.test=all"])).unwrap(),
            "keel.test=all"
        );
        assert_eq!(
            kernel_cmdline(&words(&["keel.x=1", "/bin/app", "-v", "two words", "a=b"])).unwrap(),
            "keel.x=1 -- /bin/app -v \"two words\" a=b"
        );
        assert_eq!(kernel_cmdline(&words(&["/app"])).unwrap(), "-- /app");
        assert!(kernel_cmdline(&words(&["/app", "say \"hi\""])).is_err());
    }
}
