//! `probe top` (src/app/top/) on this machine's kernel: the kernel's counts
//! per key and syscall, summed over a run's intervals, compared exactly
//! with loads whose every call is known (loadgen prints them); a table too
//! small for its keys; intervals under load; `--by`; the screen as a person
//! sees it in a terminal (tmux); the command line.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

/// The family, in the probe's order.
const FAMILY: [&str; 10] = [
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2",
    "pwritev2",
];

/// One call as loadgen printed it: `TID SYSCALL FD COUNT RET` (RET is
/// -errno on failure).
#[derive(Clone, Debug)]
struct Made {
    tid: u64,
    syscall: String,
    count: u64,
    ret: i64,
}

/// What a loadgen run printed: its calls, and `blocked_read_ns` if given.
struct Run {
    pid: u64,
    made: Vec<Made>,
    blocked_ns: Option<u64>,
}

/// Runs loadgen to completion with `args`; what it printed.
fn loadgen_run(args: &[&str]) -> Run {
    let child = Command::new(LOADGEN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen");
    let pid = child.id() as u64;
    let out = child.wait_with_output().expect("loadgen");
    assert!(
        out.status.success(),
        "loadgen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = Run {
        pid,
        made: Vec::new(),
        blocked_ns: None,
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f[0] == "blocked_read_ns" {
            run.blocked_ns = Some(f[1].parse().unwrap());
            continue;
        }
        assert_eq!(f.len(), 5, "{line}");
        run.made.push(Made {
            tid: f[0].parse().unwrap(),
            syscall: f[1].to_string(),
            count: f[3].parse().unwrap(),
            ret: f[4].parse().unwrap(),
        });
    }
    assert!(!run.made.is_empty(), "loadgen {args:?} printed no call");
    run
}

/// The errno names the loads produce.
fn errno_name(ret: i64) -> &'static str {
    match -ret {
        9 => "EBADF",
        11 => "EAGAIN",
        e => panic!("unexpected errno {e}"),
    }
}

/// A log2 slot: floor(log2(n)), 0 for 0 and 1.
fn slot(n: u64) -> usize {
    if n <= 1 {
        0
    } else {
        63 - n.leading_zeros() as usize
    }
}

/// The counts of some calls, or of some rows: what `probe top` reports
/// per syscall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Sum {
    calls: u64,
    bytes: u64,
    requested: u64,
    errors: u64,
    errno: BTreeMap<String, u64>,
}

impl Sum {
    fn add_call(&mut self, m: &Made) {
        self.calls += 1;
        self.requested += m.count;
        if m.ret < 0 {
            self.errors += 1;
            *self.errno.entry(errno_name(m.ret).to_string()).or_default() += 1;
        } else {
            self.bytes += m.ret as u64;
        }
    }

    fn add_row(&mut self, v: &Value) {
        self.calls += num(v, "calls");
        self.bytes += num(v, "bytes");
        self.requested += num(v, "bytes_requested");
        self.errors += num(v, "errors");
        let errno = v["errno"]
            .as_object()
            .unwrap_or_else(|| panic!("no errno object: {v}"));
        for (name, n) in errno {
            *self.errno.entry(name.clone()).or_default() += n.as_u64().unwrap();
        }
    }
}

/// What the probe must report for `made`, per syscall.
fn expected(made: &[Made]) -> BTreeMap<String, Sum> {
    let mut out: BTreeMap<String, Sum> = BTreeMap::new();
    for m in made {
        out.entry(m.syscall.clone()).or_default().add_call(m);
    }
    out
}

/// The size histogram `made` must have per syscall (successful calls
/// only), cut after its last non-empty slot as the JSON cuts it.
fn expected_sizes(made: &[Made]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in made.iter().filter(|m| m.ret >= 0) {
        let h = out.entry(m.syscall.clone()).or_default();
        let k = slot(m.ret as u64);
        if h.len() <= k {
            h.resize(k + 1, 0);
        }
        h[k] += 1;
    }
    out
}

/// The rows summed per syscall.
fn summed<'a>(rows: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, Sum> {
    let mut out: BTreeMap<String, Sum> = BTreeMap::new();
    for v in rows {
        out.entry(text(v, "syscall").to_string())
            .or_default()
            .add_row(v);
    }
    out
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

