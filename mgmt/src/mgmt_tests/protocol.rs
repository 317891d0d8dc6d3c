//! HTTP/1.1 framing: keep-alive, pipelining, chunked bodies, limits and
//! the error status for each kind of malformed request.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::http::Limits;

fn auth() -> String {
    format!("Authorization: Bearer {TOKEN}\r\n")
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let mut c = Client::new();
    let mut input = request("GET", "/os/name", None, Some(TOKEN));
    input.extend(request("GET", "/nope", None, Some(TOKEN)));
    input.extend(request("PUT", "/env/A", Some(b"\"1\""), Some(TOKEN)));
    input.extend(request("GET", "/env/A", None, Some(TOKEN)));
    for piece in [1, 3, 7, 64, 100_000] {
        let mut c2 = Client::new();
        let replies = parse_replies(&c2.pump(&input, piece));
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 404, 204, 200], "piece {piece}");
        assert_eq!(replies[3].json(), "1");
        assert!(!c2.conn.is_finished());
    }
    assert_eq!(c.get("/os/name").json(), "Keel");
    assert_eq!(c.get("/os/name").json(), "Keel");
}

#[test]
fn connection_close_and_http_1_0_end_the_connection() {
    let mut c = Client::new();
    let input = format!(
        "GET /os/name HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\nGET /os/name HTTP/1.1\r\nHost: x\r\n\r\n",
        auth()
    );
    let replies = c.raw(input.as_bytes());
    assert_eq!(replies.len(), 1, "nothing after Connection: close");
    assert_eq!(replies[0].header("Connection"), Some("close"));
    assert!(c.conn.is_finished());

    let mut c = Client::new();
    let replies = c.raw(format!("GET /os/name HTTP/1.0\r\n{}\r\n", auth()).as_bytes());
    assert_eq!(replies[0].status, 200);
    assert!(c.conn.is_finished(), "HTTP/1.0 closes by default");

    let mut c = Client::new();
    let replies = c.raw(
        format!(
            "GET /os/name HTTP/1.0\r\nConnection: keep-alive\r\n{}\r\n",
            auth()
        )
        .as_bytes(),
    );
    assert_eq!(replies[0].status, 200);
    assert_eq!(replies[0].header("Connection"), Some("keep-alive"));
    assert!(!c.conn.is_finished());
}

#[test]
fn chunked_bodies_with_extensions_and_trailers() {
    let mut c = Client::new();
    let input = format!(
        "PUT /file/etc/new HTTP/1.1\r\nHost: x\r\n{}Transfer-Encoding: chunked\r\n\r\n\
         5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 1\r\n\r\n",
        auth()
    );
    for piece in [1, 2, 5, 1000] {
        let mut c2 = Client::new();
        let replies = parse_replies(&c2.pump(input.as_bytes(), piece));
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].status, 201, "{:?}", replies[0]);
        assert_eq!(c2.fake().file("/etc/new").unwrap(), b"hello world");
    }
    // A chunk whose data runs past its size is a framing error.
    let bad = format!(
        "PUT /file/etc/bad HTTP/1.1\r\nHost: x\r\n{}Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        auth()
    );
    let replies = c.raw(bad.as_bytes());
    assert_eq!(replies[0].status, 400);
    assert!(c.conn.is_finished());
    assert!(
        c.fake().file("/etc/bad").is_none(),
        "aborted upload removed"
    );
    assert_eq!(c.fake().open_handles, 0);
}

