//! Every endpoint against the fake system: authentication, results, error
//! statuses, streamed transfers, and the OpenAPI document matching the
//! route table both ways.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::api::parse_range;
use crate::router::ROUTES;
use crate::system::{AppState, PowerAction, SysError};

fn concrete(template: &str) -> String {
    template
        .replace("{path}", "etc/hosts")
        .replace("{name}", "PATH")
        .replace("{id}", "1")
}

#[test]
fn every_endpoint_but_health_needs_the_token() {
    for route in ROUTES {
        let target = concrete(route.path);
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let mut c = Client::new();
            let r = c.raw(&request(route.method.as_str(), &target, None, token));
            let expected = if route.path == "/health" { 200 } else { 401 };
            assert_eq!(
                r[0].status,
                expected,
                "{} {target} with {token:?}",
                route.method.as_str()
            );
            if expected == 401 {
                assert_eq!(
                    r[0].header("WWW-Authenticate"),
                    Some("Bearer realm=\"keel\"")
                );
            }
            // Nothing was done on the unauthenticated call.
            assert!(c.fake().power.is_empty());
            assert!(c.fake().file("/etc/hosts").is_some());
        }
    }
    // Unknown paths say 401 too, so routes are not probed without a token.
    let mut c = Client::new();
    assert_eq!(c.raw(&request("GET", "/secret", None, None))[0].status, 401);
}

#[test]
fn unknown_paths_and_wrong_methods() {
    let mut c = Client::new();
    assert_eq!(c.get("/nope").status, 404);
    let r = c.call("DELETE", "/os", None);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    let r = c.call("POST", "/env/X", Some(b"\"1\""));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, PUT, DELETE, HEAD"));
    for method in ["OPTIONS", "PATCH", "TRACE", "QUERY", "get", "FROB"] {
        let r = c.call(method, "/os", None);
        assert_eq!(
            (r.status, r.header("Allow")),
            (405, Some("GET, HEAD")),
            "{method}"
        );
        assert_eq!(c.call(method, "/nope", None).status, 404);
    }
    assert_eq!(c.get("/file/%ff").status, 400);
    assert_eq!(c.get("/os?x=%ff").status, 400);
}

#[test]
fn os_endpoints() {
    let mut c = Client::new();
    let os = c.get("/os").json();
    assert_eq!(os["name"], "Keel");
    assert_eq!(os["hostname"], "keel");
    assert_eq!(os["date"], "2026-11-30T00:46:36Z");
    assert_eq!(os["memory"]["total"], 1u64 << 30);
    assert_eq!(c.get("/os/name").json(), "Keel");
    assert_eq!(c.get("/os/version").json()["arch"], "x86_64");
    assert_eq!(c.get("/os/uptime").json()["seconds"], 3);
    assert_eq!(c.get("/os/date").json(), "2026-11-30T00:46:36Z");
    assert_eq!(c.get("/os/memory").json()["free"], 1u64 << 29);
    assert_eq!(c.get("/os/cmdline").json(), "keel.root=auto");
    assert_eq!(c.get("/os/dmesg").text(), "keel: booted\n");
    let threads = c.get("/os/threads").json();
    assert_eq!(threads["threads"][0]["state"], "runnable");
    assert_eq!(threads["threads"][0]["cpu_time_ns"], 42);

    assert_eq!(
        c.call("PUT", "/os/cmdline", Some(b"\"keel.root=ram\""))
            .status,
        204
    );
    assert_eq!(c.fake().cmdline, "keel.root=ram");
    assert_eq!(
        c.call("PUT", "/os/cmdline", Some(b"keel.root=ram")).status,
        400
    );
    let nul = br#""a\u0000b""#;
    assert_eq!(c.call("PUT", "/os/cmdline", Some(nul)).status, 400);
    assert_eq!(
        c.call("PUT", "/os/hostname", Some(b"\"web-1.example\""))
            .status,
        204
    );
    assert_eq!(c.get("/os/hostname").json(), "web-1.example");
    for bad in [&b"\"\""[..], b"\"a b\"", b"\"a\\u0000\"", b"42", b"{}"] {
        assert_eq!(c.call("PUT", "/os/hostname", Some(bad)).status, 400);
    }
    let long = format!("\"{}\"", "a".repeat(65));
    assert_eq!(
        c.call("PUT", "/os/hostname", Some(long.as_bytes())).status,
        400
    );

    assert_eq!(
        c.call("POST", "/os/reboot", None).json()["action"],
        "reboot"
    );
    assert_eq!(c.call("POST", "/os/poweroff", None).status, 202);
    assert_eq!(c.fake().power, [PowerAction::Reboot, PowerAction::PowerOff]);
}

