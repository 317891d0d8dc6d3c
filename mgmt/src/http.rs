//! An incremental HTTP/1.1 server connection: bytes from the peer go in,
//! bytes for the peer come out, and a [`Handler`] sees parsed requests,
//! their bodies piece by piece, and produces streamed responses.
//!
//! The connection owns no socket, so the same code runs over the kernel's
//! TCP sockets and in host tests. Its shape matches a poll-style stack:
//! [`Connection::recv`] takes what arrived and says how much it consumed
//! (the rest stays in the socket's receive buffer: backpressure), and
//! [`Connection::send`] fills the socket's free send space. Memory per
//! connection stays bounded by the head limit plus one body piece plus one
//! output window, whatever the peer sends: an upload is handed on as it
//! arrives and a download is read from its source only when there is room.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Size limits, all enforced before anything is buffered past them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line (method, target, version); longer gets 414.
    pub max_request_line: usize,
    /// Whole head (request line and headers); longer gets 431.
    pub max_head: usize,
    /// Number of header fields; more gets 431.
    pub max_headers: usize,
    /// Body bytes read and thrown away after an early response (e.g. 401
    /// to an upload) to keep the connection; past it the connection closes.
    pub max_discard: u64,
    /// Bytes of undelivered output before the connection stops reading
    /// further pipelined requests.
    pub output_window: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 64,
            max_discard: 1024 * 1024,
            output_window: 64 * 1024,
        }
    }
}

/// Request methods. Every other method token is `Other`: no route has it,
/// so it gets 405 with `Allow` on an existing path (RFC 9110 §15.5.6
/// allows 405 for any method a resource does not support) rather than a
/// 5xx, which clients and fuzzers read as a server fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD (answered as GET without the body, by the connection).
    Head,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// Any other method (OPTIONS, PATCH, TRACE, extension methods); never
    /// routed.
    Other,
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }

    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            // Never sent: only routed methods are named in responses.
            Method::Other => "OTHER",
        }
    }
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No Content-Length and no Transfer-Encoding: no body.
    None,
    /// Content-Length.
    Length(u64),
    /// Transfer-Encoding: chunked (length unknown up front).
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Request target as sent (origin form: path and query, still
    /// percent-encoded).
    pub target: String,
    /// Header fields in order; names lower-cased.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body framing.
    pub body: BodyKind,
}

impl Request {
    /// First value of header `name` (lower-case), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| core::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

/// A response body.
pub enum Body<D> {
    /// Nothing (Content-Length: 0, or none at all for 204).
    Empty,
    /// Bytes in memory (JSON, short texts).
    Bytes(Vec<u8>),
    /// `len` bytes read on demand from `source` through
    /// [`Handler::read`].
    Stream {
        /// Exact length, sent as Content-Length.
        len: u64,
        /// Where the bytes come from.
        source: D,
    },
}

/// A response.
pub struct Response<D> {
    /// Status code.
    pub status: u16,
    /// Extra header fields (Content-Length and Connection are added by the
    /// connection).
    pub headers: Vec<(&'static str, String)>,
    /// Body.
    pub body: Body<D>,
}

impl<D> Response<D> {
    /// A response with an in-memory body and its content type.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Response {
            status,
            headers: alloc::vec![("Content-Type", String::from(content_type))],
            body: Body::Bytes(body),
        }
    }

