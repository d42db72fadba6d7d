//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` lines, then one `name{labels} value` line per series.
//!
//! Label values: a comm is first escaped as everywhere else in this
//! project (printable ASCII but `\` and `"` as is, every other byte
//! `\xNN`, `\` as `\\`), which leaves no `"` and no newline; then the
//! format's own escaping doubles each `\`. Two comms that escape alike are
//! one series.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{OTHER, Registry, Series};
use crate::app::abi::LAT_SLOTS;
use crate::app::loss::Cause;
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

/// The whole exposition of `r`, as of `now` (the interval's end).
pub fn render(r: &Registry, now: SystemTime) -> Vec<u8> {
    let mut out = String::with_capacity(r.series.len() * 2048 + 1024);
    // The series of names that hold a slot now, and "other"; the others
    // are kept, not written (Prometheus marks them stale).
    let each = |out: &mut String, f: &dyn Fn(&mut String, &str, &str, &Series)| {
        for ((syscall, comm), s) in &r.series {
            if comm == OTHER || r.has_own(comm) {
                f(out, syscall.name(), comm, s);
            }
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
    let causes: Vec<String> = Cause::TOP
        .iter()
        .map(|c| format!("{}: {}", c.label(), c.sentence()))
        .collect();
    help(
        &mut out,
        "probe_events_lost_total",
        "counter",
        &format!(
            "Calls never counted, by cause, as the stderr lines name them: {}.",
            causes.join("; ")
        ),
    );
    for cause in Cause::TOP {
        let _ = writeln!(
            out,
            "probe_events_lost_total{{cause=\"{}\"}} {}",
            cause.label(),
            r.lost.get(cause)
        );
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
    help(
        &mut out,
        "probe_last_update_timestamp_seconds",
        "gauge",
        "When these values were last updated (the end of the last interval), in seconds since \
         the epoch: far behind time(), the probe has stopped or stalled.",
    );
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let _ = writeln!(
        out,
        "probe_last_update_timestamp_seconds {}.{:03}",
        since_epoch.as_secs(),
        since_epoch.subsec_millis()
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    use crate::app::abi::{Syscall, TopKey};
    use crate::app::loss::Losses;
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

    fn text(r: &Registry) -> String {
        String::from_utf8(render(
            r,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        ))
        .unwrap()
    }

    /// `probe_calls_total{syscall="write",comm=...}` of each series written.
    fn writes(text: &str) -> BTreeMap<String, u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("probe_calls_total{syscall=\"write\",comm=\""))
            .map(|l| {
                let (comm, n) = l.split_once("\"} ").unwrap();
                (comm.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn buckets_are_cumulative_and_bounded_by_2_to_the_k_plus_1() {
        let mut r = Registry::new(10, &[], SECOND, "tracepoint");
        r.add(&[row(b"w", 5, 10)]);
        r.add(&[row(b"w", 2, 12)]);
        let text = text(&r);
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
        assert!(text.contains("\nprobe_last_update_timestamp_seconds 1700000000.250\n"));
    }

    #[test]
    fn losses_are_written_under_their_cause_and_never_go_back() {
        let mut r = Registry::new(10, &[], SECOND, "tracepoint");
        let mut l = Losses::default();
        l.add(Cause::KernelSkipped, 4);
        r.set_lost(l);
        let mut fewer = Losses::default();
        fewer.add(Cause::KernelSkipped, 3);
        fewer.add(Cause::Evicted, 2);
        r.set_lost(fewer);
        let text = text(&r);
        let lost: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("probe_events_lost_total{"))
            .collect();
        assert_eq!(
            lost,
            [
                "probe_events_lost_total{cause=\"kernel_skipped\"} 4",
                "probe_events_lost_total{cause=\"missed_return\"} 0",
                "probe_events_lost_total{cause=\"evicted\"} 2",
            ]
        );
    }

    #[test]
    fn free_slots_go_to_the_active_names_and_the_rest_count_as_other() {
        let mut r = Registry::new(2, &[], SECOND, "kprobe");
        r.add(&[row(b"a", 1, 0), row(b"b", 5, 0), row(b"c", 3, 0)]);
        // b and c are the most active: a counts as other.
        assert_eq!(
            writes(&text(&r)),
            expect(&[("b", 5), ("c", 3), ("other", 1)])
        );
        // a, busier now but not more than twice as active as c: still
        // other (a: 1 x 0.988 + 4 = 4.99; c: 3 x 0.988 = 2.96).
        r.add(&[row(b"a", 4, 0)]);
        assert_eq!(
            writes(&text(&r)),
            expect(&[("b", 5), ("c", 3), ("other", 5)])
        );
        // Now it is (1 x 0.988^2 + 4 x 0.988 + 3 = 7.9 > 2 x 2.93): it takes
        // c's slot, with the interval's calls.
        r.add(&[row(b"a", 3, 0)]);
        assert_eq!(
            writes(&text(&r)),
            expect(&[("a", 3), ("b", 5), ("other", 5)])
        );
    }

    #[test]
    fn a_name_takes_a_slot_only_when_twice_as_active_and_nothing_goes_back() {
        // An hour per interval: the activity of an interval ago weighs
        // 2^-60, nothing.
        let hour = Duration::from_secs(3600);
        let mut r = Registry::new(2, &[], hour, "tracepoint");
        r.add(&[row(b"junk1", 100, 0), row(b"junk2", 100, 0)]);
        assert_eq!(writes(&text(&r)), expect(&[("junk1", 100), ("junk2", 100)]));
        // The junk has gone; pg's first interval takes junk2's slot (the
        // smaller label of two alike keeps its slot longer: junk1 was
        // ranked first). The slot is given before the interval counts.
        r.add(&[row(b"pg", 1, 0)]);
        assert_eq!(writes(&text(&r)), expect(&[("junk1", 100), ("pg", 1)]));
        // Activity alike: no flapping. pg 10, q 15 (not > 2 x 10).
        r.add(&[row(b"pg", 10, 0), row(b"junk1", 10, 0)]);
        r.add(&[row(b"pg", 10, 0), row(b"junk1", 10, 0), row(b"q", 15, 0)]);
        assert_eq!(
            writes(&text(&r)),
            expect(&[("junk1", 120), ("other", 15), ("pg", 21)])
        );
        // q more than twice as active as the least active holder (pg, 1):
        // it takes pg's slot; pg's calls count as other from then on.
        r.add(&[row(b"q", 30, 0), row(b"pg", 1, 0), row(b"junk1", 10, 0)]);
        assert_eq!(
            writes(&text(&r)),
            expect(&[("junk1", 130), ("other", 16), ("q", 30)])
        );
        // pg comes back with a flood: its series goes on from 21.
        r.add(&[row(b"pg", 100, 0)]);
        // (It took the slot of junk1, the least active holder now.)
        assert_eq!(
            writes(&text(&r)),
            expect(&[("other", 16), ("pg", 121), ("q", 30)])
        );
        // Every call in exactly one series, written or kept.
        let all: u64 = r
            .series
            .iter()
            .filter(|((s, _), _)| *s == Syscall::Write)
            .map(|(_, s)| s.calls)
            .sum();
        assert_eq!(all, 200 + 1 + 20 + 35 + 41 + 100);
    }

    #[test]
    fn a_pinned_name_has_its_series_whatever_else_comes() {
        let mut r = Registry::new(2, &[b"postgres".to_vec()], SECOND, "tracepoint");
        let junk: Vec<Row> = (0..100)
            .map(|i| row(format!("junk{i}").as_bytes(), 1000, 0))
            .collect();
        r.add(&junk);
        let t = writes(&text(&r));
        // One slot left by the pin: junk0 (the smallest label of 100 alike).
        assert_eq!(t, expect(&[("junk0", 1000), ("other", 99_000)]));
        r.add(&[row(b"postgres", 1, 0)]);
        assert_eq!(
            writes(&text(&r)),
            expect(&[("junk0", 1000), ("other", 99_000), ("postgres", 1)])
        );
    }

    #[test]
    fn names_followed_and_series_kept_stay_bounded() {
        let hour = Duration::from_secs(3600);
        let mut r = Registry::new(3, &[], hour, "tracepoint");
        for i in 0..50u64 {
            // Each interval a new name, busier than every name before.
            r.add(&[row(format!("n{i}").as_bytes(), 10 * (i + 1), 0)]);
        }
        // 3 names hold slots; 3 more keep their series for a return.
        let kept: BTreeSet<&str> = r.series.keys().map(|(_, l)| l.as_str()).collect();
        assert_eq!(kept.len(), 6, "{kept:?}");
        assert_eq!(
            writes(&text(&r)).into_keys().collect::<Vec<_>>(),
            ["n47", "n48", "n49"]
        );
        assert!(r.standings.len() <= 6, "{}", r.standings.len());
    }
}
