//! RFC 3339 dates and the Prometheus text format.

use crate::format::*;
use crate::system::Counter;
use crate::system::{MemoryInfo, Metrics};
use alloc::string::ToString;
use alloc::vec;

#[test]
fn dates_match_known_instants() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    // 2000-02-29 (a leap day in a century leap year) 12:34:56.5
    assert_eq!(
        rfc3339(951_827_696_500_000_000),
        "2000-02-29T12:34:56.500000000Z"
    );
    // `date -u -d @1795999596`
    assert_eq!(rfc3339(1_795_999_596_000_000_000), "2026-11-30T00:46:36Z");
}

#[test]
fn prometheus_text_escapes_labels_and_lists_every_family() {
    let m = Metrics {
        syscalls: vec![Counter {
            name: "re\"ad\\\n".to_string(),
            count: 3,
        }],
        context_switches: 9,
        ..Metrics::default()
    };
    let text = prometheus(&m, 5_000_000_000, MemoryInfo { total: 10, free: 4 });
    assert!(text.contains("keel_syscalls_total{name=\"re\\\"ad\\\\\\n\"} 3\n"));
    assert!(text.contains("keel_context_switches_total 9\n"));
    assert!(text.contains("keel_uptime_seconds 5\n"));
    assert!(text.contains("# TYPE keel_memory_free_bytes gauge\n"));
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value.parse::<u64>().unwrap();
    }
}
