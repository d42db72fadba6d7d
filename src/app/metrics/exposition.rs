//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, then one `name{labels} value` line per series.
//!
//! Label values: a comm is first escaped as everywhere else in this
//! project (printable ASCII but `\` and `"` as is, every other byte
//! `\xNN`, `\` as `\\`), which leaves no `"` and no newline; then the
//! format's own escaping doubles each `\`. Two comms that escape alike are
//! one series.

use std::fmt::Write as _;

use super::{OTHER, Registry, Series};
use crate::app::abi::LAT_SLOTS;
use crate::app::output::{errno, format};

/// A comm as a label value, both escapings applied.
pub fn comm_label(comm: &[u8]) -> String {
    let mut b = Vec::with_capacity(comm.len() + 8);
    // json = true doubles each backslash: the exposition format's own
    // escaping of `\`; the project's leaves no `"` or newline to escape.
    format::push_escaped(&mut b, comm, true);
    String::from_utf8_lossy(&b).into_owned()
}

/// The `le` of latency slot k: the slot holds [2^k, 2^(k+1)) ns, so its
/// upper bound is 2^(k+1) ns, in seconds.
fn le(k: usize) -> String {
    // Divided by 1e9 (exact), not multiplied by 1e-9 (not): 2048 ns is
    // 2.048e-6 s, not 2.0480000000000002e-6.
    let seconds = (1u64 << (k + 1)) as f64 / 1e9;
    format!("{seconds:e}")
}

fn errno_label(e: u32) -> String {
    match e {
        0 => "unknown".to_string(),
        e => errno::name(e as u64).map_or_else(|| e.to_string(), str::to_string),
    }
}