    /// A response with no body.
    pub fn empty(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Add a header field.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What the handler does with a request once it has seen the head.
pub enum Start<U, D> {
    /// Answer now; any body the request carries is discarded.
    Respond(Response<D>),
    /// Take the body: pieces go to [`Handler::data`] with this state, then
    /// [`Handler::finish`] answers.
    Accept(U),
}

/// A streamed body's source failed; the connection is cut because the
/// promised length can no longer be met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadFailed;

/// The application behind a connection.
pub trait Handler {
    /// Per-request state while the body arrives.
    type Upload;
    /// A response body produced on demand.
    type Download;
    /// The head is complete.
    fn start(&mut self, req: &Request) -> Start<Self::Upload, Self::Download>;
    /// The next piece of the body (already de-chunked). An `Err` answers
    /// at once and closes the connection, since the rest of the body cannot
    /// be trusted to be read.
    fn data(
        &mut self,
        req: &Request,
        upload: &mut Self::Upload,
        piece: &[u8],
    ) -> Result<(), Response<Self::Download>>;
    /// The body is complete.
    fn finish(&mut self, req: &Request, upload: Self::Upload) -> Response<Self::Download>;
    /// The body will never complete (bad framing, peer gone).
    fn abort(&mut self, upload: Self::Upload);
    /// Fill `buf` with the next bytes of a streamed body; `Ok(0)` or `Err`
    /// before the promised length ends the connection (the length was
    /// already sent, so a short body cannot be hidden from the client).
    fn read(&mut self, source: &mut Self::Download, buf: &mut [u8]) -> Result<usize, ReadFailed>;
    /// A streamed body is done or abandoned.
    fn release(&mut self, source: Self::Download);
}

/// Reason phrase for the status codes the server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// A bare error response the connection itself produces (bad framing,
/// limits), as a small JSON object like the API's own errors.
pub fn error_response<D>(status: u16, message: &str) -> Response<D> {
    let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
        .unwrap_or_else(|_| Vec::from(&b"{}"[..]));
    Response::bytes(status, "application/json", body)
}

/// Chunked-body decoder position.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; counts
    /// trailer bytes against the head limit.
    Trailer(usize),
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
}

/// Why a body stops before its end.
enum Stop<D> {
    /// The handler refused a piece (too large, disk full): its answer.
    Refused(Response<D>),
    /// The framing is broken: answer with this status.
    Malformed(u16, &'static str),
    /// A body being thrown away ran past the discard budget.
    TooLongToDiscard,
}

/// Hand a body piece to the upload, or count it against the discard
/// budget when the request was answered early.
fn deliver<H: Handler>(
    handler: &mut H,
    req: &Request,
    upload: &mut Option<H::Upload>,
    budget: &mut u64,
    piece: &[u8],
) -> Result<(), Stop<H::Download>> {
    match upload {
        Some(u) => handler.data(req, u, piece).map_err(Stop::Refused),
        None => {
            *budget = budget
                .checked_sub(piece.len() as u64)
                .ok_or(Stop::TooLongToDiscard)?;
            Ok(())
        }
    }
}

enum State<H: Handler> {
    /// Waiting for (more of) a request head.
    Head,
    /// Reading a body; `upload` is `None` when it is being discarded after
    /// an early response (`budget` bytes may still be thrown away).
    Body {
        req: Request,
        upload: Option<H::Upload>,
        framing: Framing,
        budget: u64,
    },
    /// Writing a streamed response body; `remaining` bytes still to read.
    Stream { source: H::Download, remaining: u64 },
    /// No more requests on this connection; output drains, then the
    /// transport closes.
    Closing,
}

/// One HTTP/1.1 connection.
pub struct Connection<H: Handler> {
    limits: Limits,
    input: Vec<u8>,
    /// How much of `input` was already searched for the end of the head.
    scanned: usize,
    output: Vec<u8>,
    sent: usize,
    state: State<H>,
    /// Close once the current response is out (Connection: close, HTTP/1.0,
    /// or an error that leaves the stream unsynchronised).
    close_after: bool,
    /// The current request was HEAD: the body is not sent.
    head_only: bool,
    /// The current request is HTTP/1.0 with keep-alive, which the answer
    /// must confirm or the client assumes the connection closes.
    confirm_keep_alive: bool,
    peer_done: bool,
}

/// What the head parser found.
enum Parsed {
    Incomplete,
    /// A request, the bytes its head took, its HTTP minor version, whether
    /// it keeps the connection alive and whether it expects 100-continue.
    Request(Request, usize, u8, bool, bool),
    /// An error to answer with, after which the connection closes.
    Error(u16, &'static str),
}

impl<H: Handler> Connection<H> {
    /// A fresh connection.
    pub fn new(limits: Limits) -> Self {
        Connection {
            limits,
            input: Vec::new(),
            scanned: 0,
            output: Vec::new(),
            sent: 0,
            state: State::Head,
            close_after: false,
            head_only: false,
            confirm_keep_alive: false,
            peer_done: false,
        }
    }