#[test]
fn env_endpoints() {
    let mut c = Client::new();
    assert_eq!(c.get("/env").json(), serde_json::json!({ "PATH": "/bin" }));
    assert_eq!(c.get("/env/PATH").json(), "/bin");
    assert_eq!(c.get("/env/NOPE").status, 404);
    assert_eq!(c.call("PUT", "/env/A%20B", Some(b"\"x=y\"")).status, 204);
    assert_eq!(c.get("/env/A%20B").json(), "x=y");
    assert_eq!(c.call("PUT", "/env/A=B", Some(b"\"x\"")).status, 400);
    assert_eq!(c.call("PUT", "/env/A", Some(b"\"\\u0000\"")).status, 400);
    assert_eq!(c.call("DELETE", "/env/A%20B", None).status, 204);
    assert_eq!(c.call("DELETE", "/env/A%20B", None).status, 404);
    assert_eq!(c.get("/env").json().as_object().unwrap().len(), 1);
}

fn pattern(len: usize) -> Vec<u8> {
    // Not periodic at any power of two, so a misplaced piece shows.
    let mut x = 0x1234_5678u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn fifty_mebibytes_round_trip_streamed() {
    let data = pattern(50 * 1024 * 1024);
    let mut c = Client::new();
    c.send_window = 64 * 1024;
    let mut input = format!(
        "PUT /file/etc/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    input.extend_from_slice(&data);
    let r = parse_replies(&c.pump(&input, 64 * 1024));
    assert_eq!(r[0].status, 201, "{:?}", r[0]);
    assert_eq!(r[0].json()["size"], data.len());
    // The upload reached the system in pieces no bigger than the
    // connection's buffer, never whole.
    let largest = c.fake().largest_write;
    assert!(largest <= 16 * 1024 + 1, "largest write {largest}");
    assert!(c.fake().file("/etc/big").unwrap() == &data);

    let r = c.get("/file/etc/big");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert!(r.body == data, "download differs");
    assert!(c.fake().largest_read <= 16 * 1024);
    assert_eq!(c.fake().open_handles, 0);
}

#[test]
fn chunked_upload_streams_too() {
    let data = pattern(3 * 1024 * 1024 + 17);
    let mut c = Client::new();
    let mut input = format!(
        "POST /file/etc/chunky HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in data.chunks(100_000) {
        input.extend(format!("{:x}\r\n", piece.len()).bytes());
        input.extend_from_slice(piece);
        input.extend(b"\r\n");
    }
    input.extend(b"0\r\n\r\n");
    let r = parse_replies(&c.pump(&input, 9000));
    assert_eq!(r[0].status, 201);
    assert!(c.fake().file("/etc/chunky").unwrap() == &data);
    assert!(c.fake().largest_write <= 16 * 1024 + 1);
    // POST does not replace.
    assert_eq!(c.call("POST", "/file/etc/chunky", Some(b"x")).status, 409);
    // PUT does, and says so with 200.
    assert_eq!(c.call("PUT", "/file/etc/chunky", Some(b"x")).status, 200);
    assert_eq!(c.fake().file("/etc/chunky").unwrap(), b"x");
}

#[test]
fn ranges() {
    let mut c = Client::new();
    let hosts = b"127.0.0.1 localhost\n";
    let get_range = |c: &mut Client, range: &str| {
        let input = format!(
            "GET /file/etc/hosts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nRange: {range}\r\n\r\n"
        );
        c.raw(input.as_bytes()).remove(0)
    };
    let r = get_range(&mut c, "bytes=0-8");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &hosts[..9]);
    assert_eq!(r.header("Content-Range"), Some("bytes 0-8/20"));
    let r = get_range(&mut c, "bytes=10-");
    assert_eq!(r.body, &hosts[10..]);
    let r = get_range(&mut c, "bytes=-5");
    assert_eq!(r.body, &hosts[15..]);
    assert_eq!(r.header("Content-Range"), Some("bytes 15-19/20"));
    let r = get_range(&mut c, "bytes=5-1000");
    assert_eq!(r.body, &hosts[5..]);
    let r = get_range(&mut c, "bytes=20-");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */20"));
    // Unsupported or malformed ranges are ignored: the whole file.
    for ignored in ["bytes=0-1,3-4", "items=0-1", "bytes=5-2", "bytes=x-"] {
        let r = get_range(&mut c, ignored);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &hosts[..]),
            "{ignored}"
        );
    }
    assert_eq!(c.fake().open_handles, 0);

    assert_eq!(parse_range("bytes=0-0", 1), Some(Ok((0, 0))));
    assert_eq!(parse_range("bytes=-100", 10), Some(Ok((0, 9))));
    assert_eq!(parse_range("bytes=-0", 10), Some(Err(())));
    assert_eq!(parse_range("bytes=0-", 0), Some(Err(())));
    assert_eq!(
        parse_range("bytes=0-99999999999999999999999", 10),
        Some(Ok((0, 9)))
    );
}

