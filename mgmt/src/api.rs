//! The REST API: authentication, routing and every endpoint, as an HTTP
//! [`Handler`] over a [`System`]. File uploads go to the system piece by
//! piece as they arrive and downloads are read on demand, so a file's size
//! never decides how much memory a transfer takes.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::auth::Token;
use crate::format;
use crate::http::{Body, BodyKind, Handler, Method, ReadFailed, Request, Response, Start};
use crate::router::{self, Endpoint, Match};
use crate::system::{AppSpec, FileKind, LogStream, OpenMode, PowerAction, SysError, System};

/// The OpenAPI 3 description of this API, served at /openapi.json.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bearer token clients must present.
    pub token: Token,
    /// Largest JSON request body; larger gets 413.
    pub max_json_body: usize,
    /// Largest file upload; larger gets 413 (the filesystem may say 507
    /// sooner).
    pub max_upload: u64,
    /// Log tail returned by /app/{id}/stdout when `tail` is not given.
    pub log_tail_default: usize,
    /// Largest `tail` honoured.
    pub log_tail_max: usize,
}

impl Config {
    /// Defaults around `token`.
    pub fn new(token: Token) -> Self {
        Config {
            token,
            max_json_body: 64 * 1024,
            max_upload: 64 * 1024 * 1024 * 1024,
            log_tail_default: 64 * 1024,
            log_tail_max: 1024 * 1024,
        }
    }
}

/// Signal sent by /app/{id}/stop unless `signal` says otherwise (SIGTERM).
pub const DEFAULT_STOP_SIGNAL: i32 = 15;

/// Per-request state while a body arrives.
pub enum Upload<F> {
    /// A small body collected for a JSON endpoint.
    Buffer {
        /// Where it goes.
        endpoint: Endpoint,
        /// Path parameters.
        params: Vec<String>,
        /// Query pairs.
        query: Vec<(String, String)>,
        /// The body so far.
        body: Vec<u8>,
    },
    /// A file being written.
    File {
        /// The open file.
        file: F,
        /// Its path, to report and to remove on abort.
        path: String,
        /// Bytes written so far.
        written: u64,
        /// Whether the file did not exist before.
        created: bool,
    },
}

/// A file being read for a download.
pub struct Download<F> {
    file: F,
    offset: u64,
}

type Resp<F> = Response<Download<F>>;

/// An error answer: status and a message for the client.
struct ApiError(u16, String);

impl From<SysError> for ApiError {
    fn from(e: SysError) -> Self {
        ApiError(e.status(), e.to_string())
    }
}

fn err(status: u16, message: &str) -> ApiError {
    ApiError(status, message.to_owned())
}

type ApiResult<F> = Result<Resp<F>, ApiError>;

fn json<F, T: Serialize + ?Sized>(status: u16, value: &T) -> Resp<F> {
    match serde_json::to_vec(value) {
        Ok(body) => Response::bytes(status, "application/json", body),
        Err(_) => error(500, "response could not be encoded"),
    }
}

fn error<F>(status: u16, message: &str) -> Resp<F> {
    crate::http::error_response(status, message)
}

fn text<F>(body: Vec<u8>) -> Resp<F> {
    Response::bytes(200, "text/plain; charset=utf-8", body)
}