fn slots(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// `acc += s`, slot by slot.
fn add_slots(acc: &mut Vec<u64>, s: &[u64]) {
    if acc.len() < s.len() {
        acc.resize(s.len(), 0);
    }
    for (a, b) in acc.iter_mut().zip(s) {
        *a += b;
    }
}

/// Every line of a `--json` run's stdout, each one JSON object; checked
/// on the way: the mean is the total over the calls, and with `hist` the
/// latency histogram holds every call and the size histogram every
/// successful one, both cut after their last non-empty slot.
/// An interval's object of losses (`"lost":{CAUSE:N}`, the kernel's
/// recursion protection may skip a call on a busy machine) is checked and
/// left out.
fn json_rows(stdout: &str, hist: bool) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(v.is_object(), "{line}");
            if let Some(lost) = v.get("lost") {
                assert!(
                    v.get("calls").is_none() && v.get("syscall").is_none(),
                    "{line}"
                );
                let causes = lost.as_object().unwrap_or_else(|| panic!("{line}"));
                assert!(!causes.is_empty(), "{line}");
                for (cause, n) in causes {
                    assert!(
                        ["kernel_skipped", "missed_return", "evicted"].contains(&cause.as_str()),
                        "{line}"
                    );
                    assert!(n.as_u64().is_some_and(|n| n > 0), "{line}");
                }
                return None;
            }
            assert_eq!(v["cumulative"], false, "{line}");
            assert!(v["interval_s"].as_f64().is_some_and(|s| s > 0.0), "{line}");
            let calls = num(&v, "calls");
            assert_eq!(
                num(&v, "lat_ns_mean"),
                num(&v, "lat_ns_total").checked_div(calls).unwrap_or(0),
                "{line}"
            );
            assert!(num(&v, "errors") <= calls, "{line}");
            if hist {
                let lat = slots(&v, "lat_hist_log2_ns");
                let size = slots(&v, "size_hist_log2_bytes");
                assert_eq!(lat.iter().sum::<u64>(), calls, "latency slots: {line}");
                assert_eq!(
                    size.iter().sum::<u64>(),
                    calls - num(&v, "errors"),
                    "size slots: {line}"
                );
                for h in [&lat, &size] {
                    assert!(h.last().is_none_or(|&n| n > 0), "not cut: {line}");
                }
            } else {
                assert!(v.get("lat_hist_log2_ns").is_none(), "{line}");
            }
            Some(v)
        })
        .collect()
}

/// (intervals, rows removed) from `probe: top: K intervals, ...; R rows
/// of exited processes removed from it`.
fn top_line(stderr: &[String]) -> (u64, u64) {
    let line = stderr
        .iter()
        .find_map(|l| l.strip_prefix("probe: top: "))
        .unwrap_or_else(|| panic!("no `probe: top:` line: {stderr:?}"));
    let (intervals, _) = line.split_once(" intervals, ").expect("intervals");
    let (_, removed) = line.rsplit_once("; ").expect("; R rows");
    let removed = removed
        .strip_suffix(" rows of exited processes removed from it")
        .unwrap_or_else(|| panic!("{line}"));
    (intervals.parse().unwrap(), removed.parse().unwrap())
}

/// Starts `probe top ARGS` (stdout to a file) and waits for it to attach,
/// counting by `by`.
fn start_top(dir: &Path, args: &[&str], by: &str) -> Probe {
    let mut all = vec!["top"];
    all.extend_from_slice(args);
    let mut probe = Probe::start(dir, &all);
    let attached = probe.wait_attached();
    assert!(
        attached.starts_with("probe: attached via ")
            && attached.contains(&format!("counting by {by} every ")),
        "{attached}"
    );
    probe
}

/// Stops the probe with SIGINT: exit 0 and the summary line last.
fn stop_top(probe: Probe) -> Finished {
    let done = probe.stop(libc::SIGINT);
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    done.counts();
    done
}

#[test]
fn a_known_workload_is_counted_exactly_per_process_and_syscall() {
    require_root!();
    let _turn = serial();
    for method in ["tracepoint", "raw-tracepoint"] {
        known_workload(method);
    }
}

