//! A line editor for a VT100-style terminal: insert anywhere, backspace and
//! delete, left/right arrows, home/end, history with up/down, Ctrl-C to drop
//! the line and Ctrl-D to end the session.
//!
//! It is fed raw terminal bytes and writes the echo it wants shown, so it
//! works the same over an SSH pty and a serial line. Each edit redraws the
//! line from the prompt (`\r`, prompt, text, erase to end, cursor back):
//! slower than minimal updates, but correct whatever the edit was.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Longest line kept; further input is refused with a bell, so a stuck key
/// or a pasted blob cannot grow kernel memory without bound.
pub const MAX_LINE: usize = 4096;
/// History entries kept.
pub const HISTORY: usize = 100;

/// What a byte of input completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A finished line (without its newline).
    Line(String),
    /// Ctrl-C: the line was dropped.
    Interrupt,
    /// Ctrl-D on an empty line: the user is done.
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After `ESC [` or `ESC O`, collecting parameter bytes.
    Csi,
}

/// The editor state for one terminal.
#[derive(Debug, Clone)]
pub struct Editor {
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history; `history.len()` is the new line.
    browse: usize,
    /// The line being typed before browsing started.
    draft: Vec<char>,
    escape: Escape,
    params: String,
    utf8: Vec<u8>,
    /// The last byte was CR, so a following LF is the same line ending.
    after_cr: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Self::new()
    }
}

impl Editor {
    /// An empty editor with no history.
    pub fn new() -> Self {
        Editor {
            line: Vec::new(),
            cursor: 0,
            history: Vec::new(),
            browse: 0,
            draft: Vec::new(),
            escape: Escape::None,
            params: String::new(),
            utf8: Vec::new(),
            after_cr: false,
        }
    }

