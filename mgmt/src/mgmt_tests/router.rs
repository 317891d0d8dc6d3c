//! Routing: templates, parameters, 405, query decoding.

use crate::http::Method::{self, Delete, Get, Head, Post, Put};
use crate::router::{Endpoint as E, *};
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

fn found(m: Method, p: &str) -> (Endpoint, Vec<String>) {
    match route(m, p) {
        Match::Found(e, params) => (e, params),
        other => panic!("{p}: {other:?}"),
    }
}

#[test]
fn fixed_paths_and_parameters_route() {
    assert_eq!(found(Get, "/os/uptime").0, E::OsUptime);
    assert_eq!(found(Head, "/os").0, E::Os);
    assert_eq!(
        found(Put, "/env/PATH"),
        (E::EnvSet, vec!["PATH".to_string()])
    );
    assert_eq!(
        found(Post, "/app/7/stop"),
        (E::AppStop, vec!["7".to_string()])
    );
}

#[test]
fn file_paths_take_the_rest_and_decode_per_segment() {
    assert_eq!(found(Get, "/file/etc/hosts").1, vec!["/etc/hosts"]);
    assert_eq!(found(Get, "/file/").1, vec!["/"]);
    assert_eq!(found(Get, "/file//a//b/").1, vec!["/a/b"]);
    assert_eq!(found(Get, "/file/a%20b/c%2Fd").1, vec!["/a b/c/d"]);
    assert_eq!(route(Get, "/file/a%00b"), Match::BadPath);
    assert_eq!(route(Get, "/file/%ff"), Match::BadPath);
}

#[test]
fn wrong_method_lists_the_allowed_ones() {
    assert_eq!(
        route(Post, "/env/X"),
        Match::MethodNotAllowed(vec![Get, Put, Delete])
    );
    assert_eq!(route(Delete, "/os"), Match::MethodNotAllowed(vec![Get]));
}

#[test]
fn unknown_and_near_miss_paths_are_not_found() {
    for p in [
        "/",
        "/os/",
        "/osx",
        "/env/",
        "/env/a/b",
        "/app/1/stop/x",
        "/file",
        "",
    ] {
        assert_eq!(route(Get, p), Match::NotFound, "{p}");
    }
}

#[test]
fn queries_decode() {
    assert_eq!(
        parse_query("op=stat&x=a+b%21&flag").unwrap(),
        vec![
            ("op".to_string(), "stat".to_string()),
            ("x".to_string(), "a b!".to_string()),
            ("flag".to_string(), String::new())
        ]
    );
    assert!(parse_query("a=%ff").is_none());
}

#[test]
fn every_template_is_reachable() {
    for route in ROUTES {
        let concrete = route
            .path
            .replace("{path}", "some/file")
            .replace("{name}", "N")
            .replace("{id}", "3");
        let got = crate::router::route(route.method, &concrete);
        assert!(
            matches!(got, Match::Found(e, _) if e == route.endpoint),
            "{} {}: {got:?}",
            route.method.as_str(),
            route.path
        );
    }
}