fn known_workload(method: &str) {
    let dir = scratch_dir("top-known");
    let (a, b, c) = (unique_comm("ka"), unique_comm("kb"), unique_comm("kc"));
    let probe = start_top(
        &dir,
        &[
            "--attach",
            method,
            "--syscalls",
            "all",
            "--json",
            "--hist",
            "-i",
            "0.5",
        ],
        "process",
    );
    let mut runs: BTreeMap<String, Run> = BTreeMap::new();
    for (comm, mode, sub) in [
        (&a, "--family", "a"),
        (&b, "--family", "b"),
        (&c, "--returns", "c"),
    ] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).unwrap();
        runs.insert(
            comm.clone(),
            loadgen_run(&["--comm", comm, mode, d.to_str().unwrap()]),
        );
        // Each load in an interval of its own, mostly: the sums are over
        // several intervals.
        thread::sleep(Duration::from_millis(600));
    }
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, true);
    assert!(rows.iter().all(|v| v["by"] == "process"));

    let mut ours = 0;
    let mut sums = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for (comm, run) in &runs {
        let mine: Vec<&Value> = rows.iter().filter(|v| v["comm"] == comm.as_str()).collect();
        for v in &mine {
            assert_eq!(num(v, "pid"), run.pid, "{comm}: {v}");
            assert!(v.get("tid").is_none() && v.get("other").is_none(), "{v}");
        }
        let got = summed(mine.iter().copied());
        assert_eq!(got, expected(&run.made), "{comm}: rows {mine:#?}");
        let mut size: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for v in &mine {
            add_slots(
                size.entry(text(v, "syscall").to_string()).or_default(),
                &slots(v, "size_hist_log2_bytes"),
            );
        }
        // Syscalls whose every call failed have an empty histogram.
        size.retain(|_, h| h.iter().any(|&n| n > 0));
        assert_eq!(size, expected_sizes(&run.made), "{comm}: size histograms");
        ours += run.made.len() as u64;
        sums.insert(comm.clone(), got);
        sizes.insert(comm.clone(), size);
    }
    // A and B made the same calls: every number but the pid is the same.
    assert_eq!(
        sums[&a].keys().map(String::as_str).collect::<BTreeSet<_>>(),
        FAMILY.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(sums[&a], sums[&b]);
    assert_eq!(sizes[&a], sizes[&b]);
    assert_ne!(runs[&a].pid, runs[&b].pid);
    assert_eq!(
        sums[&a]["readv"].errno,
        BTreeMap::from([("EBADF".into(), 1)])
    );
    assert_eq!(
        sums[&c]["write"].errno,
        BTreeMap::from([("EAGAIN".into(), 3), ("EBADF".into(), 3)])
    );

    // C's read that waited ~50 ms for its byte is its only call of 2^25 ns
    // (33.5 ms) or more, in the slot of what its caller measured (the
    // kernel sees a little less: 25 unless the caller saw 67 ms or more).
    let blocked = runs[&c].blocked_ns.expect("blocked_read_ns");
    assert!(blocked >= 49_000_000, "{blocked} ns");
    let mut long: BTreeMap<(String, usize), u64> = BTreeMap::new();
    for v in rows.iter().filter(|v| v["comm"] == c.as_str()) {
        for (k, &n) in slots(v, "lat_hist_log2_ns").iter().enumerate().skip(25) {
            if n > 0 {
                *long.entry((text(v, "syscall").to_string(), k)).or_default() += n;
            }
        }
    }
    assert_eq!(
        long.values().sum::<u64>(),
        1,
        "C's calls of 33.5 ms or more: {long:?}"
    );
    let (syscall, k) = long.keys().next().unwrap().clone();
    assert_eq!(syscall, "read");
    if blocked < 1 << 26 {
        assert_eq!(k, 25, "blocked {blocked} ns");
    } else {
        assert!(
            (25..=slot(blocked)).contains(&k),
            "slot {k}, blocked {blocked} ns"
        );
    }

    let (received, _lost) = done.counts();
    assert!(received >= ours, "received={received} < {ours}");
    let (intervals, _) = top_line(&done.stderr);
    assert!(intervals >= 3, "{:?}", done.stderr);
    let times: BTreeSet<&str> = rows
        .iter()
        .filter(|v| v["comm"].as_str().is_some_and(|c| runs.contains_key(c)))
        .map(|v| text(v, "time"))
        .collect();
    assert!(
        times.len() >= 2,
        "the loads' rows in {} interval(s)",
        times.len()
    );
    assert_nothing_left();
}

/// VmHWM (peak resident memory) of a process, KiB.
fn vm_hwm_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM: {status}"))
}

#[test]
fn short_lived_processes_in_a_full_table_are_all_counted() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-short");
    let comm = unique_comm("sp");
    let probe = start_top(
        &dir,
        &["-c", &comm, "--keys", "64", "-i", "0.2", "--json"],
        "process",
    );
    let started = Instant::now();
    let run = Command::new(LOADGEN)
        .args(["--comm", &comm, "--short-procs", "2000"])
        .status()
        .unwrap();
    assert!(run.success());
    let took = started.elapsed();
    // Two intervals more: the last processes' rows read, then removed.
    thread::sleep(Duration::from_millis(500));
    let hwm = vm_hwm_kib(probe.pid());
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    assert!(
        rows.iter()
            .all(|v| v["other"] == true || v["comm"] == comm.as_str()),
        "{rows:#?}"
    );
    let other: Vec<&Value> = rows.iter().filter(|v| v["other"] == true).collect();
    assert!(
        !other.is_empty(),
        "no (other) row: the table of 64 never filled ({took:?} for 2000 processes)"
    );
    for v in &other {
        assert!(v.get("pid").is_none() && v.get("comm").is_none(), "{v}");
    }
    let got = summed(&rows);
    let want = BTreeMap::from([
        (
            "read".to_string(),
            Sum {
                calls: 2000,
                bytes: 0,
                requested: 2000,
                errors: 2000,
                errno: BTreeMap::from([("EBADF".into(), 2000)]),
            },
        ),
        (
            "write".to_string(),
            Sum {
                calls: 2000,
                bytes: 2000,
                requested: 2000,
                errors: 0,
                errno: BTreeMap::new(),
            },
        ),
    ]);
    assert_eq!(got, want);
    let in_other: u64 = other.iter().map(|v| num(v, "calls")).sum();
    assert!(
        done.stderr.contains(&format!(
            "probe: {in_other} calls are counted in the (other) rows: the table was full \
             (more keys than --keys); try a larger --keys"
        )),
        "{in_other} calls in the other rows: {:?}",
        done.stderr
    );
    let (_, removed) = top_line(&done.stderr);
    assert!(removed > 0, "{:?}", done.stderr);
    assert_eq!(
        done.last_line(),
        "probe: received=4000 lost=0",
        "{:?}",
        done.stderr
    );
    assert!(hwm < 100 * 1024, "VmHWM {hwm} kB");
    eprintln!(
        "2000 processes in {took:?}: {} calls in the other rows, {removed} rows removed, \
         VmHWM {hwm} kB",
        in_other
    );
    assert_nothing_left();
}