    /// Bytes received from the peer. Returns how many were taken; call
    /// again with the rest after [`Connection::send`] made room.
    pub fn recv(&mut self, handler: &mut H, data: &[u8]) -> usize {
        let mut taken = 0;
        loop {
            if matches!(self.state, State::Closing) {
                // Nothing more will be answered: swallow what comes so the
                // peer is not stalled while the output drains.
                return data.len();
            }
            let room = self.input_capacity().saturating_sub(self.input.len());
            let n = room.min(data.len() - taken);
            if n == 0 {
                return taken;
            }
            self.input.extend_from_slice(&data[taken..taken + n]);
            taken += n;
            let before = self.input.len();
            self.progress(handler);
            if taken == data.len() || (self.input.len() == before && !self.can_take_more()) {
                return taken;
            }
        }
    }

    /// The peer will send nothing more (FIN). Pending responses still go
    /// out; an unfinished body is abandoned.
    pub fn peer_closed(&mut self, handler: &mut H) {
        self.peer_done = true;
        self.progress(handler);
    }

    /// Fill `out` with bytes for the peer; returns how many.
    pub fn send(&mut self, handler: &mut H, out: &mut [u8]) -> usize {
        let mut written = 0;
        while written < out.len() {
            if self.sent == self.output.len() {
                self.output.clear();
                // A large in-memory body (a log tail) must not pin its
                // memory for the rest of a long keep-alive connection.
                self.output.shrink_to(self.limits.output_window);
                self.sent = 0;
                if !self.refill(handler) {
                    break;
                }
                continue;
            }
            let n = (self.output.len() - self.sent).min(out.len() - written);
            out[written..written + n].copy_from_slice(&self.output[self.sent..self.sent + n]);
            self.sent += n;
            written += n;
        }
        written
    }

    /// Whether there is output waiting (or a stream to produce).
    pub fn has_output(&self) -> bool {
        self.sent < self.output.len() || matches!(self.state, State::Stream { .. })
    }

    /// The connection is finished: everything was sent and no further
    /// request will be answered. The transport closes the socket.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closing) && self.sent == self.output.len()
    }

    /// Bytes held right now: unparsed input and unsent output. Both stay
    /// bounded by the limits whatever the peer does.
    pub fn buffered(&self) -> (usize, usize) {
        (self.input.len(), self.output.len() - self.sent)
    }

    /// The transport lost the connection: give back any upload or
    /// download state.
    pub fn abort(&mut self, handler: &mut H) {
        match core::mem::replace(&mut self.state, State::Closing) {
            State::Body {
                upload: Some(u), ..
            } => handler.abort(u),
            State::Stream { source, .. } => handler.release(source),
            _ => {}
        }
        self.output.clear();
        self.sent = 0;
    }

    fn input_capacity(&self) -> usize {
        // A head may use the whole limit; a body piece is handed on as soon
        // as it is here, so the same room serves both.
        self.limits.max_head + 1
    }

    fn can_take_more(&self) -> bool {
        self.input.len() < self.input_capacity()
    }

    fn pending_output(&self) -> usize {
        self.output.len() - self.sent
    }

    /// Produce more output from a streamed body, or parse the next
    /// pipelined request. Returns whether output grew.
    fn refill(&mut self, handler: &mut H) -> bool {
        if let State::Stream { source, remaining } = &mut self.state {
            let want = (*remaining).min(16 * 1024) as usize;
            self.output.resize(want, 0);
            let got = match handler.read(source, &mut self.output[..want]) {
                Ok(n) if n > 0 => n.min(want),
                _ => {
                    // The promised length cannot be met: the only honest
                    // signal left is to cut the connection.
                    self.output.clear();
                    self.close_after = true;
                    self.end_response(handler);
                    return false;
                }
            };
            self.output.truncate(got);
            *remaining -= got as u64;
            if *remaining == 0 {
                self.end_response(handler);
            }
            return true;
        }
        self.progress(handler);
        self.sent < self.output.len()
    }

    /// A response (and its body) is fully queued: release the stream and
    /// go on with the next request, or close.
    fn end_response(&mut self, handler: &mut H) {
        let next = if self.close_after {
            State::Closing
        } else {
            State::Head
        };
        if let State::Stream { source, .. } = core::mem::replace(&mut self.state, next) {
            handler.release(source);
        }
        if !self.close_after {
            self.progress(handler);
        }
    }