    /// The line as typed so far.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// Cursor position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Lines entered so far, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Feed one byte; terminal output (echo, redraws) goes to `echo`.
    /// `prompt` is what precedes the line on screen, for redraws.
    pub fn feed(&mut self, byte: u8, prompt: &str, echo: &mut Vec<u8>) -> Option<Event> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.escape {
            Escape::Esc => {
                self.escape = if byte == b'[' || byte == b'O' {
                    self.params.clear();
                    Escape::Csi
                } else {
                    Escape::None
                };
                return None;
            }
            Escape::Csi => {
                if (0x30..=0x3f).contains(&byte) {
                    // Parameters (digits, ';'); bounded so garbage cannot
                    // grow them.
                    if self.params.len() < 16 {
                        self.params.push(byte as char);
                    }
                    return None;
                }
                self.escape = Escape::None;
                self.csi(byte, prompt, echo);
                return None;
            }
            Escape::None => {}
        }
        if byte < 0x80 {
            // An ASCII byte cuts short any multi-byte sequence in progress:
            // drop the fragment, keep the byte.
            self.utf8.clear();
        } else {
            self.utf8.push(byte);
            match core::str::from_utf8(&self.utf8) {
                Ok(s) => {
                    let c = s.chars().next();
                    self.utf8.clear();
                    if let Some(c) = c {
                        self.insert(c, prompt, echo);
                    }
                }
                // An incomplete sequence waits for more; an invalid one
                // (or one longer than UTF-8 allows) is dropped.
                Err(e) if e.error_len().is_none() && self.utf8.len() < 4 => {}
                Err(_) => self.utf8.clear(),
            }
            return None;
        }
        match byte {
            b'\r' | b'\n' => {
                if byte == b'\n' && after_cr {
                    return None;
                }
                self.after_cr = byte == b'\r';
                echo.extend_from_slice(b"\r\n");
                let line: String = self.line.iter().collect();
                self.reset();
                if !line.trim().is_empty() && self.history.last() != Some(&line) {
                    if self.history.len() == HISTORY {
                        self.history.remove(0);
                    }
                    self.history.push(line.clone());
                }
                self.browse = self.history.len();
                Some(Event::Line(line))
            }
            0x03 => {
                echo.extend_from_slice(b"^C\r\n");
                self.reset();
                self.browse = self.history.len();
                Some(Event::Interrupt)
            }
            0x04 => {
                if self.line.is_empty() {
                    echo.extend_from_slice(b"\r\n");
                    return Some(Event::Eof);
                }
                self.delete_at_cursor(prompt, echo);
                None
            }
            0x7f | 0x08 => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    self.redraw(prompt, echo);
                }
                None
            }
            0x1b => {
                self.escape = Escape::Esc;
                None
            }
            0x01 => {
                self.cursor = 0;
                self.redraw(prompt, echo);
                None
            }
            0x05 => {
                self.cursor = self.line.len();
                self.redraw(prompt, echo);
                None
            }
            0x15 => {
                // Ctrl-U: drop everything before the cursor.
                self.line.drain(..self.cursor);
                self.cursor = 0;
                self.redraw(prompt, echo);
                None
            }
            0x0c => {
                // Ctrl-L: clear the screen, keep the line.
                echo.extend_from_slice(b"\x1b[H\x1b[2J");
                self.redraw(prompt, echo);
                None
            }
            b'\t' => {
                self.insert(' ', prompt, echo);
                None
            }
            0x20..=0x7e => {
                self.insert(byte as char, prompt, echo);
                None
            }
            // Other control bytes mean nothing here.
            _ => None,
        }
    }

    fn reset(&mut self) {
        self.line.clear();
        self.cursor = 0;
        self.draft.clear();
    }

    fn insert(&mut self, c: char, prompt: &str, echo: &mut Vec<u8>) {
        if self.line.len() >= MAX_LINE {
            echo.push(0x07);
            return;
        }
        self.line.insert(self.cursor, c);
        self.cursor += 1;
        if self.cursor == self.line.len() {
            // Typing at the end, the common case: just echo it.
            let mut b = [0u8; 4];
            echo.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        } else {
            self.redraw(prompt, echo);
        }
    }

    fn delete_at_cursor(&mut self, prompt: &str, echo: &mut Vec<u8>) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.redraw(prompt, echo);
        }
    }

    fn csi(&mut self, final_byte: u8, prompt: &str, echo: &mut Vec<u8>) {
        match final_byte {
            b'A' => self.browse_history(-1, prompt, echo),
            b'B' => self.browse_history(1, prompt, echo),
            b'C' if self.cursor < self.line.len() => {
                self.cursor += 1;
                echo.extend_from_slice(b"\x1b[C");
            }
            b'D' if self.cursor > 0 => {
                self.cursor -= 1;
                echo.extend_from_slice(b"\x1b[D");
            }
            b'H' => {
                self.cursor = 0;
                self.redraw(prompt, echo);
            }
            b'F' => {
                self.cursor = self.line.len();
                self.redraw(prompt, echo);
            }
            b'~' => match self.params.as_str() {
                "1" | "7" => {
                    self.cursor = 0;
                    self.redraw(prompt, echo);
                }
                "4" | "8" => {
                    self.cursor = self.line.len();
                    self.redraw(prompt, echo);
                }
                "3" => self.delete_at_cursor(prompt, echo),
                _ => {}
            },
            _ => {}
        }
    }

    fn browse_history(&mut self, step: isize, prompt: &str, echo: &mut Vec<u8>) {
        let target = self.browse as isize + step;
        if target < 0 || target > self.history.len() as isize {
            echo.push(0x07);
            return;
        }
        if self.browse == self.history.len() {
            self.draft = self.line.clone();
        }
        self.browse = target as usize;
        self.line = match self.history.get(self.browse) {
            Some(h) => h.chars().collect(),
            None => core::mem::take(&mut self.draft),
        };
        self.cursor = self.line.len();
        self.redraw(prompt, echo);
    }

    /// Redraw the whole line and put the cursor back where it belongs.
    fn redraw(&self, prompt: &str, echo: &mut Vec<u8>) {
        let mut s = String::from("\r");
        s.push_str(prompt);
        s.extend(self.line.iter());
        s.push_str("\x1b[K");
        let back = self.line.len() - self.cursor;
        if back > 0 {
            let _ = write!(s, "\x1b[{back}D");
        }
        echo.extend_from_slice(s.as_bytes());
    }
}