#[test]
fn intervals_under_load_add_up_to_every_call() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-load");
    let comm = unique_comm("ld");
    let probe = start_top(&dir, &["-c", &comm, "-i", "0.1", "--json"], "process");
    let started = Instant::now();
    let pid = loadgen(&comm, 300_000, 0) as u64;
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(300));
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    assert!(
        rows.iter()
            .all(|v| v["comm"] == comm.as_str() && num(v, "pid") == pid && v["syscall"] == "write"),
        "{rows:#?}"
    );
    let got = summed(&rows);
    assert_eq!(
        got["write"],
        Sum {
            calls: 300_000,
            bytes: 300_000,
            requested: 300_000,
            errors: 0,
            errno: BTreeMap::new(),
        }
    );
    let with_calls: BTreeSet<&str> = rows
        .iter()
        .filter(|v| num(v, "calls") > 0)
        .map(|v| text(v, "time"))
        .collect();
    assert!(
        with_calls.len() > 1,
        "the calls ({took:?}) in {} interval(s)",
        with_calls.len()
    );
    assert_eq!(
        done.last_line(),
        "probe: received=300000 lost=0",
        "{:?}",
        done.stderr
    );
    eprintln!(
        "300000 writes in {took:?}, in {} intervals of 0.1 s",
        with_calls.len()
    );
    assert_nothing_left();
}

/// Runs `loadgen --family` under `comm` in a directory of its own.
fn family(dir: &Path, comm: &str) -> Run {
    let d = dir.join("family");
    fs::create_dir_all(&d).unwrap();
    let run = loadgen_run(&["--comm", comm, "--family", d.to_str().unwrap()]);
    assert!(
        run.made.iter().all(|m| m.tid == run.made[0].tid),
        "one thread"
    );
    run
}

#[test]
fn by_thread_rows_carry_the_thread_id() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-thread");
    let comm = unique_comm("bt");
    let probe = start_top(
        &dir,
        &[
            "--by",
            "thread",
            "--syscalls",
            "all",
            "-c",
            &comm,
            "-i",
            "0.3",
            "--json",
        ],
        "thread",
    );
    let run = family(&dir, &comm);
    thread::sleep(Duration::from_millis(300));
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    assert!(!rows.is_empty());
    let tid = run.made[0].tid;
    for v in &rows {
        assert_eq!(v["by"], "thread", "{v}");
        assert_eq!(num(v, "tid"), tid, "{v}");
        assert_eq!(num(v, "pid"), run.pid, "{v}");
        assert_eq!(v["comm"], comm.as_str(), "{v}");
    }
    assert_eq!(summed(&rows), expected(&run.made));
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", run.made.len())
    );
    assert_nothing_left();
}

#[test]
fn by_syscall_rows_have_no_process_and_the_totals_match() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-syscall");
    let comm = unique_comm("bs");
    let probe = start_top(
        &dir,
        &[
            "--by",
            "syscall",
            "--syscalls",
            "all",
            "-c",
            &comm,
            "-i",
            "0.3",
            "--json",
        ],
        "syscall",
    );
    let run = family(&dir, &comm);
    thread::sleep(Duration::from_millis(300));
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    for v in &rows {
        assert_eq!(v["by"], "syscall", "{v}");
        for key in ["pid", "comm", "tid", "fd", "file", "other"] {
            assert!(v.get(key).is_none(), "{key} in {v}");
        }
    }
    let got = summed(&rows);
    assert_eq!(
        got.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        FAMILY.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(got, expected(&run.made));
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", run.made.len())
    );
    assert_nothing_left();
}