    /// Advance on buffered input as far as possible.
    fn progress(&mut self, handler: &mut H) {
        loop {
            match &mut self.state {
                State::Closing | State::Stream { .. } => return,
                State::Head => {
                    if self.pending_output() >= self.limits.output_window {
                        return;
                    }
                    match self.parse_head() {
                        Parsed::Incomplete => {
                            if self.peer_done {
                                self.state = State::Closing;
                            }
                            return;
                        }
                        Parsed::Error(status, message) => {
                            self.close_after = true;
                            self.head_only = false;
                            self.queue(handler, error_response(status, message));
                            self.input.clear();
                            return;
                        }
                        Parsed::Request(req, used, minor, keep_alive, expect_continue) => {
                            self.input.drain(..used);
                            self.scanned = 0;
                            self.close_after = !keep_alive;
                            self.confirm_keep_alive = minor == 0 && keep_alive;
                            self.head_only = req.method == Method::Head;
                            self.begin(handler, req, expect_continue);
                        }
                    }
                }
                State::Body { .. } => {
                    if !self.body_step(handler) {
                        return;
                    }
                }
            }
        }
    }

    /// Hand a parsed request to the handler.
    fn begin(&mut self, handler: &mut H, req: Request, expect_continue: bool) {
        let framing = match req.body {
            BodyKind::None => None,
            BodyKind::Length(n) => Some(Framing::Length(n)),
            BodyKind::Chunked => Some(Framing::Chunked(Chunk::Size)),
        };
        match handler.start(&req) {
            Start::Respond(resp) => {
                if let Some(framing) = framing {
                    if expect_continue {
                        // The client waits before sending the body; it may
                        // or may not send it now, so the stream position is
                        // unknown.
                        self.close_after = true;
                    } else {
                        self.state = State::Body {
                            req,
                            upload: None,
                            framing,
                            budget: self.limits.max_discard,
                        };
                    }
                }
                self.queue(handler, resp);
            }
            Start::Accept(upload) => match framing {
                None => {
                    let resp = handler.finish(&req, upload);
                    self.queue(handler, resp);
                }
                Some(framing) => {
                    if expect_continue {
                        self.output
                            .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    self.state = State::Body {
                        req,
                        upload: Some(upload),
                        framing,
                        budget: 0,
                    };
                }
            },
        }
    }

    /// Consume body bytes from `input`. Returns whether to keep going
    /// (a state change happened and more input may be usable).
    fn body_step(&mut self, handler: &mut H) -> bool {
        let State::Body {
            req,
            upload,
            framing,
            budget,
        } = &mut self.state
        else {
            return false;
        };
        let discarding = upload.is_none();
        let mut done = false;
        let mut used = 0;
        let mut stop = None;
        match framing {
            Framing::Length(left) => {
                let n = (*left).min(self.input.len() as u64) as usize;
                if n > 0 {
                    used = n;
                    *left -= n as u64;
                    stop = deliver(handler, req, upload, budget, &self.input[..n]).err();
                }
                done = *left == 0;
            }
            Framing::Chunked(chunk) => match *chunk {
                Chunk::Size => match httparse::parse_chunk_size(&self.input) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        used = n;
                        *chunk = if size == 0 {
                            Chunk::Trailer(0)
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.input.len() > 1024 {
                            stop = Some(Stop::Malformed(400, "chunk size line too long"));
                        }
                    }
                    Err(_) => stop = Some(Stop::Malformed(400, "malformed chunk size")),
                },
                Chunk::Data(left) => {
                    let n = left.min(self.input.len() as u64) as usize;
                    if n > 0 {
                        used = n;
                        *chunk = if left == n as u64 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - n as u64)
                        };
                        stop = deliver(handler, req, upload, budget, &self.input[..n]).err();
                    }
                }
                Chunk::DataEnd => {
                    if self.input.starts_with(b"\r\n") {
                        used = 2;
                        *chunk = Chunk::Size;
                    } else if self.input.starts_with(b"\n") {
                        used = 1;
                        *chunk = Chunk::Size;
                    } else if !self.input.is_empty() && self.input != b"\r" {
                        stop = Some(Stop::Malformed(400, "chunk data longer than its size"));
                    }
                }
                Chunk::Trailer(seen) => match self.input.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        used = end + 1;
                        let line = &self.input[..end];
                        if line.is_empty() || line == b"\r" {
                            done = true;
                        } else if seen + used > self.limits.max_head {
                            stop = Some(Stop::Malformed(431, "trailer too large"));
                        } else {
                            *chunk = Chunk::Trailer(seen + used);
                        }
                    }
                    None => {
                        if seen + self.input.len() > self.limits.max_head {
                            stop = Some(Stop::Malformed(431, "trailer too large"));
                        }
                    }
                },
            },
        }
        if let Some(stop) = stop {
            // The rest of the body will not be read, so the stream cannot
            // carry another request: answer (unless that happened already)
            // and close.
            if let State::Body {
                upload: Some(u), ..
            } = core::mem::replace(&mut self.state, State::Head)
            {
                handler.abort(u);
            }
            self.input.clear();
            self.close_after = true;
            match stop {
                Stop::Refused(resp) => self.queue(handler, resp),
                Stop::Malformed(..) | Stop::TooLongToDiscard if discarding => {
                    self.state = State::Closing;
                }
                Stop::Malformed(status, message) => {
                    self.head_only = false;
                    self.queue(handler, error_response(status, message));
                }
                Stop::TooLongToDiscard => self.state = State::Closing,
            }
            return false;
        }
        self.input.drain(..used);
        if done {
            let State::Body { req, upload, .. } = core::mem::replace(&mut self.state, State::Head)
            else {
                return false;
            };
            if let Some(u) = upload {
                let resp = handler.finish(&req, u);
                self.queue(handler, resp);
            } else if self.close_after {
                self.state = State::Closing;
            }
            return true;
        }
        if used == 0 {
            if self.peer_done
                && let State::Body {
                    upload: Some(u), ..
                } = core::mem::replace(&mut self.state, State::Closing)
            {
                handler.abort(u);
            }
            return false;
        }
        true
    }

    /// Serialise a response head (and in-memory body) into the output, and
    /// set the state for what follows it.
    fn queue(&mut self, handler: &mut H, resp: Response<H::Download>) {
        let Response {
            status,
            headers,
            body,
        } = resp;
        let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
        for (name, value) in &headers {
            // Header values come from the API's own formatting, but a file
            // name or an error text could carry a line break: never let one
            // split the response.
            let clean: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            head.push_str(name);
            head.push_str(": ");
            head.push_str(&clean);
            head.push_str("\r\n");
        }
        let len = match &body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { len, .. } => *len,
        };
        if status != 204 && status >= 200 {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        if self.close_after {
            head.push_str("Connection: close\r\n");
        } else if self.confirm_keep_alive {
            head.push_str("Connection: keep-alive\r\n");
        }
        head.push_str("\r\n");
        self.output.extend_from_slice(head.as_bytes());
        let body_state = match body {
            Body::Empty => None,
            Body::Bytes(b) => {
                if !self.head_only && status != 204 {
                    self.output.extend_from_slice(&b);
                }
                None
            }
            Body::Stream { len, source } => {
                if self.head_only || len == 0 || status == 204 {
                    handler.release(source);
                    None
                } else {
                    Some((source, len))
                }
            }
        };
        match (body_state, &self.state) {
            (Some((source, remaining)), _) => {
                if matches!(self.state, State::Body { .. }) {
                    // Early answer while a body is still being discarded:
                    // streams only come from handlers that took the body,
                    // so this is never reached with a stream; be safe.
                    handler.release(source);
                    self.close_after = true;
                } else {
                    self.state = State::Stream { source, remaining };
                }
            }
            (None, State::Body { .. }) => {}
            (None, _) => {
                if self.close_after {
                    self.state = State::Closing;
                }
            }
        }
    }

    /// Try to parse a request head from `input`.
    fn parse_head(&mut self) -> Parsed {
        // Empty lines before a request are allowed (RFC 9112 §2.2).
        let blank = self
            .input
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank > 0 {
            self.input.drain(..blank);
            self.scanned = 0;
        }
        if self.input.is_empty() {
            return Parsed::Incomplete;
        }
        let line_end = self.input.iter().position(|&b| b == b'\n');
        match line_end {
            None if self.input.len() > self.limits.max_request_line => {
                return Parsed::Error(414, "request line too long");
            }
            Some(end) if end > self.limits.max_request_line => {
                return Parsed::Error(414, "request line too long");
            }
            _ => {}
        }
        // Only parse once the blank line ending the head is here, so a head
        // arriving a byte at a time costs linear, not quadratic, work.
        let from = self.scanned.saturating_sub(3);
        let end = find_head_end(&self.input[from..]).map(|e| e + from);
        self.scanned = self.input.len();
        let Some(end) = end else {
            if self.input.len() > self.limits.max_head {
                return Parsed::Error(431, "request head too large");
            }
            return Parsed::Incomplete;
        };
        if end > self.limits.max_head {
            return Parsed::Error(431, "request head too large");
        }
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Request::new(&mut storage);
        let used = match parsed.parse(&self.input[..end]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Error(400, "malformed request head"),
            Err(httparse::Error::TooManyHeaders) => {
                return Parsed::Error(431, "too many header fields");
            }
            Err(httparse::Error::Version) => {
                return Parsed::Error(505, "only HTTP/1.0 and HTTP/1.1 are supported");
            }
            Err(_) => return Parsed::Error(400, "malformed request head"),
        };
        let (Some(method), Some(target), Some(version)) =
            (parsed.method, parsed.path, parsed.version)
        else {
            return Parsed::Error(400, "malformed request line");
        };
        let method = Method::parse(method);
        if !target.starts_with('/') {
            return Parsed::Error(400, "request target must be a path");
        }
        let headers: Vec<(String, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), Vec::from(h.value)))
            .collect();
        let mut req = Request {
            method,
            target: String::from(target),
            headers,
            body: BodyKind::None,
        };
        if version == 1 && !req.headers.iter().any(|(n, _)| n == "host") {
            return Parsed::Error(400, "HTTP/1.1 request without Host");
        }
        match framing(&req) {
            Ok(kind) => req.body = kind,
            Err((status, message)) => return Parsed::Error(status, message),
        }
        let connection = all_values(&req, "connection");
        let has = |token: &str| connection.iter().any(|t| t.eq_ignore_ascii_case(token));
        let keep_alive = if version == 1 {
            !has("close")
        } else {
            has("keep-alive") && !has("close")
        };
        let expect_continue = version == 1
            && req
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        Parsed::Request(req, used, version, keep_alive, expect_continue)
    }
}