#[test]
fn malformed_heads_get_their_status() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let big_header = format!(
        "GET /os HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17 * 1024)
    );
    let many_headers = format!(
        "GET /os HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: 1\r\n".repeat(100)
    );
    let cases: Vec<(&[u8], u16)> = alloc::vec![
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /os HTTP/1.1\r\n\r\n", 400), // no Host
        (b"GET os HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET http://x/os HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /os HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /os HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400),
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"CONNECT keel:8000 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"PUT /os/hostname HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (
            b"PUT /os/hostname HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            400
        ),
        (b"PUT /os/hostname HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\n", 400),
        (b"PUT /os/hostname HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"PUT /os/hostname HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            413
        ),
        (long_target.as_bytes(), 414),
        (big_header.as_bytes(), 431),
        (many_headers.as_bytes(), 431),
    ];
    for (input, status) in cases {
        for piece in [1, 4096, usize::MAX / 2] {
            let mut c = Client::new();
            let replies = parse_replies(&c.pump(input, piece));
            assert_eq!(replies.len(), 1, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(
                replies[0].status,
                status,
                "{:?} in pieces of {piece}",
                String::from_utf8_lossy(&input[..input.len().min(80)])
            );
            assert_eq!(replies[0].header("Connection"), Some("close"));
            assert!(c.conn.is_finished());
            replies[0].json();
        }
    }
}

#[test]
fn a_head_past_the_limit_is_refused_before_it_ends() {
    // The client never finishes its head: the server must not wait (and
    // buffer) forever.
    let mut c = Client::new();
    let mut input = b"GET /os HTTP/1.1\r\nHost: x\r\n".to_vec();
    input.extend(core::iter::repeat_n(b'X', 20 * 1024));
    let replies = parse_replies(&c.pump(&input, 1000));
    assert_eq!(replies[0].status, 431);
}

#[test]
fn length_required_and_too_large() {
    let mut c = Client::new();
    let r = c.raw(format!("PUT /env/X HTTP/1.1\r\nHost: x\r\n{}\r\n", auth()).as_bytes());
    assert_eq!(r[0].status, 411);
    let r = c.raw(format!("PUT /file/etc/x HTTP/1.1\r\nHost: x\r\n{}\r\n", auth()).as_bytes());
    assert_eq!(r[0].status, 411);
    // A body-less POST to an action endpoint is fine.
    let r = c.raw(format!("POST /os/reboot HTTP/1.1\r\nHost: x\r\n{}\r\n", auth()).as_bytes());
    assert_eq!(r[0].status, 202);

    let big = alloc::vec![b'"'; 70 * 1024];
    let r = c.call("PUT", "/env/X", Some(&big));
    assert_eq!(r.status, 413);
    // Chunked bodies have no length up front: the limit hits mid-body.
    let mut c = Client::new();
    let mut input = format!(
        "PUT /env/X HTTP/1.1\r\nHost: x\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        auth()
    )
    .into_bytes();
    for _ in 0..20 {
        input.extend(b"1000\r\n");
        input.extend(core::iter::repeat_n(b'a', 0x1000));
        input.extend(b"\r\n");
    }
    input.extend(b"0\r\n\r\n");
    let r = parse_replies(&c.pump(&input, 1500));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 413);
    assert!(c.conn.is_finished());
}

#[test]
fn early_answers_discard_small_bodies_and_keep_the_connection() {
    let mut c = Client::new();
    let mut input = request("PUT", "/env/X", Some(b"\"v\""), None);
    input.extend(request("PUT", "/nope", Some(b"12345"), Some(TOKEN)));
    input.extend(request("GET", "/os/name", None, Some(TOKEN)));
    let r = c.raw(&input);
    let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 404, 200]);
    assert!(!c.fake().env.contains_key("X"));
    // A large unauthenticated upload is not read to its end.
    let mut c = Client::new();
    let head = "PUT /file/etc/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    let mut input = head.as_bytes().to_vec();
    input.extend(alloc::vec![0u8; 2 * 1024 * 1024]);
    let r = parse_replies(&c.pump(&input, 64 * 1024));
    assert_eq!(r[0].status, 401);
    assert!(c.conn.is_finished());
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut c = Client::new();
    let head = format!(
        "PUT /file/etc/up HTTP/1.1\r\nHost: x\r\n{}Content-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        auth()
    );
    let out = c.pump(head.as_bytes(), 1000);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    let r = parse_replies(&c.pump(b"abc", 1000));
    assert_eq!(r[0].status, 201);
    // Refused before the body: the final answer, no 100, and the
    // connection closes since the client may or may not send the body.
    let mut c = Client::new();
    let head =
        "PUT /file/etc/up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    let out = c.pump(head.as_bytes(), 1000);
    let r = parse_replies(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 401);
    assert!(c.conn.is_finished());
}

