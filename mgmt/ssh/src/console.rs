//! An interactive shell on a terminal: the line editor feeding the shell,
//! with prompt, banner and newline translation. Bytes in, bytes out, so
//! the SSH shell channel and (later) the serial console share it.

use alloc::vec::Vec;

use keel_mgmt::system::System;

use crate::editor::{Editor, Event};
use crate::shell::{Action, Shell};

/// One interactive session.
#[derive(Debug, Clone, Default)]
pub struct Console {
    editor: Editor,
    shell: Shell,
    closed: bool,
}

impl Console {
    /// A session in `/` with empty history.
    pub fn new() -> Self {
        Console::default()
    }

    /// The greeting and first prompt.
    pub fn start<S: System>(&mut self, sys: &S, out: &mut Vec<u8>) {
        let v = sys.version();
        let banner = alloc::format!(
            "{} {} ({}) management shell on {}. Type 'help' for commands.\n",
            v.name,
            v.version,
            v.arch,
            sys.hostname()
        );
        terminal_text(&banner, out);
        out.extend_from_slice(self.shell.prompt(sys).as_bytes());
    }

    /// Whether the user ended the session (`exit`, Ctrl-D).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The shell behind the console (its current directory).
    pub fn shell(&self) -> &Shell {
        &self.shell
    }

    /// Feed terminal input; what the terminal should show goes to `out`.
    /// Input after the session closed is ignored.
    pub fn input<S: System>(&mut self, sys: &mut S, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            if self.closed {
                return;
            }
            let prompt = self.shell.prompt(sys);
            match self.editor.feed(b, &prompt, out) {
                None => {}
                Some(Event::Interrupt) => out.extend_from_slice(prompt.as_bytes()),
                Some(Event::Eof) => self.closed = true,
                Some(Event::Line(line)) => {
                    let result = self.shell.run(sys, &line);
                    terminal_text(&result.stdout, out);
                    terminal_text(&result.stderr, out);
                    match result.action {
                        Action::Exit => {
                            self.closed = true;
                            return;
                        }
                        Action::Clear => out.extend_from_slice(b"\x1b[H\x1b[2J"),
                        Action::None => {}
                    }
                    // The prompt may have changed (cd).
                    out.extend_from_slice(self.shell.prompt(sys).as_bytes());
                }
            }
        }
    }
}

/// Text for a raw terminal: the shell writes `\n`, the terminal needs
/// `\r\n` (nobody else does the tty's output translation here).
pub fn terminal_text(text: &str, out: &mut Vec<u8>) {
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(part.as_bytes());
    }
}