#[test]
fn by_file_one_row_per_fd_named_by_its_path() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-file");
    let comm = unique_comm("bf");
    let probe = start_top(
        &dir,
        &["--by", "file", "-c", &comm, "-i", "0.3", "--json"],
        "file",
    );
    let mut load = Command::new(LOADGEN)
        .args(["--comm", &comm, "--open-fds", "50", "--hold-ms", "1500"])
        .spawn()
        .unwrap();
    let pid = load.id() as u64;
    // The 50 writes come at once, then the fds stay open 1.5 s: what is
    // shown by then was shown while the process held them.
    thread::sleep(Duration::from_millis(1000));
    let while_open = fs::read_to_string(&probe.stdout_path).unwrap();
    assert!(
        load.try_wait().unwrap().is_none(),
        "loadgen exited within 1 s of its 1.5 s hold"
    );
    assert!(load.wait().unwrap().success());
    thread::sleep(Duration::from_millis(400));
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    assert!(done.stdout.starts_with(&while_open));
    let shown_early = json_rows(&while_open, false).len();
    assert_eq!(shown_early, 50, "rows shown while the fds were open");
    let mut fds = BTreeSet::new();
    for v in &rows {
        assert_eq!(v["by"], "file", "{v}");
        assert_eq!(num(v, "pid"), pid, "{v}");
        assert_eq!(v["comm"], comm.as_str(), "{v}");
        assert_eq!(v["syscall"], "write", "{v}");
        assert_eq!(
            (
                num(v, "calls"),
                num(v, "bytes"),
                num(v, "bytes_requested"),
                num(v, "errors")
            ),
            (1, 1, 1, 0),
            "{v}"
        );
        assert_eq!(v["file"], "/dev/null", "{v}");
        assert!(fds.insert(num(v, "fd")), "fd twice: {v}");
    }
    assert_eq!(rows.len(), 50, "{rows:#?}");
    assert_eq!(done.last_line(), "probe: received=50 lost=0");
    assert_nothing_left();
}

/// Waits (at most 20 s) for a line of `path` that holds every one of
/// `parts`; returns it.
fn wait_for_line(path: &Path, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = fs::read_to_string(path).unwrap();
        if let Some(line) = out.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {parts:?} in:\n{out}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A row's members from `"pid"` to `"errors"`, as printed (what follows
/// is latency, which varies).
fn key_and_counts(line: &str) -> &str {
    let from = line.find(",\"pid\":").unwrap_or_else(|| panic!("{line}"));
    let to = line
        .find(",\"lat_ns_total\":")
        .unwrap_or_else(|| panic!("{line}"));
    &line[from..to]
}

#[test]
fn by_file_json_carries_any_path_exactly_once_and_closed_on_its_own() {
    require_root!();
    let _turn = serial();
    use std::os::unix::ffi::OsStrExt;
    let dir = scratch_dir("top-odd-file");
    let comm = unique_comm("of");
    // A space, a quote, a backslash, a newline and a byte that is not
    // UTF-8; and one that is UTF-8 with a space.
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"a b\"q\\s\nn\xff.txt"));
    let plain = dir.join("plain \u{e9}.txt");
    let probe = start_top(
        &dir,
        &[
            "--by",
            "file",
            "-c",
            &comm,
            "-i",
            "0.2",
            "--json",
            "--cumulative",
        ],
        "file",
    );
    // A thread of this test, named `comm`, writes a byte to each file and
    // holds them open until told to close them.
    let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
    let (fds_tx, fds_rx) = std::sync::mpsc::channel::<(i32, i32)>();
    let holder = {
        let (odd, plain, comm) = (odd.clone(), plain.clone(), comm.clone());
        thread::spawn(move || {
            let name = std::ffi::CString::new(comm).unwrap();
            // SAFETY: names the calling thread; the pointer is a C string.
            assert_eq!(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }, 0);
            use std::io::Write;
            use std::os::fd::AsRawFd;
            let mut a = fs::File::create(&odd).unwrap();
            let mut b = fs::File::create(&plain).unwrap();
            a.write_all(b"x").unwrap();
            b.write_all(b"y").unwrap();
            fds_tx.send((a.as_raw_fd(), b.as_raw_fd())).unwrap();
            close_rx.recv().unwrap();
        })
    };
    let (odd_fd, plain_fd) = fds_rx.recv().unwrap();
    let pid = std::process::id();
    let odd_fd_key = format!("\"fd\":{odd_fd},");
    let plain_fd_key = format!("\"fd\":{plain_fd},");
    let open_odd = wait_for_line(&probe.stdout_path, &[&odd_fd_key, "\"closed\":false"]);
    let open_plain = wait_for_line(&probe.stdout_path, &[&plain_fd_key, "\"closed\":false"]);
    close_tx.send(()).unwrap();
    holder.join().unwrap();
    let closed_odd = wait_for_line(&probe.stdout_path, &[&odd_fd_key, "\"closed\":true"]);
    let closed_plain = wait_for_line(&probe.stdout_path, &[&plain_fd_key, "\"closed\":true"]);
    let done = stop_top(probe);

    // Exactly as printed: the path once, JSON's escapes only; the bytes
    // that are not UTF-8 in file_hex; closed a member of its own.
    let d = dir.display();
    let hex: String = odd
        .as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let counts = "\"syscall\":\"write\",\"calls\":1,\"bytes\":1,\"bytes_requested\":1,\"errors\":0";
    for (line, closed) in [(&open_odd, false), (&closed_odd, true)] {
        assert_eq!(
            key_and_counts(line),
            format!(
                ",\"pid\":{pid},\"comm\":\"{comm}\",\"fd\":{odd_fd},\
                 \"file\":\"{d}/a b\\\"q\\\\s\\nn\u{fffd}.txt\",\"file_hex\":\"{hex}\",\
                 \"closed\":{closed},{counts}"
            ),
            "{line}"
        );
    }
    for (line, closed) in [(&open_plain, false), (&closed_plain, true)] {
        assert_eq!(
            key_and_counts(line),
            format!(
                ",\"pid\":{pid},\"comm\":\"{comm}\",\"fd\":{plain_fd},\
                 \"file\":\"{d}/plain \u{e9}.txt\",\"closed\":{closed},{counts}"
            ),
            "{line}"
        );
    }
    // And as a consumer decodes them: the exact bytes back.
    for (line, path) in [(&closed_odd, &odd), (&closed_plain, &plain)] {
        let v: Value = serde_json::from_str(line).unwrap();
        let bytes = match v.get("file_hex") {
            Some(h) => (0..h.as_str().unwrap().len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h.as_str().unwrap()[i..i + 2], 16).unwrap())
                .collect(),
            None => text(&v, "file").as_bytes().to_vec(),
        };
        assert_eq!(bytes, path.as_os_str().as_bytes(), "{line}");
    }
    assert_eq!(done.last_line(), "probe: received=2 lost=0");
    assert_nothing_left();
}

