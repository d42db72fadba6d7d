//! `probe top`'s renderers: a table of text (the screen, and the plain
//! output when stdout is not a terminal), JSON objects, and histograms as
//! text bars in the manner of bcc's funclatency.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::app::abi::{Syscall, TopBy};
use crate::app::loss::Losses;
use crate::app::output::{errno, format};
use crate::app::top::files::FileNames;
use crate::app::top::table::{Counts, Row, RowKey};

/// `--sort`: what puts a row first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Bytes moved.
    Bytes,
    /// Calls.
    Calls,
    /// Mean latency per call.
    Latency,
}

impl Sort {
    pub const ALL: [Sort; 3] = [Sort::Bytes, Sort::Calls, Sort::Latency];

    pub fn name(self) -> &'static str {
        match self {
            Sort::Bytes => "bytes",
            Sort::Calls => "calls",
            Sort::Latency => "latency",
        }
    }

    fn value(self, c: &Counts) -> u64 {
        match self {
            Sort::Bytes => c.bytes_xfer,
            Sort::Calls => c.calls,
            Sort::Latency => c.mean_lat_ns(),
        }
    }
}

/// The rows in the order shown: by `sort`, largest first; ties by calls,
/// then by key so the order is stable from one interval to the next.
/// (References: a row is several hundred bytes, and 10,000 of them are
/// sorted every interval.)
pub fn sorted(rows: &[Row], sort: Sort) -> Vec<&Row> {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_unstable_by(|a, b| {
        sort.value(&b.counts)
            .cmp(&sort.value(&a.counts))
            .then(b.counts.calls.cmp(&a.counts.calls))
            .then_with(|| order_key(&a.key).cmp(&order_key(&b.key)))
    });
    order
}

fn order_key(k: &RowKey) -> (u8, u32, u32, i32, u16) {
    match k {
        RowKey::Key(k) => (0, k.tgid, k.tid, k.fd, k.syscall),
        RowKey::Other(s) => (1, 0, 0, 0, s.index()),
    }
}

/// Everything a view of one interval shows.
pub struct View<'a> {
    /// When the interval ended.
    pub time: SystemTime,
    /// How long it was.
    pub length: Duration,
    pub by: TopBy,
    pub sort: Sort,
    /// Rows sorted; the first `limit` are shown.
    pub rows: &'a [&'a Row],
    pub limit: usize,
    pub total: &'a Counts,
    /// The interval's counts, or since the start.
    pub cumulative: bool,
    pub hist: bool,
    /// What the first line says after the numbers ("last interval", ...).
    pub title: &'a str,
}

/// `2026-11-28T01:02:03.456Z`.
pub fn utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// `812ns`, `3.4us`, `52.1ms`, `2.50s`.
pub fn duration_ns(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{:.1}us", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1}ms", n as f64 / 1e6),
        n => format!("{:.2}s", n as f64 / 1e9),
    }
}

fn comm_text(comm: &[u8]) -> String {
    let mut b = Vec::new();
    format::push_escaped(&mut b, comm, false);
    String::from_utf8_lossy(&b).into_owned()
}

fn errno_text(e: u32) -> String {
    errno::name(e as u64).map_or_else(|| format!("E{e}"), str::to_string)
}

/// `EBADF:3,EAGAIN:1`, with the errors not filed by errno as `?:N`.
fn errnos_text(c: &Counts) -> String {
    let mut parts: Vec<String> = c
        .errnos
        .iter()
        .map(|(e, n)| format!("{}:{n}", errno_text(*e)))
        .collect();
    if c.unfiled_errors() > 0 {
        parts.push(format!("?:{}", c.unfiled_errors()));
    }
    parts.join(",")
}

/// The columns that name a row, by `--by`.
fn key_headers(by: TopBy) -> &'static [&'static str] {
    match by {
        TopBy::Process => &["PID", "COMM"],
        TopBy::Thread => &["PID", "TID", "COMM"],
        TopBy::Syscall => &[],
        TopBy::File => &["PID", "COMM", "FD", "FILE"],
    }
}

fn key_cells(by: TopBy, row: &Row, files: &mut FileNames) -> Vec<String> {
    let k = match row.key {
        RowKey::Key(k) => k,
        RowKey::Other(_) => {
            let mut cells = vec!["-".to_string(); key_headers(by).len()];
            if let Some(c) = key_headers(by).iter().position(|h| *h == "COMM") {
                cells[c] = "(other)".into();
            }
            return cells;
        }
    };
    let comm = comm_text(row.comm());
    match by {
        TopBy::Process => vec![k.tgid.to_string(), comm],
        TopBy::Thread => vec![k.tgid.to_string(), k.tid.to_string(), comm],
        TopBy::Syscall => vec![],
        TopBy::File => vec![
            k.tgid.to_string(),
            comm,
            k.fd.to_string(),
            files.name(k.tgid, k.fd).cell(),
        ],
    }
}