#[test]
fn head_requests_send_headers_only() {
    let mut c = Client::new();
    let out = c.pump(
        format!("HEAD /file/etc/hosts HTTP/1.1\r\nHost: x\r\n{}\r\n", auth()).as_bytes(),
        1000,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Content-Length: 20\r\n"));
    assert!(text.ends_with("\r\n\r\n"), "no body: {text:?}");
    assert_eq!(c.fake().open_handles, 0, "stream released");
    // HEAD keeps the connection usable.
    assert_eq!(c.get("/os/name").status, 200);
}

#[test]
fn blank_lines_before_a_request_are_ignored_and_eof_ends_cleanly() {
    let mut c = Client::new();
    let mut input = b"\r\n\r\n".to_vec();
    input.extend(request("GET", "/health", None, None));
    let r = c.raw(&input);
    assert_eq!(r[0].status, 200);
    // Half a request then EOF: nothing answered, connection done.
    c.pump(b"GET /os HT", 100);
    c.conn.peer_closed(&mut c.api);
    assert!(c.conn.is_finished());
}

#[test]
fn output_backpressure_holds_pipelined_requests() {
    // Many pipelined downloads of a big file with a peer that never reads:
    // the connection must stop taking input rather than buffer every
    // response.
    let mut fake = fake::Fake::new();
    fake.files.insert(
        "/big".into(),
        fake::Node::File(alloc::vec![7u8; 1024 * 1024]),
    );
    let mut c = Client::with(fake, Limits::default());
    let mut input = Vec::new();
    for _ in 0..1000 {
        input.extend(request("GET", "/file/big", None, Some(TOKEN)));
    }
    let taken = c.conn.recv(&mut c.api, &input);
    assert!(
        taken < input.len(),
        "took all {taken} bytes without sending"
    );
    assert!(c.fake().largest_read <= 16 * 1024);
    // Reading everything out then delivers every response in full.
    let mut c = Client::with(
        {
            let mut f = fake::Fake::new();
            f.files
                .insert("/big".into(), fake::Node::File(alloc::vec![7u8; 300_000]));
            f
        },
        Limits::default(),
    );
    let input: Vec<u8> = (0..5)
        .flat_map(|_| request("GET", "/file/big", None, Some(TOKEN)))
        .collect();
    c.send_window = 1500;
    let r = parse_replies(&c.pump(&input, 100));
    assert_eq!(r.len(), 5);
    assert!(r.iter().all(|r| r.status == 200 && r.body.len() == 300_000));
    assert_eq!(c.fake().open_handles, 0);
}

/// A handler that answers every request with a header carrying a line
/// break, as a file name or message might.
struct Splitter;

impl crate::http::Handler for Splitter {
    type Upload = ();
    type Download = ();
    fn start(&mut self, _req: &crate::http::Request) -> crate::http::Start<(), ()> {
        crate::http::Start::Respond(
            crate::http::Response::empty(200).with_header("X-Name", "a\r\nX-Evil: 1".into()),
        )
    }
    fn data(
        &mut self,
        _: &crate::http::Request,
        _: &mut (),
        _: &[u8],
    ) -> Result<(), crate::http::Response<()>> {
        Ok(())
    }
    fn finish(&mut self, _: &crate::http::Request, _: ()) -> crate::http::Response<()> {
        crate::http::Response::empty(200)
    }
    fn abort(&mut self, _: ()) {}
    fn read(&mut self, _: &mut (), _: &mut [u8]) -> Result<usize, crate::http::ReadFailed> {
        Err(crate::http::ReadFailed)
    }
    fn release(&mut self, _: ()) {}
}

#[test]
fn header_values_cannot_split_the_response() {
    let mut conn = crate::http::Connection::new(Limits::default());
    let mut h = Splitter;
    conn.recv(&mut h, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 1024];
    let n = conn.send(&mut h, &mut buf);
    let r = parse_replies(&buf[..n]);
    assert_eq!(r[0].header("X-Name"), Some("aX-Evil: 1"));
    assert!(r[0].header("X-Evil").is_none());
}