/// A private tmux server (its own socket) with one session; killed, with
/// everything in it, when dropped, whatever happened.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(tag: &str, cols: u32, rows: u32) -> Tmux {
        let t = Tmux {
            socket: format!("probe-test-{}-{tag}", std::process::id()),
            session: format!("top{tag}"),
        };
        let status = t
            .command()
            .args(["new-session", "-d", "-s", &t.session, "-x"])
            .arg(cols.to_string())
            .arg("-y")
            .arg(rows.to_string())
            .arg("env PS1='$ ' bash --norc --noprofile")
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session");
        t
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and Enter in the pane.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.session, "-l", text]);
        self.run(&["send-keys", "-t", &self.session, "Enter"]);
    }

    fn key(&self, key: &str) {
        self.run(&["send-keys", "-t", &self.session, key]);
    }

    /// The pane as it is on screen now.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    /// The pane's whole history and screen, wrapped lines joined.
    fn history(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", &self.session])
    }

    fn pane(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", &self.session, format])
            .trim()
            .to_string()
    }

    /// Waits (at most `limit`) until `what` holds for the screen (or the
    /// history); panics with what is there.
    fn wait_for(
        &self,
        history: bool,
        limit: Duration,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = if history {
                self.history()
            } else {
                self.screen()
            };
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {limit:?}; the pane:\n{text}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // What runs in the pane (a probe, if a check failed while it ran):
        // the server's end hangs it up, and it is waited for, so that the
        // next test finds nothing of it left.
        let mut left = Vec::new();
        if let Ok(out) = self
            .command()
            .args(["display-message", "-p", "-t", &self.session, "#{pane_pid}"])
            .output()
            && let Ok(pid) = String::from_utf8_lossy(&out.stdout).trim().parse::<u32>()
        {
            left = descendants(pid);
        }
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while left
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}")).exists())
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `pid` and its descendants.
fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        let children =
            fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        all.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
        i += 1;
    }
    all
}

/// A child killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when tmux can be run; when it cannot, the test is skipped unless
/// PROBE_TESTS_NEED_ROOT says every test must run (scripts/test installs
/// tmux).
fn tmux_or_skip() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v tmux"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    assert!(
        std::env::var_os("PROBE_TESTS_NEED_ROOT").is_none(),
        "tmux is needed: apt-get install tmux (PROBE_TESTS_NEED_ROOT says skipping is not allowed)"
    );
    eprintln!("the screen test: skipped: tmux is missing (apt-get install tmux)");
    false
}

