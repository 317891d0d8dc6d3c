//! Host tests of the whole API against a fake system: a test client feeds
//! raw request bytes through a `Connection` in pieces of a chosen size and
//! parses what comes back.

mod api;
mod auth;
mod format;
mod fuzz;
mod protocol;
mod router;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::http::{Connection, Limits};
use crate::testing as fake;
use crate::{Api, Config, Token};
use fake::Fake;

pub const TOKEN: &str = "test-token-0123456789";

pub struct Client {
    pub api: Api<Fake>,
    pub conn: Connection<Api<Fake>>,
    /// Largest number of bytes handed out by one `send`.
    pub send_window: usize,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

impl Client {
    pub fn new() -> Self {
        Self::with(Fake::new(), Limits::default())
    }

    pub fn with(fake: Fake, limits: Limits) -> Self {
        let mut config = Config::new(Token::new(TOKEN).unwrap());
        config.max_upload = 128 * 1024 * 1024;
        Client {
            api: Api::new(fake, config),
            conn: Connection::new(limits),
            send_window: 4096,
        }
    }

    pub fn fake(&mut self) -> &mut Fake {
        self.api.system()
    }

    /// Push `input` in pieces of at most `piece` bytes, draining output
    /// between pieces as a socket with a `send_window` send buffer would.
    pub fn pump(&mut self, input: &[u8], piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = alloc::vec![0u8; self.send_window];
        let mut pos = 0;
        loop {
            let end = (pos + piece).min(input.len());
            let taken = self.conn.recv(&mut self.api, &input[pos..end]);
            assert!(taken <= end - pos);
            pos += taken;
            let sent = self.conn.send(&mut self.api, &mut buf);
            out.extend_from_slice(&buf[..sent]);
            if pos == input.len() && sent == 0 {
                return out;
            }
            assert!(
                taken > 0 || sent > 0 || self.conn.is_finished(),
                "connection stalled with {} bytes of input left",
                input.len() - pos
            );
            if taken == 0 && sent == 0 {
                return out;
            }
        }
    }

    /// Send raw bytes at once and parse every response.
    pub fn raw(&mut self, input: &[u8]) -> Vec<Reply> {
        let out = self.pump(input, usize::MAX / 2);
        parse_replies(&out)
    }

    /// One authenticated request with an optional body; its reply.
    pub fn call(&mut self, method: &str, target: &str, body: Option<&[u8]>) -> Reply {
        let mut replies = self.raw(&request(method, target, body, Some(TOKEN)));
        assert_eq!(replies.len(), 1, "{method} {target}: {replies:?}");
        replies.remove(0)
    }

    pub fn get(&mut self, target: &str) -> Reply {
        self.call("GET", target, None)
    }
}

/// A request's bytes; `body` is sent with Content-Length.
pub fn request(method: &str, target: &str, body: Option<&[u8]>, token: Option<&str>) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: keel\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// Parse concatenated responses strictly (any framing error panics), so
/// tests notice a malformed response, not just a wrong status.
pub fn parse_replies(mut out: &[u8]) -> Vec<Reply> {
    let mut replies = Vec::new();
    while !out.is_empty() {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("unterminated head: {:?}", String::from_utf8_lossy(out)))
            + 4;
        let head = core::str::from_utf8(&out[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_string(), v.to_string())
            })
            .collect();
        out = &out[end..];
        if status == 100 {
            continue;
        }
        let reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = match reply.header("Content-Length") {
            Some(l) => l.parse().unwrap(),
            None => {
                assert_eq!(status, 204, "no Content-Length");
                0
            }
        };
        // A response cut short (a failed stream) takes what is there.
        let take = len.min(out.len());
        let mut reply = reply;
        reply.body = out[..take].to_vec();
        out = &out[take..];
        replies.push(reply);
    }
    replies
}