const COUNT_HEADERS: [&str; 7] = [
    "SYSCALL", "CALLS", "BYTES", "REQ", "ERR", "AVG_LAT", "ERRNO",
];

fn count_cells(row: &Row) -> Vec<String> {
    let c = &row.counts;
    vec![
        row.key.syscall().name().to_string(),
        c.calls.to_string(),
        c.bytes_xfer.to_string(),
        c.bytes_req.to_string(),
        c.errors.to_string(),
        duration_ns(c.mean_lat_ns()),
        errnos_text(c),
    ]
}

/// Columns aligned to the right (numbers) or the left (names).
fn right_aligned(header: &str) -> bool {
    matches!(
        header,
        "PID" | "TID" | "FD" | "CALLS" | "BYTES" | "REQ" | "ERR" | "AVG_LAT"
    )
}

/// The first line of a view.
pub fn title_line(v: &View) -> String {
    format!(
        "probe top  {}  {} {:.1} s  by {}  sorted by {}  {} rows{}",
        utc(v.time),
        if v.cumulative {
            "since the start,"
        } else {
            "interval"
        },
        v.length.as_secs_f64(),
        v.by.name(),
        v.sort.name(),
        v.rows.len(),
        if v.title.is_empty() {
            String::new()
        } else {
            format!("  {}", v.title)
        }
    )
}

/// The totals line: every row of the view, shown or not.
pub fn totals_line(v: &View) -> String {
    let t = v.total;
    format!(
        "total: calls={} bytes={} requested={} errors={} avg_lat={}",
        t.calls,
        t.bytes_xfer,
        t.bytes_req,
        t.errors,
        duration_ns(t.mean_lat_ns())
    )
}