/// The words `stty -a` printed in the pane, between two markers.
fn stty_words(t: &Tmux, round: &str) -> Vec<String> {
    // Typed as BE''GIN: the command line does not show the marker itself.
    let (begin, end) = (format!("BEGIN{round}"), format!("END{round}"));
    t.type_line(&format!("echo BE''GIN{round}; stty -a; echo EN''D{round}"));
    let text = t.wait_for(true, Duration::from_secs(10), "stty -a", |s| {
        s.lines().any(|l| l.trim() == end)
    });
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let from = lines.iter().position(|l| *l == begin).expect("begin") + 1;
    let to = lines.iter().position(|l| *l == end).expect("end");
    lines[from..to]
        .iter()
        .flat_map(|l| l.split([' ', ';']))
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// One round of the screen test: start `probe top` in the pane, look at
/// it, shrink the window, look again, leave with `quit_key`, and check
/// what the person sees afterwards: the totals, exit 0, the terminal as it
/// was.
fn screen_round(t: &Tmux, comm: &str, quit_key: &str, round: &str) {
    t.run(&["resize-window", "-t", &t.session, "-x", "120", "-y", "30"]);
    t.type_line("clear");
    t.run(&["clear-history", "-t", &t.session]);
    t.type_line(&format!("{PROBE} top -i 0.3 -c {comm}"));
    let typed = Instant::now();
    let screen = t.wait_for(false, Duration::from_secs(20), "the table", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.first().is_some_and(|l| l.starts_with("probe top "))
            && lines.iter().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.contains(&"PID") && w.contains(&"COMM") && w.contains(&"SYSCALL")
            })
            && lines.iter().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.contains(&comm) && w.contains(&"write")
            })
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 120), "{screen}");
    assert!(screen.contains("q or Ctrl+C: quit"), "{screen}");

    // Smaller: the next frame fits 100x15, title and header on top.
    t.run(&["resize-window", "-t", &t.session, "-x", "100", "-y", "15"]);
    assert_eq!(t.pane("#{pane_width}x#{pane_height}"), "100x15");
    thread::sleep(Duration::from_millis(800));
    let small = t.screen();
    let lines: Vec<&str> = small.lines().collect();
    assert!(lines.len() <= 15, "{} lines:\n{small}", lines.len());
    assert!(lines[0].starts_with("probe top "), "{small}");
    let header: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "PID", "COMM", "SYSCALL", "CALLS", "BYTES", "REQ", "ERR", "AVG_LAT", "ERRNO"
        ],
        "{small}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().any(|w| w == comm)),
        "{small}"
    );

    t.key(quit_key);
    let after = t.wait_for(true, Duration::from_secs(15), "the totals", |s| {
        s.contains("totals of the run") && s.contains("probe: received=")
    });
    // The probe's last frame is gone with the alternate screen.
    assert!(!after.contains("q or Ctrl+C: quit"), "{after}");
    // The totals cover the run: at least its first interval (the table
    // shown above came after it), at most the time since it was typed.
    let title = after
        .lines()
        .find(|l| l.contains("totals of the run"))
        .unwrap_or_else(|| panic!("{after}"));
    let secs: f64 = title
        .split_once("since the start, ")
        .and_then(|(_, rest)| rest.split_once(" s "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no `since the start, N s` in {title:?}"));
    assert!(
        (0.3..=typed.elapsed().as_secs_f64() + 0.05).contains(&secs),
        "{title}"
    );
    t.type_line(&format!("echo rc{round}=$?"));
    t.wait_for(true, Duration::from_secs(10), "the exit status", |s| {
        s.lines().any(|l| l.trim() == format!("rc{round}=0"))
    });
    let words = stty_words(t, round);
    for w in ["icanon", "echo"] {
        assert!(words.iter().any(|x| x == w), "{w} not set: {words:?}");
        let off = format!("-{w}");
        assert!(!words.contains(&off), "{off}: {words:?}");
    }
}

#[test]
fn on_a_terminal_the_screen_fits_redraws_and_gives_the_terminal_back() {
    require_root!();
    if !tmux_or_skip() {
        return;
    }
    let _turn = serial();
    let comm = unique_comm("sc");
    let load = KillOnDrop(
        Command::new(LOADGEN)
            .args(["--comm", &comm, "--writes", "100000000", "--rate", "20000"])
            .spawn()
            .unwrap(),
    );
    let t = Tmux::start("screen", 120, 30);
    screen_round(&t, &comm, "q", "q");
    screen_round(&t, &comm, "C-c", "c");
    drop(t);
    drop(load);
    assert_nothing_left();
}

#[test]
fn a_bad_by_is_a_usage_error_and_help_is_top_s() {
    let out = Command::new(PROBE)
        .args(["top", "--by", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let help = Command::new(PROBE)
        .args(["top", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let top_usage = String::from_utf8_lossy(&help.stdout);
    assert!(top_usage.starts_with("usage: probe top"), "{top_usage}");
    // The error, then top's usage (not the streaming monitor's).
    assert_eq!(
        stderr,
        format!("probe: --by bogus: one of process, thread, syscall, file\n{top_usage}")
    );
    for args in [&["top", "--bogus"][..], &["top", "-i"], &["top", "-n", "0"]] {
        let out = Command::new(PROBE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let (first, rest) = stderr.split_once('\n').unwrap();
        assert!(first.starts_with("probe: "), "{args:?}: {stderr}");
        assert_eq!(rest, top_usage, "{args:?}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-pipe");
    // probe top -i 0.2 | head -1
    let mut probe = Probe::start_with(&dir, &["top", "-i", "0.2"], Stdio::piped(), false);
    let stdout = probe.child.stdout.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    assert!(first.starts_with("probe top "), "{first:?}");
    let closed = Instant::now();
    let done = probe.wait(Duration::from_secs(5));
    assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
    assert!(
        closed.elapsed() < Duration::from_secs(3),
        "{:?}",
        closed.elapsed()
    );
    assert!(
        !done
            .stderr
            .iter()
            .any(|l| l.contains("Broken pipe") || l.contains("error")),
        "{:?}",
        done.stderr
    );
    assert_nothing_left();
}

#[test]
fn a_call_still_in_flight_at_the_stop_is_reported_once() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-inflight");
    let comm = unique_comm("if");
    let probe = start_top(&dir, &["-c", &comm, "-i", "0.3", "--json"], "process");
    // One thread blocked in a read for good (never released).
    let _load = KillOnDrop(
        Command::new(LOADGEN)
            .args([
                "--comm",
                &comm,
                "--blocked-readers",
                "1",
                "--release-after",
                "0",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    thread::sleep(Duration::from_millis(800));
    let done = stop_top(probe);
    assert_eq!(done.stdout, "", "no call returned");
    // top writes no event: a call in flight is not counted, and said so
    // once (not also "written as unfinished", as the streaming monitor
    // writes it).
    let about: Vec<&String> = done
        .stderr
        .iter()
        .filter(|l| l.contains("still in flight at the stop"))
        .collect();
    assert_eq!(
        about,
        ["probe: 1 call was still in flight at the stop: not counted (no result yet)"],
        "{:?}",
        done.stderr
    );
    assert_eq!(done.last_line(), "probe: received=0 lost=0");
    assert_nothing_left();
}

#[test]
fn an_error_s_errno_comes_in_its_call_s_row() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("top-errno");
    let comm = unique_comm("en");
    // Every process's read fails with EBADF, once. The table has room for
    // every key: each row is COMM's, with its calls, its errors filed by
    // errno in the same row (no errno ahead of its call, in a row of no
    // call and no name; no error said unfiled when the errno table has
    // room).
    let probe = start_top(&dir, &["-c", &comm, "-i", "0.05", "--json"], "process");
    let run = Command::new(LOADGEN)
        .args(["--comm", &comm, "--short-procs", "2000"])
        .status()
        .unwrap();
    assert!(run.success());
    thread::sleep(Duration::from_millis(300));
    let done = stop_top(probe);
    let rows = json_rows(&done.stdout, false);
    let bad: Vec<&Value> = rows
        .iter()
        .filter(|v| {
            let filed: u64 = v["errno"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            v["comm"] != comm.as_str()
                || num(v, "calls") == 0
                || filed != num(v, "errors")
                || v.get("errors_unfiled").is_some()
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} rows with an errno apart from its call, e.g.\n{}",
        bad.len(),
        rows.len(),
        bad.iter()
            .take(4)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let got = summed(&rows);
    assert_eq!(got["read"].errors, 2000);
    assert_eq!(got["read"].errno, BTreeMap::from([("EBADF".into(), 2000)]));
    assert_eq!(done.last_line(), "probe: received=4000 lost=0");
    assert_nothing_left();
}

/// A load still running at the stop loses nothing to it: with the entry
/// hooks closed first, every call counted was paired with its return, and
/// the rows add up to the calls the summary line gives. (When the stop
/// disabled the hooks instead, the entries ran on after the returns were
/// gone: thousands of "returns never seen" per run, blamed on the kernel.)
#[test]
fn a_load_running_through_the_stop_is_counted_without_loss() {
    require_root!();
    let _turn = serial();
    for method in ["tracepoint", "raw-tracepoint"] {
        let dir = scratch_dir("top-stop");
        let comm = unique_comm("ts");
        let probe = start_top(
            &dir,
            &["--attach", method, "-c", &comm, "-i", "0.2", "--json"],
            "process",
        );
        let mut load = Command::new(LOADGEN)
            .args(["--comm", &comm, "--writes", "1000000000", "--reads", "0"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(500));
        let done = stop_top(probe);
        load.kill().unwrap();
        load.wait().unwrap();
        let calls = summed(&json_rows(&done.stdout, false))["write"].calls;
        assert!(calls > 10_000, "{method}: {:?}", done.stderr);
        assert_eq!(
            done.last_line(),
            format!("probe: received={calls} lost=0"),
            "{method}: {:?}",
            done.stderr
        );
    }
    assert_nothing_left();
}