#[test]
fn directories_stat_mkdir_and_delete() {
    let mut c = Client::new();
    let listing = c.get("/file/etc").json();
    assert_eq!(listing[0]["name"], "hosts");
    assert_eq!(listing[0]["type"], "file");
    assert_eq!(listing[0]["size"], 20);
    assert_eq!(c.get("/file/etc?op=list").json(), listing);
    assert_eq!(c.get("/file/?op=stat").json()["type"], "directory");
    assert_eq!(c.get("/file/etc/hosts?op=stat").json()["size"], 20);
    assert_eq!(c.get("/file/etc/hosts?op=list").status, 409);
    assert_eq!(c.get("/file/etc/hosts?op=bogus").status, 400);
    assert_eq!(c.get("/file/missing").status, 404);

    assert_eq!(c.call("POST", "/file/etc/sub?op=mkdir", None).status, 201);
    assert_eq!(c.call("POST", "/file/etc/sub?op=mkdir", None).status, 409);
    assert_eq!(
        c.call("POST", "/file/no/such/dir?op=mkdir", None).status,
        404
    );
    assert_eq!(c.call("PUT", "/file/etc/sub/f", Some(b"1")).status, 201);
    assert_eq!(c.call("DELETE", "/file/etc/sub", None).status, 409);
    assert_eq!(c.call("DELETE", "/file/etc/sub/f", None).status, 204);
    assert_eq!(c.call("DELETE", "/file/etc/sub", None).status, 204);
    assert_eq!(c.call("DELETE", "/file/etc/sub", None).status, 404);
    assert_eq!(c.call("PUT", "/file/etc", Some(b"1")).status, 409);
    assert_eq!(c.call("PUT", "/file/etc/hosts/x", Some(b"1")).status, 409);
    assert_eq!(c.call("PUT", "/file/ro/x", Some(b"1")).status, 403);
    assert_eq!(
        c.call("PUT", "/file/etc/x?op=mkdir", Some(b"1")).status,
        400
    );

    let df = c.get("/fs/df").json();
    assert_eq!(df[0]["mountpoint"], "/");
    assert_eq!(df[0]["filesystem"], "zfs");
}

#[test]
fn a_full_disk_is_507_and_leaves_no_partial_file() {
    let mut fake = fake::Fake::new();
    fake.capacity = 100_000;
    let mut c = Client::with(fake, crate::http::Limits::default());
    let r = c.call("PUT", "/file/etc/big", Some(&pattern(200_000)));
    assert_eq!(r.status, 507);
    assert!(c.conn.is_finished(), "the rest of the body was not read");
    assert!(c.fake().file("/etc/big").is_none());
    assert_eq!(c.fake().open_handles, 0);

    // A commit failing at close is reported too.
    let mut fake = fake::Fake::new();
    fake.close_error = Some(SysError::NoSpace);
    let mut c = Client::with(fake, crate::http::Limits::default());
    assert_eq!(c.call("PUT", "/file/etc/x", Some(b"abc")).status, 507);
    assert!(c.fake().file("/etc/x").is_none());
}