/// Offset just past the blank line ending a head (CRLFCRLF or bare LFLF).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// Comma-separated values of every field named `name`, trimmed.
fn all_values<'a>(req: &'a Request, name: &str) -> Vec<&'a str> {
    req.headers
        .iter()
        .filter(|(n, _)| n == name)
        .filter_map(|(_, v)| core::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Body framing from Content-Length and Transfer-Encoding (RFC 9112 §6).
fn framing(req: &Request) -> Result<BodyKind, (u16, &'static str)> {
    let has_te = req.headers.iter().any(|(n, _)| n == "transfer-encoding");
    let has_cl = req.headers.iter().any(|(n, _)| n == "content-length");
    if has_te {
        if has_cl {
            // Both at once is the classic request-smuggling shape.
            return Err((400, "both Transfer-Encoding and Content-Length"));
        }
        let codings = all_values(req, "transfer-encoding");
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(BodyKind::Chunked),
            [] => Err((400, "empty Transfer-Encoding")),
            _ => Err((501, "only the chunked transfer coding is supported")),
        };
    }
    if !has_cl {
        return Ok(BodyKind::None);
    }
    let mut length = None;
    for (name, value) in &req.headers {
        if name != "content-length" {
            continue;
        }
        let text = core::str::from_utf8(value).map_err(|_| (400, "bad Content-Length"))?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err((400, "bad Content-Length"));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| (413, "Content-Length too large"))?;
            if length.is_some_and(|l| l != n) {
                return Err((400, "conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(BodyKind::None, BodyKind::Length))
}
