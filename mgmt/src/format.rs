//! Text formats the API produces besides JSON: RFC 3339 dates and the
//! Prometheus text exposition format for /metrics.

use alloc::string::String;
use core::fmt::Write;

use crate::system::{Counter, MemoryInfo, Metrics};

/// `2026-11-25T00:06:36.123456789Z` from nanoseconds since the Unix epoch.
pub fn rfc3339(ns_since_epoch: u64) -> String {
    let secs = ns_since_epoch / 1_000_000_000;
    let nanos = ns_since_epoch % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut s = String::new();
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos != 0 {
        let _ = write!(s, ".{nanos:09}");
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A label value with `\`, `"` and newlines escaped as the format requires.
fn label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family with one sample per named counter.
fn labelled(out: &mut String, name: &str, label_name: &str, help: &str, counters: &[Counter]) {
    family(out, name, "counter", help);
    for c in counters {
        let _ = write!(out, "{name}{{{label_name}=\"");
        label(out, &c.name);
        let _ = writeln!(out, "\"}} {}", c.count);
    }
}

/// The counters in Prometheus text format (version 0.0.4).
pub fn prometheus(m: &Metrics, uptime_ns: u64, memory: MemoryInfo) -> String {
    let mut out = String::new();
    labelled(
        &mut out,
        "keel_syscalls_total",
        "name",
        "System calls by name.",
        &m.syscalls,
    );
    labelled(
        &mut out,
        "keel_interrupts_total",
        "source",
        "Interrupts by source.",
        &m.interrupts,
    );
    let scalars: [(&str, &str, &str, u64); 9] = [
        (
            "keel_context_switches_total",
            "counter",
            "Context switches.",
            m.context_switches,
        ),
        (
            "keel_page_faults_total",
            "counter",
            "Page faults.",
            m.page_faults,
        ),
        (
            "keel_net_received_bytes_total",
            "counter",
            "Bytes received on all interfaces.",
            m.net_rx_bytes,
        ),
        (
            "keel_net_sent_bytes_total",
            "counter",
            "Bytes sent on all interfaces.",
            m.net_tx_bytes,
        ),
        (
            "keel_disk_read_bytes_total",
            "counter",
            "Bytes read from disks.",
            m.disk_read_bytes,
        ),
        (
            "keel_disk_written_bytes_total",
            "counter",
            "Bytes written to disks.",
            m.disk_write_bytes,
        ),
        (
            "keel_memory_total_bytes",
            "gauge",
            "Usable RAM.",
            memory.total,
        ),
        (
            "keel_memory_free_bytes",
            "gauge",
            "RAM not in use.",
            memory.free,
        ),
        (
            "keel_uptime_seconds",
            "gauge",
            "Seconds since boot.",
            uptime_ns / 1_000_000_000,
        ),
    ];
    for (name, kind, help, value) in scalars {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