#[test]
fn uploads_over_the_limit_are_413() {
    let mut c = Client::new();
    let head = format!(
        "PUT /file/etc/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        200u64 * 1024 * 1024
    );
    let r = c.raw(head.as_bytes());
    assert_eq!(r[0].status, 413);
    assert!(c.fake().file("/etc/x").is_none());
}

/// A client 1000 bytes into the download of a 100 000-byte file.
fn mid_download() -> Client {
    let mut c = Client::new();
    c.fake()
        .files
        .insert("/big".into(), fake::Node::File(pattern(100_000)));
    c.conn
        .recv(&mut c.api, &request("GET", "/file/big", None, Some(TOKEN)));
    let mut buf = [0u8; 1000];
    assert_eq!(c.conn.send(&mut c.api, &mut buf), 1000);
    c
}

#[test]
fn an_upload_cut_off_by_the_peer_is_removed() {
    let mut c = Client::new();
    let head = format!(
        "PUT /file/etc/cut HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\nabc"
    );
    c.pump(head.as_bytes(), 100);
    assert_eq!(c.fake().open_handles, 1);
    c.conn.peer_closed(&mut c.api);
    assert!(c.conn.is_finished());
    assert!(c.fake().file("/etc/cut").is_none());
    assert_eq!(c.fake().open_handles, 0);
    // Likewise when the transport drops the connection mid-download.
    let mut c = mid_download();
    assert_eq!(c.fake().open_handles, 1);
    c.conn.abort(&mut c.api);
    assert_eq!(c.fake().open_handles, 0);
}