fn help(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition of `r`.
pub fn render(r: &Registry) -> Vec<u8> {
    let mut out = String::with_capacity(r.series.len() * 2048 + 1024);
    let each = |out: &mut String, f: &dyn Fn(&mut String, &str, &str, &Series)| {
        for ((syscall, comm), s) in &r.series {
            f(out, syscall.name(), comm, s);
        }
    };
    help(
        &mut out,
        "probe_calls_total",
        "counter",
        "Calls of the read/write family that returned, by syscall and process name (comm).",
    );
    each(&mut out, &|out, sc, comm, s| {
        let _ = writeln!(
            out,
            "probe_calls_total{{syscall=\"{sc}\",comm=\"{comm}\"}} {}",
            s.calls
        );
    });
    help(
        &mut out,
        "probe_bytes_total",
        "counter",
        "Bytes transferred (the sum of the calls' non-negative returns).",
    );
    each(&mut out, &|out, sc, comm, s| {
        let _ = writeln!(
            out,
            "probe_bytes_total{{syscall=\"{sc}\",comm=\"{comm}\"}} {}",
            s.bytes
        );
    });
    help(
        &mut out,
        "probe_errors_total",
        "counter",
        "Calls that returned an error, by errno (under comm=\"other\" when the kernel's errno table was full).",
    );
    each(&mut out, &|out, sc, comm, s| {
        for (e, n) in &s.errnos {
            let _ = writeln!(
                out,
                "probe_errors_total{{syscall=\"{sc}\",comm=\"{comm}\",errno=\"{}\"}} {n}",
                errno_label(*e)
            );
        }
    });
    help(
        &mut out,
        "probe_latency_seconds",
        "histogram",
        "Time from a call's entry to its return (log2 buckets, counted in the kernel).",
    );
    each(&mut out, &|out, sc, comm, s| {
        let mut cumulative = 0u64;
        // The last slot holds everything from 2^(LAT_SLOTS-1) ns up: it
        // has no upper bound but +Inf.
        for k in 0..LAT_SLOTS - 1 {
            cumulative += s.lat_hist.get(k).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "probe_latency_seconds_bucket{{syscall=\"{sc}\",comm=\"{comm}\",le=\"{}\"}} \
                 {cumulative}",
                le(k)
            );
        }
        let _ = writeln!(
            out,
            "probe_latency_seconds_bucket{{syscall=\"{sc}\",comm=\"{comm}\",le=\"+Inf\"}} {}",
            s.calls
        );
        let _ = writeln!(
            out,
            "probe_latency_seconds_sum{{syscall=\"{sc}\",comm=\"{comm}\"}} {:e}",
            s.lat_ns as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "probe_latency_seconds_count{{syscall=\"{sc}\",comm=\"{comm}\"}} {}",
            s.calls
        );
    });
    help(
        &mut out,
        "probe_events_lost_total",
        "counter",
        "Calls never counted, by where they were lost.",
    );
    for (place, n) in [
        ("missed_return", r.lost.missed_return),
        ("evicted", r.lost.evicted),
        ("recursion", r.lost.recursion),
    ] {
        let _ = writeln!(out, "probe_events_lost_total{{where=\"{place}\"}} {n}");
    }
    help(
        &mut out,
        "probe_map_overflow_total",
        "counter",
        &format!(
            "Calls counted under comm=\"{OTHER}\" because the kernel's table was full (--keys)."
        ),
    );
    let _ = writeln!(out, "probe_map_overflow_total {}", r.overflow);
    help(
        &mut out,
        "probe_build_info",
        "gauge",
        "The probe's version and the attach method in use.",
    );
    let _ = writeln!(
        out,
        "probe_build_info{{version=\"{}\",attach=\"{}\"}} 1",
        r.version, r.attach
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::abi::{Syscall, TopKey};
    use crate::app::top::table::{Counts, Row, RowKey};

    fn row(comm: &[u8], calls: u64, slot: usize) -> Row {
        let mut c = Counts {
            calls,
            bytes_xfer: calls * 10,
            lat_ns: calls * 1000,
            ..Counts::default()
        };
        c.lat_hist[slot] = calls;
        c.size_hist[3] = calls;
        let mut key = TopKey {
            tgid: 7,
            syscall: Syscall::Write.index(),
            ..TopKey::default()
        };
        key.comm[..comm.len()].copy_from_slice(comm);
        Row {
            key: RowKey::Key(key),
            comm: key.comm,
            counts: c,
        }
    }

    #[test]
    fn labels_escape_twice() {
        assert_eq!(comm_label(b"a\"b"), "a\\\\x22b");
        assert_eq!(comm_label(b"a\\b"), "a\\\\\\\\b");
        assert_eq!(comm_label(b"a\nb\xff"), "a\\\\x0ab\\\\xff");
        assert_eq!(comm_label(b"bash"), "bash");
    }

    #[test]
    fn buckets_are_cumulative_and_bounded_by_2_to_the_k_plus_1() {
        let mut r = Registry::new(10, "tracepoint");
        r.add(&[row(b"w", 5, 10)]);
        r.add(&[row(b"w", 2, 12)]);
        let text = String::from_utf8(render(&r)).unwrap();
        assert!(text.contains("probe_calls_total{syscall=\"write\",comm=\"w\"} 7\n"));
        assert!(text.contains("probe_bytes_total{syscall=\"write\",comm=\"w\"} 70\n"));
        // Slot 10 is [1024, 2048) ns: le = 2048 ns.
        assert!(
            text.contains("le=\"2.048e-6\"} 5\n"),
            "{}",
            text.lines()
                .filter(|l| l.contains("e-6"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(text.contains("le=\"4.096e-6\"} 5\n"));
        assert!(text.contains("le=\"8.192e-6\"} 7\n"));
        assert!(text.contains("le=\"+Inf\"} 7\n"));
        assert!(text.contains("probe_latency_seconds_count{syscall=\"write\",comm=\"w\"} 7\n"));
        assert!(text.contains("probe_latency_seconds_sum{syscall=\"write\",comm=\"w\"} 7e-6\n"));
        assert!(text.contains("probe_build_info{version=\""));
    }

    #[test]
    fn comms_past_the_limit_go_to_other_and_stay_there() {
        let mut r = Registry::new(2, "kprobe");
        r.add(&[row(b"a", 1, 0), row(b"b", 1, 0), row(b"c", 1, 0)]);
        r.add(&[row(b"c", 1, 0), row(b"a", 1, 0)]);
        let text = String::from_utf8(render(&r)).unwrap();
        assert!(text.contains("probe_calls_total{syscall=\"write\",comm=\"a\"} 2\n"));
        assert!(text.contains("probe_calls_total{syscall=\"write\",comm=\"b\"} 1\n"));
        assert!(text.contains("probe_calls_total{syscall=\"write\",comm=\"other\"} 2\n"));
        assert!(!text.contains("comm=\"c\""));
    }
}
