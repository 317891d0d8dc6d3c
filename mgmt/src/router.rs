//! The route table: every method and path template the API answers, in
//! one list that the dispatcher, the 405 `Allow` header and the OpenAPI
//! consistency test all read, so they cannot drift apart.

use alloc::string::String;
use alloc::vec::Vec;

use percent_encoding::percent_decode_str;

use crate::http::Method;

/// What a route does; the dispatcher matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // The names say it; the table below gives paths.
pub enum Endpoint {
    Health,
    OpenApi,
    Os,
    OsName,
    OsVersion,
    OsUptime,
    OsDate,
    OsMemory,
    OsCmdline,
    OsSetCmdline,
    OsHostname,
    OsSetHostname,
    OsDmesg,
    OsThreads,
    OsPowerOff,
    OsReboot,
    EnvList,
    EnvGet,
    EnvSet,
    EnvDelete,
    FileGet,
    FilePut,
    FilePost,
    FileDelete,
    FsDf,
    AppList,
    AppStart,
    AppGet,
    AppStop,
    AppStdout,
    AppStderr,
    Network,
    NetInterfaces,
    NetRoutes,
    NetSockets,
    Hardware,
    Metrics,
}

/// One route: a method and a path template. `{name}` matches one path
/// segment, except `{path}`, which takes the rest of the path (slashes
/// included) so `/file/{path}` reaches any file.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Method.
    pub method: Method,
    /// Template in OpenAPI syntax.
    pub path: &'static str,
    /// Handler.
    pub endpoint: Endpoint,
}

const fn r(method: Method, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

use Endpoint as E;
use Method::{Delete, Get, Post, Put};

/// Every route. HEAD is answered for every GET route by the connection.
pub const ROUTES: &[Route] = &[
    r(Get, "/health", E::Health),
    r(Get, "/openapi.json", E::OpenApi),
    r(Get, "/os", E::Os),
    r(Get, "/os/name", E::OsName),
    r(Get, "/os/version", E::OsVersion),
    r(Get, "/os/uptime", E::OsUptime),
    r(Get, "/os/date", E::OsDate),
    r(Get, "/os/memory", E::OsMemory),
    r(Get, "/os/cmdline", E::OsCmdline),
    r(Put, "/os/cmdline", E::OsSetCmdline),
    r(Get, "/os/hostname", E::OsHostname),
    r(Put, "/os/hostname", E::OsSetHostname),
    r(Get, "/os/dmesg", E::OsDmesg),
    r(Get, "/os/threads", E::OsThreads),
    r(Post, "/os/poweroff", E::OsPowerOff),
    r(Post, "/os/reboot", E::OsReboot),
    r(Get, "/env", E::EnvList),
    r(Get, "/env/{name}", E::EnvGet),
    r(Put, "/env/{name}", E::EnvSet),
    r(Delete, "/env/{name}", E::EnvDelete),
    r(Get, "/file/{path}", E::FileGet),
    r(Put, "/file/{path}", E::FilePut),
    r(Post, "/file/{path}", E::FilePost),
    r(Delete, "/file/{path}", E::FileDelete),
    r(Get, "/fs/df", E::FsDf),
    r(Get, "/app", E::AppList),
    r(Post, "/app", E::AppStart),
    r(Get, "/app/{id}", E::AppGet),
    r(Post, "/app/{id}/stop", E::AppStop),
    r(Get, "/app/{id}/stdout", E::AppStdout),
    r(Get, "/app/{id}/stderr", E::AppStderr),
    r(Get, "/network", E::Network),
    r(Get, "/network/interfaces", E::NetInterfaces),
    r(Get, "/network/routes", E::NetRoutes),
    r(Get, "/network/sockets", E::NetSockets),
    r(Get, "/hardware", E::Hardware),
    r(Get, "/metrics", E::Metrics),
];

/// Result of routing a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// A route and its decoded parameters, in template order.
    Found(Endpoint, Vec<String>),
    /// The path exists but not with this method; the methods it has.
    MethodNotAllowed(Vec<Method>),
    /// No such path.
    NotFound,
    /// The path could not be decoded (bad percent-encoding, not UTF-8,
    /// NUL).
    BadPath,
}

/// Percent-decode one piece of a URL; `None` if it is not UTF-8 or holds
/// a NUL (which no kernel path or name may contain).
pub fn decode(raw: &str) -> Option<String> {
    let text = percent_decode_str(raw).decode_utf8().ok()?;
    (!text.contains('\0')).then(|| text.into_owned())
}

/// Match `path` (the target without its query, still encoded) against a
/// template; `Some(params)` on a match.
fn matches(template: &str, path: &str) -> Option<Option<Vec<String>>> {
    let mut params = Vec::new();
    let mut rest = path.strip_prefix('/')?;
    let mut parts = template.strip_prefix('/')?.split('/').peekable();
    while let Some(part) = parts.next() {
        if part == "{path}" && parts.peek().is_none() {
            // Whole remaining path; segments are decoded one by one so an
            // encoded slash stays a literal character of a name.
            let mut decoded = String::from("/");
            for (i, seg) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
                if i > 0 {
                    decoded.push('/');
                }
                match decode(seg) {
                    Some(s) => decoded.push_str(&s),
                    None => return Some(None),
                }
            }
            params.push(decoded);
            return Some(Some(params));
        }
        let (seg, tail) = match rest.split_once('/') {
            Some((seg, tail)) => (seg, Some(tail)),
            None => (rest, None),
        };
        if part.starts_with('{') {
            if seg.is_empty() {
                return None;
            }
            match decode(seg) {
                Some(s) => params.push(s),
                None => return Some(None),
            }
        } else if part != seg {
            return None;
        }
        match (tail, parts.peek()) {
            (Some(t), Some(_)) => rest = t,
            (None, None) => return Some(Some(params)),
            _ => return None,
        }
    }
    None
}

/// Route a request. HEAD is routed as GET.
pub fn route(method: Method, path: &str) -> Match {
    let method = if method == Method::Head {
        Method::Get
    } else {
        method
    };
    let mut allowed = Vec::new();
    let mut bad = false;
    for route in ROUTES {
        match matches(route.path, path) {
            Some(Some(params)) if route.method == method => {
                return Match::Found(route.endpoint, params);
            }
            Some(Some(_)) => allowed.push(route.method),
            Some(None) => bad = true,
            None => {}
        }
    }
    if bad {
        Match::BadPath
    } else if allowed.is_empty() {
        Match::NotFound
    } else {
        Match::MethodNotAllowed(allowed)
    }
}

/// Split `a=1&b=x%20y` into decoded pairs (`+` is a space, as forms send
/// it). `None` if any piece does not decode.
pub fn parse_query(query: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = decode(&k.replace('+', " "))?;
        let v = decode(&v.replace('+', " "))?;
        pairs.push((k, v));
    }
    Some(pairs)
}