/// The table as lines of text: title, header, the first `limit` rows,
/// totals; then, with `hist`, each shown row's histograms.
pub fn table(v: &View, files: &mut FileNames) -> Vec<String> {
    let headers: Vec<&str> = key_headers(v.by)
        .iter()
        .chain(COUNT_HEADERS.iter())
        .copied()
        .collect();
    let shown = &v.rows[..v.rows.len().min(v.limit)];
    let cells: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            let mut c = key_cells(v.by, r, files);
            c.extend(count_cells(r));
            c
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        let last = row.len() - 1;
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if right_aligned(headers[i]) {
                let _ = write!(s, "{c:>w$}");
            } else if i == last {
                s.push_str(c);
            } else {
                let _ = write!(s, "{c:<w$}");
            }
            if i != last {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![title_line(v)];
    out.push(line(
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    ));
    out.extend(cells.iter().map(|r| line(r)));
    if v.rows.len() > shown.len() {
        out.push(format!("({} more rows)", v.rows.len() - shown.len()));
    }
    out.push(totals_line(v));
    if v.hist {
        for (row, c) in shown.iter().zip(&cells) {
            let name = c[..key_headers(v.by).len() + 1].join(" ");
            out.push(String::new());
            out.push(format!("{name}: latency"));
            out.extend(histogram("nsecs", &row.counts.lat_hist));
            out.push(format!("{name}: bytes moved per successful call"));
            out.extend(histogram("bytes", &row.counts.size_hist));
        }
    }
    out
}

/// A log2 histogram as text bars: one line per slot from the first to the
/// last that is not empty, `low -> high : count |****   |`.
pub fn histogram(unit: &str, slots: &[u64]) -> Vec<String> {
    const WIDTH: u64 = 40;
    let Some(last) = slots.iter().rposition(|&n| n > 0) else {
        return vec![format!("{:>24} : (none)", unit)];
    };
    let first = slots.iter().position(|&n| n > 0).unwrap_or(0);
    let max = slots.iter().copied().max().unwrap_or(1).max(1);
    let mut out = vec![format!("{unit:>24} : {:<10} distribution", "count")];
    for (k, &n) in slots.iter().enumerate().take(last + 1).skip(first) {
        let low: u64 = if k == 0 { 0 } else { 1 << k };
        let high = if k == slots.len() - 1 {
            "inf".to_string()
        } else {
            ((1u64 << (k + 1)) - 1).to_string()
        };
        let bar = (n * WIDTH).div_ceil(max) as usize;
        out.push(format!(
            "{:>24} : {n:<10} |{:<40}|",
            format!("{low} -> {high}"),
            "*".repeat(bar)
        ));
    }
    out
}

fn push_json_str(s: &mut String, bytes: &[u8]) {
    let mut b = Vec::new();
    format::push_escaped(&mut b, bytes, true);
    s.push('"');
    s.push_str(&String::from_utf8_lossy(&b));
    s.push('"');
}

/// A histogram as a JSON array, cut after its last non-empty slot.
fn json_slots(slots: &[u64]) -> String {
    let last = slots.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
    let items: Vec<String> = slots[..last].iter().map(u64::to_string).collect();
    format!("[{}]", items.join(","))
}

/// One JSON object per row (every row, or the first `limit`), each with
/// the interval's time and length.
pub fn json(v: &View, files: &mut FileNames) -> Vec<String> {
    let time = utc(v.time);
    v.rows
        .iter()
        .take(v.limit)
        .map(|row| {
            let c = &row.counts;
            let mut s = String::new();
            let _ = write!(
                s,
                "{{\"time\":\"{time}\",\"interval_s\":{:.3},\"cumulative\":{},\"by\":\"{}\"",
                v.length.as_secs_f64(),
                v.cumulative,
                v.by.name()
            );
            match row.key {
                RowKey::Key(k) => {
                    if v.by != TopBy::Syscall {
                        let _ = write!(s, ",\"pid\":{}", k.tgid);
                        s.push_str(",\"comm\":");
                        push_json_str(&mut s, row.comm());
                    }
                    if v.by == TopBy::Thread {
                        let _ = write!(s, ",\"tid\":{}", k.tid);
                    }
                    if v.by == TopBy::File {
                        let _ = write!(s, ",\"fd\":{}", k.fd);
                        let mut b = Vec::new();
                        files.name(k.tgid, k.fd).push_json(&mut b);
                        s.push_str(&String::from_utf8_lossy(&b));
                    }
                }
                RowKey::Other(_) => s.push_str(",\"other\":true"),
            }
            let _ = write!(
                s,
                ",\"syscall\":\"{}\",\"calls\":{},\"bytes\":{},\"bytes_requested\":{},\
                 \"errors\":{},\"lat_ns_total\":{},\"lat_ns_mean\":{},\"errno\":{{",
                row.key.syscall().name(),
                c.calls,
                c.bytes_xfer,
                c.bytes_req,
                c.errors,
                c.lat_ns,
                c.mean_lat_ns()
            );
            let errnos: Vec<String> = c
                .errnos
                .iter()
                .map(|(e, n)| format!("\"{}\":{n}", errno_text(*e)))
                .collect();
            s.push_str(&errnos.join(","));
            s.push('}');
            if c.unfiled_errors() > 0 {
                let _ = write!(s, ",\"errors_unfiled\":{}", c.unfiled_errors());
            }
            if v.hist {
                let _ = write!(
                    s,
                    ",\"lat_hist_log2_ns\":{},\"size_hist_log2_bytes\":{}",
                    json_slots(&c.lat_hist),
                    json_slots(&c.size_hist)
                );
            }
            s.push('}');
            s
        })
        .collect()
}

/// `--json`: the calls lost in the interval (with `--cumulative`, in the
/// run so far), by cause, as one object after the interval's rows, when
/// there are any: `{"time":...,"interval_s":...,"cumulative":false,
/// "lost":{"kernel_skipped":3}}`. The causes are named as on stderr and in
/// the metrics; with no "syscall" and no "calls", it is no row.
pub fn json_lost(v: &View, lost: &Losses) -> Option<String> {
    let causes: Vec<String> = lost
        .nonzero()
        .map(|(c, n)| format!("\"{}\":{n}", c.label()))
        .collect();
    if causes.is_empty() {
        return None;
    }
    Some(format!(
        "{{\"time\":\"{}\",\"interval_s\":{:.3},\"cumulative\":{},\"lost\":{{{}}}}}",
        utc(v.time),
        v.length.as_secs_f64(),
        v.cumulative,
        causes.join(",")
    ))
}

/// The syscalls as `read,write`.
pub fn syscall_names(calls: &[Syscall]) -> String {
    calls.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_740_123_456);
        assert_eq!(utc(t), "2026-11-27T00:42:03.456Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn histogram_bars() {
        let mut slots = [0u64; 8];
        slots[2] = 4;
        slots[3] = 2;
        slots[7] = 1;
        let h = histogram("nsecs", &slots);
        assert_eq!(h.len(), 1 + 6);
        assert!(
            h[1].contains("4 -> 7") && h[1].contains(&"*".repeat(40)),
            "{h:?}"
        );
        assert!(h[2].contains("8 -> 15") && h[2].contains(&format!("|{:<40}|", "*".repeat(20))));
        assert!(h[6].contains("128 -> inf"), "{h:?}");
        assert_eq!(histogram("x", &[0; 4]).len(), 1);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ns(999), "999ns");
        assert_eq!(duration_ns(3_400), "3.4us");
        assert_eq!(duration_ns(52_100_000), "52.1ms");
        assert_eq!(duration_ns(2_500_000_000), "2.50s");
    }
}