/// The management API over a system.
pub struct Api<S: System> {
    sys: S,
    config: Config,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartApp {
    path: String,
    #[serde(default)]
    argv: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct OsSummary {
    name: String,
    version: String,
    build: String,
    arch: String,
    hostname: String,
    uptime_ns: u64,
    date: Option<String>,
    memory: crate::system::MemoryInfo,
    cmdline: String,
}

impl<S: System> Api<S> {
    /// An API serving `sys` with `config`.
    pub fn new(sys: S, config: Config) -> Self {
        Api { sys, config }
    }

    /// The system behind the API (tests inspect their fake through it).
    pub fn system(&mut self) -> &mut S {
        &mut self.sys
    }

    fn query<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Decide what to do with a routed, authenticated request.
    fn begin(
        &mut self,
        req: &Request,
        endpoint: Endpoint,
        params: Vec<String>,
        query: Vec<(String, String)>,
    ) -> Result<Upload<S::File>, ApiError> {
        let needs_body = matches!(
            endpoint,
            Endpoint::OsSetCmdline
                | Endpoint::OsSetHostname
                | Endpoint::EnvSet
                | Endpoint::AppStart
                | Endpoint::FilePut
        ) || (endpoint == Endpoint::FilePost
            && Self::query(&query, "op") != Some("mkdir"));
        if needs_body && req.body == BodyKind::None {
            return Err(err(
                411,
                "this endpoint needs a body with Content-Length or chunked encoding",
            ));
        }
        let upload_mode = match endpoint {
            Endpoint::FilePut => Some(OpenMode::Replace),
            Endpoint::FilePost if needs_body => Some(OpenMode::CreateNew),
            _ => None,
        };
        if let Some(mode) = upload_mode {
            if let BodyKind::Length(n) = req.body
                && n > self.config.max_upload
            {
                return Err(err(413, "upload larger than the limit"));
            }
            let path = params.into_iter().next().unwrap_or_default();
            if let Some(op) = Self::query(&query, "op") {
                return Err(ApiError(400, format!("unknown op {op:?} for an upload")));
            }
            let created = match self.sys.stat(&path) {
                Ok(st) if st.kind == FileKind::Directory => {
                    return Err(SysError::IsDirectory.into());
                }
                Ok(_) => false,
                Err(SysError::NotFound) => true,
                Err(e) => return Err(e.into()),
            };
            let file = self.sys.open(&path, mode)?;
            return Ok(Upload::File {
                file,
                path,
                written: 0,
                created,
            });
        }
        if let BodyKind::Length(n) = req.body
            && n > self.config.max_json_body as u64
        {
            return Err(err(413, "request body larger than the limit"));
        }
        Ok(Upload::Buffer {
            endpoint,
            params,
            query,
            body: Vec::new(),
        })
    }

    fn string_body(body: &[u8]) -> Result<String, ApiError> {
        serde_json::from_slice::<String>(body)
            .map_err(|e| ApiError(400, format!("body must be a JSON string: {e}")))
    }

    fn app_id(params: &[String]) -> Result<u64, ApiError> {
        params
            .first()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err(400, "app id must be a non-negative integer"))
    }

    fn valid_env_name(name: &str) -> Result<(), ApiError> {
        if name.is_empty() || name.contains('=') {
            return Err(err(400, "variable names are non-empty and have no '='"));
        }
        Ok(())
    }

    /// Run a non-upload endpoint once its (small) body is in.
    fn dispatch(
        &mut self,
        req: &Request,
        endpoint: Endpoint,
        params: &[String],
        query: &[(String, String)],
        body: &[u8],
    ) -> ApiResult<S::File> {
        let param = || params.first().map(String::as_str).unwrap_or("");
        Ok(match endpoint {
            Endpoint::Health => json(200, &serde_json::json!({ "status": "ok" })),
            Endpoint::OpenApi => {
                Response::bytes(200, "application/json", OPENAPI.as_bytes().to_vec())
            }
            Endpoint::Os => {
                let v = self.sys.version();
                json(
                    200,
                    &OsSummary {
                        name: v.name,
                        version: v.version,
                        build: v.build,
                        arch: v.arch,
                        hostname: self.sys.hostname(),
                        uptime_ns: self.sys.uptime_ns(),
                        date: self.sys.wall_clock_ns().map(format::rfc3339),
                        memory: self.sys.memory(),
                        cmdline: self.sys.cmdline(),
                    },
                )
            }
            Endpoint::OsName => json(200, &self.sys.version().name),
            Endpoint::OsVersion => json(200, &self.sys.version()),
            Endpoint::OsUptime => {
                let ns = self.sys.uptime_ns();
                json(
                    200,
                    &serde_json::json!({ "seconds": ns / 1_000_000_000, "ns": ns }),
                )
            }
            Endpoint::OsDate => match self.sys.wall_clock_ns() {
                Some(ns) => json(200, &format::rfc3339(ns)),
                None => return Err(err(501, "no wall clock on this machine")),
            },
            Endpoint::OsMemory => json(200, &self.sys.memory()),
            Endpoint::OsCmdline => json(200, &self.sys.cmdline()),
            Endpoint::OsSetCmdline => {
                let line = Self::string_body(body)?;
                if line.contains('\0') {
                    return Err(err(400, "the command line cannot hold NUL"));
                }
                self.sys.set_cmdline(&line)?;
                Response::empty(204)
            }
            Endpoint::OsHostname => json(200, &self.sys.hostname()),
            Endpoint::OsSetHostname => {
                let name = Self::string_body(body)?;
                // What uname's nodename can hold (64 bytes, no NUL), and
                // what a resolver accepts.
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !ok {
                    return Err(err(400, "host names are 1-64 of [A-Za-z0-9.-]"));
                }
                self.sys.set_hostname(&name)?;
                Response::empty(204)
            }
            Endpoint::OsDmesg => text(self.sys.dmesg().into_bytes()),
            Endpoint::OsThreads => json(
                200,
                &serde_json::json!({
                    "uptime_ns": self.sys.uptime_ns(),
                    "threads": self.sys.threads(),
                }),
            ),
            Endpoint::OsPowerOff | Endpoint::OsReboot => {
                let (action, name) = if endpoint == Endpoint::OsPowerOff {
                    (PowerAction::PowerOff, "poweroff")
                } else {
                    (PowerAction::Reboot, "reboot")
                };
                self.sys.power(action)?;
                json(202, &serde_json::json!({ "action": name }))
            }
            Endpoint::EnvList => {
                let map: BTreeMap<String, String> = self.sys.env_list().into_iter().collect();
                json(200, &map)
            }
            Endpoint::EnvGet => match self.sys.env_get(param()) {
                Some(v) => json(200, &v),
                None => return Err(err(404, "no such variable")),
            },
            Endpoint::EnvSet => {
                Self::valid_env_name(param())?;
                let value = Self::string_body(body)?;
                if value.contains('\0') {
                    return Err(err(400, "values cannot hold NUL"));
                }
                self.sys.env_set(param(), &value)?;
                Response::empty(204)
            }
            Endpoint::EnvDelete => {
                Self::valid_env_name(param())?;
                self.sys.env_remove(param())?;
                Response::empty(204)
            }
            Endpoint::FileGet => return self.file_get(req, param(), query),
            Endpoint::FilePost => {
                // Only `op=mkdir` reaches here; uploads are streamed.
                self.sys.mkdir(param())?;
                json(201, &serde_json::json!({ "path": param() }))
            }
            Endpoint::FileDelete => {
                self.sys.remove(param())?;
                Response::empty(204)
            }
            Endpoint::FilePut => return Err(err(500, "upload not streamed")),
            Endpoint::FsDf => json(200, &self.sys.fs_usage()),
            Endpoint::AppList => json(200, &self.sys.apps()),
            Endpoint::AppStart => {
                let start: StartApp = serde_json::from_slice(body)
                    .map_err(|e| ApiError(400, format!("bad app description: {e}")))?;
                if !start.path.starts_with('/') || start.path.contains('\0') {
                    return Err(err(400, "path must be absolute"));
                }
                for (k, v) in &start.env {
                    Self::valid_env_name(k)?;
                    if v.contains('\0') {
                        return Err(err(400, "values cannot hold NUL"));
                    }
                }
                let argv = start
                    .argv
                    .unwrap_or_else(|| alloc::vec![start.path.clone()]);
                if argv.is_empty() || argv.iter().any(|a| a.contains('\0')) {
                    return Err(err(400, "argv needs at least argv[0] and no NUL"));
                }
                let spec = AppSpec {
                    path: start.path,
                    argv,
                    env: start.env.into_iter().collect(),
                };
                let id = self.sys.app_start(&spec)?;
                json(201, &serde_json::json!({ "id": id }))
                    .with_header("Location", format!("/app/{id}"))
            }
            Endpoint::AppGet => {
                let id = Self::app_id(params)?;
                match self.sys.apps().into_iter().find(|a| a.id == id) {
                    Some(app) => json(200, &app),
                    None => return Err(err(404, "no such app")),
                }
            }
            Endpoint::AppStop => {
                let id = Self::app_id(params)?;
                let signal = match Self::query(query, "signal") {
                    None => DEFAULT_STOP_SIGNAL,
                    Some(s) => match s.parse::<i32>() {
                        Ok(n) if (1..=64).contains(&n) => n,
                        _ => return Err(err(400, "signal must be 1..=64")),
                    },
                };
                self.sys.app_signal(id, signal)?;
                json(202, &serde_json::json!({ "id": id, "signal": signal }))
            }
            Endpoint::AppStdout | Endpoint::AppStderr => {
                let id = Self::app_id(params)?;
                let tail = match Self::query(query, "tail") {
                    None => self.config.log_tail_default,
                    Some(s) => match s.parse::<usize>() {
                        Ok(n) if n <= self.config.log_tail_max => n,
                        _ => {
                            return Err(ApiError(
                                400,
                                format!(
                                    "tail must be a byte count up to {}",
                                    self.config.log_tail_max
                                ),
                            ));
                        }
                    },
                };
                let stream = if endpoint == Endpoint::AppStdout {
                    LogStream::Stdout
                } else {
                    LogStream::Stderr
                };
                let mut log = self.sys.app_log(id, stream, tail)?;
                // A kernel handing back more than asked must not make the
                // response bigger than the client asked for.
                if log.len() > tail {
                    log.drain(..log.len() - tail);
                }
                text(log)
            }
            Endpoint::Network => json(
                200,
                &serde_json::json!({
                    "interfaces": self.sys.interfaces(),
                    "routes": self.sys.routes(),
                    "sockets": self.sys.socket_stats(),
                }),
            ),
            Endpoint::NetInterfaces => json(200, &self.sys.interfaces()),
            Endpoint::NetRoutes => json(200, &self.sys.routes()),
            Endpoint::NetSockets => json(200, &self.sys.socket_stats()),
            Endpoint::Hardware => json(200, &self.sys.hardware()),
            Endpoint::Metrics => {
                // An explicit format wins; otherwise Prometheus text unless
                // the client asks for JSON.
                let as_json = match Self::query(query, "format") {
                    Some("json") => true,
                    Some("prometheus") => false,
                    None => req
                        .header("accept")
                        .is_some_and(|a| a.contains("application/json")),
                    Some(_) => return Err(err(400, "format is json or prometheus")),
                };
                let metrics = self.sys.metrics();
                if as_json {
                    json(200, &metrics)
                } else {
                    let body =
                        format::prometheus(&metrics, self.sys.uptime_ns(), self.sys.memory());
                    Response::bytes(
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        body.into_bytes(),
                    )
                }
            }
        })
    }

    /// GET /file/{path}: content (with Range), listing, or stat.
    fn file_get(
        &mut self,
        req: &Request,
        path: &str,
        query: &[(String, String)],
    ) -> ApiResult<S::File> {
        let op = Self::query(query, "op");
        let stat = self.sys.stat(path)?;
        match op {
            Some("stat") => return Ok(json(200, &stat)),
            Some("list") => return Ok(json(200, &self.sys.list_dir(path)?)),
            None => {}
            Some(_) => return Err(err(400, "op is stat or list")),
        }
        match stat.kind {
            FileKind::Directory => return Ok(json(200, &self.sys.list_dir(path)?)),
            FileKind::File => {}
            _ => return Err(err(409, "not a regular file")),
        }
        let size = stat.size;
        let range = req.header("range").and_then(|r| parse_range(r, size));
        let (status, start, len) = match range {
            None => (200, 0, size),
            Some(Ok((start, end))) => (206, start, end - start + 1),
            Some(Err(())) => {
                return Ok(error(416, "range not satisfiable")
                    .with_header("Content-Range", format!("bytes */{size}")));
            }
        };
        let file = self.sys.open(path, OpenMode::Read)?;
        let mut resp = Response {
            status,
            headers: alloc::vec![
                ("Content-Type", "application/octet-stream".to_string()),
                ("Accept-Ranges", "bytes".to_string()),
            ],
            body: Body::Stream {
                len,
                source: Download {
                    file,
                    offset: start,
                },
            },
        };
        if status == 206 {
            resp.headers.push((
                "Content-Range",
                format!("bytes {start}-{}/{size}", start + len - 1),
            ));
        }
        Ok(resp)
    }
}

/// Parse a `Range` header against a file of `size` bytes (RFC 9110 §14).
/// `None`: no usable single range, so the whole file is sent (a server may
/// ignore what it does not support, e.g. several ranges); `Some(Err)`: a
/// valid range that lies outside the file (416); `Some(Ok((first, last)))`
/// inclusive.
pub fn parse_range(header: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits but too big for u64 is still a valid range that
        // reaches past the end.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let n = number(last)?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        return Some(Ok((size - n.min(size), size - 1)));
    }
    let start = number(first)?;
    let end = if last.is_empty() {
        u64::MAX
    } else {
        number(last)?
    };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Err(()));
    }
    Some(Ok((start, end.min(size - 1))))
}