#[test]
fn a_file_shrinking_mid_download_cuts_the_connection() {
    let mut c = mid_download();
    c.fake()
        .files
        .insert("/big".into(), fake::Node::File(pattern(10)));
    let mut buf = [0u8; 1000];
    let mut out = Vec::new();
    loop {
        let n = c.conn.send(&mut c.api, &mut buf);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert!(c.conn.is_finished(), "a short body must end the connection");
    // What was already read (16 KiB pieces) goes out; nothing is invented.
    assert!(1000 + out.len() < 100_000, "sent {} more bytes", out.len());
    assert_eq!(c.fake().open_handles, 0);
}

#[test]
fn apps() {
    let mut c = Client::new();
    c.fake().files.insert("/bin".into(), fake::Node::Dir);
    c.fake()
        .files
        .insert("/bin/srv".into(), fake::Node::File(vec![0x7f]));
    let r = c.call(
        "POST",
        "/app",
        Some(br#"{"path":"/bin/srv","argv":["srv","-v"],"env":{"PORT":"80"}}"#),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["id"], 2);
    assert_eq!(r.header("Location"), Some("/app/2"));
    let list = c.get("/app").json();
    assert_eq!(list[0]["state"], "exited");
    assert_eq!(list[0]["code"], 0);
    assert_eq!(list[1]["state"], "running");
    assert_eq!(list[1]["argv"], serde_json::json!(["srv", "-v"]));
    assert_eq!(c.get("/app/2").json()["path"], "/bin/srv");
    assert_eq!(c.get("/app/2/stdout").text(), "PORT=80");
    assert_eq!(c.get("/app/1/stdout?tail=6").text(), "world\n");
    assert_eq!(c.get("/app/1/stderr").text(), "oops\n");
    assert_eq!(c.get("/app/1/stderr?tail=x").status, 400);
    assert_eq!(c.get("/app/1/stderr?tail=1048576").status, 200);
    assert_eq!(c.get("/app/1/stderr?tail=1048577").status, 400);
    assert_eq!(c.get("/app/9/stdout").status, 404);
    assert_eq!(c.get("/app/9").status, 404);
    assert_eq!(c.get("/app/x").status, 400);

    let r = c.call("POST", "/app/2/stop?signal=9", None);
    assert_eq!(r.status, 202);
    assert_eq!(c.fake().signals, [(2, 9)]);
    assert_eq!(c.fake().apps[1].state, AppState::Killed { signal: 9 });
    assert_eq!(c.get("/app/2").json()["signal"], 9);
    assert_eq!(c.call("POST", "/app/2/stop", None).status, 409);
    assert_eq!(c.call("POST", "/app/1/stop?signal=0", None).status, 400);
    assert_eq!(c.call("POST", "/app/7/stop", None).status, 404);

    // argv defaults to the path.
    assert_eq!(
        c.call("POST", "/app", Some(br#"{"path":"/bin/srv"}"#))
            .status,
        201
    );
    assert_eq!(c.fake().apps[2].argv, ["/bin/srv"]);
    for bad in [
        &br#"{"path":"bin/srv"}"#[..],
        br#"{"path":"/bin/srv","argv":[]}"#,
        br#"{"path":"/bin/srv","env":{"A=B":"1"}}"#,
        br#"{"path":"/bin/srv","bogus":1}"#,
        br#"{"argv":["x"]}"#,
        b"not json",
    ] {
        assert_eq!(
            c.call("POST", "/app", Some(bad)).status,
            400,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        c.call("POST", "/app", Some(br#"{"path":"/bin/none"}"#))
            .status,
        404
    );
}

#[test]
fn network_hardware_metrics_health() {
    let mut c = Client::new();
    let ifs = c.get("/network/interfaces").json();
    assert_eq!(ifs[0]["addresses"][0]["address"], "10.0.2.15");
    assert_eq!(c.get("/network/routes").json()[0]["gateway"], "10.0.2.2");
    assert_eq!(c.get("/network/sockets").json()["tcp_established"], 2);
    let all = c.get("/network").json();
    assert_eq!(all["interfaces"], ifs);
    let hw = c.get("/hardware").json();
    assert_eq!(hw["processor_count"], 2);
    assert_eq!(hw["cpu_flags"][1], "rdtscp");
    assert_eq!(hw["hypervisor"], "TCG");

    let prom = c.get("/metrics");
    assert!(
        prom.header("Content-Type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = prom.text();
    assert!(text.contains("keel_syscalls_total{name=\"read\"} 7\n"));
    assert!(text.contains("keel_interrupts_total{source=\"timer\"} 99\n"));
    assert!(text.contains("keel_disk_written_bytes_total 8192\n"));
    let json = c.get("/metrics?format=json").json();
    assert_eq!(json["context_switches"], 11);
    assert_eq!(json["syscalls"][0]["name"], "read");
    let input = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    assert_eq!(c.raw(input.as_bytes())[0].json()["page_faults"], 3);
    // An explicit format wins over Accept.
    let input = input.replace("/metrics", "/metrics?format=prometheus");
    assert!(c.raw(input.as_bytes())[0].text().starts_with("# HELP"));
    assert_eq!(c.get("/metrics?format=xml").status, 400);

    let mut c = Client::new();
    let r = c.raw(&request("GET", "/health", None, None));
    assert_eq!(r[0].json(), serde_json::json!({ "status": "ok" }));
}

/// The OpenAPI document and the route table describe the same API: every
/// route is documented and every documented operation is routed.
#[test]
fn openapi_matches_the_routes_both_ways() {
    let mut c = Client::new();
    let r = c.get("/openapi.json");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let methods = [
        "get", "put", "post", "delete", "head", "patch", "options", "trace",
    ];
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, op) in item.as_object().unwrap() {
            if methods.contains(&key.as_str()) {
                documented.insert((key.to_uppercase(), path.clone()));
                assert!(op["responses"].is_object(), "{key} {path} has responses");
                // Everything but the health check is marked as needing the
                // token (by the global requirement, not an empty override).
                let public = op
                    .get("security")
                    .is_some_and(|s| s.as_array().unwrap().is_empty());
                assert_eq!(public, path == "/health", "{key} {path} security");
                if !public {
                    assert!(
                        op["responses"]["401"].is_object(),
                        "{key} {path} documents 401"
                    );
                }
            }
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes not in openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "openapi.json operations not routed: {extra:?}"
    );
    assert_eq!(doc["security"], serde_json::json!([{ "bearer": [] }]));
    // Every schema reference resolves.
    let text = crate::api::OPENAPI;
    for piece in text.split("\"$ref\": \"#/components/").skip(1) {
        let reference = &piece[..piece.find('"').unwrap()];
        let (kind, name) = reference.split_once('/').unwrap();
        assert!(
            doc["components"][kind][name].is_object(),
            "dangling $ref {reference}"
        );
    }
}