impl<S: System> Handler for Api<S> {
    type Upload = Upload<S::File>;
    type Download = Download<S::File>;

    fn start(&mut self, req: &Request) -> Start<Self::Upload, Self::Download> {
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (p, q),
            None => (req.target.as_str(), ""),
        };
        let routed = router::route(req.method, path);
        let public = matches!(routed, Match::Found(Endpoint::Health, _));
        let authorized = public
            || self.config.token.accepts(
                req.headers
                    .iter()
                    .find(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.as_slice()),
            );
        // Authentication comes before 404/405, so without the token nothing
        // about the API is revealed.
        if !authorized {
            return Start::Respond(
                error(401, "missing or wrong bearer token")
                    .with_header("WWW-Authenticate", "Bearer realm=\"keel\"".to_string()),
            );
        }
        let (endpoint, params) = match routed {
            Match::Found(e, p) => (e, p),
            Match::NotFound => return Start::Respond(error(404, "no such endpoint")),
            Match::BadPath => {
                return Start::Respond(error(400, "path is not valid percent-encoded UTF-8"));
            }
            Match::MethodNotAllowed(methods) => {
                let mut allow: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                if methods.contains(&Method::Get) {
                    allow.push("HEAD");
                }
                return Start::Respond(
                    error(405, "method not allowed here").with_header("Allow", allow.join(", ")),
                );
            }
        };
        let Some(query) = router::parse_query(query) else {
            return Start::Respond(error(400, "query is not valid percent-encoded UTF-8"));
        };
        match self.begin(req, endpoint, params, query) {
            Ok(upload) => Start::Accept(upload),
            Err(ApiError(status, message)) => Start::Respond(error(status, &message)),
        }
    }

    fn data(
        &mut self,
        _req: &Request,
        upload: &mut Self::Upload,
        piece: &[u8],
    ) -> Result<(), Response<Self::Download>> {
        match upload {
            Upload::Buffer { body, .. } => {
                if body.len() + piece.len() > self.config.max_json_body {
                    return Err(error(413, "request body larger than the limit"));
                }
                body.extend_from_slice(piece);
            }
            Upload::File { file, written, .. } => {
                if *written + piece.len() as u64 > self.config.max_upload {
                    return Err(error(413, "upload larger than the limit"));
                }
                if let Err(e) = self.sys.write_at(file, *written, piece) {
                    return Err(error(e.status(), &e.to_string()));
                }
                *written += piece.len() as u64;
            }
        }
        Ok(())
    }

    fn finish(&mut self, req: &Request, upload: Self::Upload) -> Response<Self::Download> {
        match upload {
            Upload::Buffer {
                endpoint,
                params,
                query,
                body,
            } => match self.dispatch(req, endpoint, &params, &query, &body) {
                Ok(resp) => resp,
                Err(ApiError(status, message)) => error(status, &message),
            },
            Upload::File {
                file,
                path,
                written,
                created,
            } => match self.sys.close(file) {
                Ok(()) => json(
                    if created { 201 } else { 200 },
                    &serde_json::json!({ "path": path, "size": written }),
                ),
                Err(e) => {
                    // Not durable: do not leave a file that looks complete.
                    let _ = self.sys.remove(&path);
                    error(e.status(), &e.to_string())
                }
            },
        }
    }

    fn abort(&mut self, upload: Self::Upload) {
        if let Upload::File { file, path, .. } = upload {
            // A half-written file is worse than none: nobody could tell it
            // is short.
            let _ = self.sys.close(file);
            let _ = self.sys.remove(&path);
        }
    }

    fn read(&mut self, source: &mut Self::Download, buf: &mut [u8]) -> Result<usize, ReadFailed> {
        let n = self
            .sys
            .read_at(&mut source.file, source.offset, buf)
            .map_err(|_| ReadFailed)?;
        source.offset += n as u64;
        Ok(n)
    }

    fn release(&mut self, source: Self::Download) {
        let _ = self.sys.close(source.file);
    }
}
