//! `probe top`'s Prometheus metrics (src/app/metrics/) read by the real
//! consumers: a Prometheus server scraping `--metrics-listen` (its query
//! API must give the exact counts of a known load), promtool's checker,
//! node_exporter's textfile collector reading `--metrics-file`; the
//! listener against hostile clients; comms that need escaping. Then what
//! the counters must still be in the corners: failed calls in the
//! kernel's other rows and
//! errors its errno table had no room for (each counted once),
//! `--cumulative` (counts, not re-added totals), `--by syscall|file`
//! (no comm's calls under another's name), the 8 KiB request head.
//!
//! Exporter health: losses scraped while they happen, under the cause
//! stderr names (pending records planted in the probe's table of calls in
//! flight, an eviction made by taking a blocked call's record out), the
//! time of the last update, the README's alert rules through `promtool
//! check rules` and `promtool test rules`. Cardinality: slots by activity
//! with a margin, a flood of 100 names run by nobody then a steady
//! `postgres`, pinned or not. The textfile in a world-writable directory
//! whose guessable names another user took, and a write that fails for a
//! few intervals.
//!
//! Loads of exactly known calls: loadgen under a comm (`-c`), or a
//! `Puppet`, a child forked from the test that makes only the calls it is
//! told, under any bytes as its name (`-p`).
//!
//! Prometheus, promtool and node_exporter are Debian's (scripts/test
//! installs them without starting their services); each test starts its
//! own on 127.0.0.1, on free ports, with temporary data, killed at the end
//! whatever happens. Without them a test says it is skipped, unless
//! PROBE_TESTS_NEED_ROOT says every test must run.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const PROMETHEUS: &str = "prometheus";
const PROMTOOL: &str = "promtool";
const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// The listener's limits (src/app/metrics/listener.rs).
const IDLE_LIMIT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 256;

// ---------------------------------------------------------------------
// The tools, and processes killed when dropped.

/// True when every one of `tools` can be run; when one cannot, the test is
/// skipped unless PROBE_TESTS_NEED_ROOT says every test must run
/// (scripts/test installs them).
fn tools_or_skip(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let test = thread::current().name().unwrap_or("this test").to_string();
    assert!(
        std::env::var_os("PROBE_TESTS_NEED_ROOT").is_none(),
        "{test}: {missing:?} needed: apt-get install prometheus prometheus-node-exporter \
         (PROBE_TESTS_NEED_ROOT says skipping is not allowed)"
    );
    eprintln!(
        "{test}: skipped: {missing:?} missing (apt-get install prometheus prometheus-node-exporter)"
    );
    false
}

/// A port on 127.0.0.1 nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A server of ours (Prometheus, node_exporter): killed and reaped when
/// dropped, its data directory removed.
struct Daemon {
    child: Child,
    log: PathBuf,
    data: Option<PathBuf>,
    addr: SocketAddr,
}

impl Daemon {
    /// Starts `program args` (output to `log`), then waits (20 s at most)
    /// until `ready_path` on `addr` answers 200.
    fn start(
        name: &'static str,
        program: &str,
        args: &[String],
        addr: SocketAddr,
        log: PathBuf,
        data: Option<PathBuf>,
        ready_path: &str,
    ) -> Daemon {
        let out = fs::File::create(&log).expect("daemon log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let mut d = Daemon {
            child,
            log,
            data,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http_get(addr, ready_path)
                && r.status == 200
            {
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{name} exited ({status}) before it was ready:\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready on {addr} within 20 s:\n{}",
                d.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its output so far (the end of it).
    fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.data {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// A Prometheus of our own scraping `target` every second.
fn start_prometheus(dir: &Path, target: SocketAddr) -> Daemon {
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: probe\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let data = dir.join("tsdb");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    Daemon::start(
        "prometheus",
        PROMETHEUS,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
        ],
        addr,
        dir.join("prometheus.log"),
        Some(data),
        "/-/ready",
    )
}

/// A node_exporter of our own with only its textfile collector, reading
/// `textfiles`.
fn start_node_exporter(dir: &Path, textfiles: &Path) -> Daemon {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    Daemon::start(
        "node_exporter",
        NODE_EXPORTER,
        &[
            "--collector.disable-defaults".to_string(),
            "--collector.textfile".to_string(),
            format!("--collector.textfile.directory={}", textfiles.display()),
            format!("--web.listen-address={addr}"),
        ],
        addr,
        dir.join("node_exporter.log"),
        None,
        "/metrics",
    )
}

/// `.NAME.` 16 hex digits `.tmp`: a temporary file of the textfile NAME.
fn is_temp_name(n: &str, name: &str) -> bool {
    n.strip_prefix(&format!(".{name}."))
        .and_then(|r| r.strip_suffix(".tmp"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `promtool check metrics` on `text`: (passed, what it said).
fn promtool_check(text: &[u8]) -> (bool, String) {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    let mut stdin = child.stdin.take().unwrap();
    let body = text.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("promtool");
    writer.join().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

// ---------------------------------------------------------------------
// HTTP, by hand (std::net).

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
    took: Duration,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }
}

/// Sends `request` and reads the answer to its end (the servers here all
/// close the connection after it), 5 s at most.
fn http(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(request)?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let took = started.elapsed();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {:?}", lossy(&all))))?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok(Response {
        status,
        head,
        body: all[end + 4..].to_vec(),
        took,
    })
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]);
    s.into_owned()
}

/// `GET path` over HTTP/1.0 (no chunks to undo).
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    http(
        addr,
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
}

/// A scrape of the probe as Prometheus makes it (HTTP/1.1): 200, the
/// format's content type, a Content-Length that is the body's.
fn scrape(addr: SocketAddr) -> Response {
    let r = http(
        addr,
        format!(
            "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: metrics-test\r\n\
             Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap_or_else(|e| panic!("scrape of {addr}: {e}"));
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        r.head
    );
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str()),
        "{}",
        r.head
    );
    r
}

/// "a b" as a URL's query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query whose answer is one series; None while
/// it has none (and a panic for more than one).
fn prom_query(prom: &Daemon, query: &str) -> Option<String> {
    let r = http_get(
        prom.addr,
        &format!("/api/v1/query?query={}", urlencode(query)),
    )
    .ok()?;
    let v: Value = serde_json::from_slice(&r.body).ok()?;
    assert_eq!(v["status"], "success", "{query}: {v}");
    let result = v["data"]["result"].as_array()?;
    assert!(result.len() <= 1, "{query}: {v}");
    Some(result.first()?["value"][1].as_str()?.to_string())
}

// ---------------------------------------------------------------------
// The exposition, parsed.

/// One sample line: name, labels (values as written, escapes kept), value.
#[derive(Clone, Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: String,
}

impl Sample {
    /// The series' identity: name and labels, sorted.
    fn key(&self) -> String {
        let mut labels = self.labels.clone();
        labels.sort();
        let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        format!("{}{{{}}}", self.name, l.join(","))
    }

    fn number(&self) -> f64 {
        match self.value.as_str() {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {self:?}")),
        }
    }
}

/// Every sample line of a text exposition; panics at a line that is not
/// one (or a comment).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || -> ! { panic!("not a sample line: {line:?}") };
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| bad());
        let name = line[..name_end].to_string();
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                if let Some(after) = l.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let eq = l.find("=\"").unwrap_or_else(|| bad());
                let key = l[..eq].to_string();
                let bytes = l.as_bytes();
                let mut i = eq + 2;
                while bytes.get(i).is_some_and(|&b| b != b'"') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if i >= bytes.len() {
                    bad();
                }
                labels.push((key, l[eq + 2..i].to_string()));
                l = &l[i + 1..];
                l = l.strip_prefix(',').unwrap_or(l);
            }
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| bad());
        assert!(!value.contains(' '), "a timestamp or more: {line:?}");
        out.push(Sample {
            name,
            labels,
            value: value.to_string(),
        });
    }
    out
}

/// The value of the sample `name` whose labels are exactly `labels` (in
/// any order).
fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            let mut l = s.labels.clone();
            l.sort();
            s.name == name && l == want
        })
        .collect();
    assert!(found.len() <= 1, "the same series twice: {found:?}");
    found.first().map(|s| s.number())
}

/// `probe_calls_total{syscall,comm}`.
fn calls(samples: &[Sample], syscall: &str, comm: &str) -> Option<f64> {
    value_of(
        samples,
        "probe_calls_total",
        &[("syscall", syscall), ("comm", comm)],
    )
}

/// The comm labels of the exposition's series.
fn comm_labels(samples: &[Sample]) -> BTreeSet<String> {
    samples
        .iter()
        .filter_map(|s| s.labels.iter().find(|(k, _)| k == "comm"))
        .map(|(_, v)| v.clone())
        .collect()
}

/// A comm as the exposition writes its label value (README): printable
/// ASCII but `"` and `\` as is, every other byte `\xNN`, `\` as `\\`; then
/// every `\` doubled (the format's escaping).
fn label_of(comm: &[u8]) -> String {
    let mut s = String::new();
    for &b in comm {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x21..=0x7e if b != b'"' => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.replace('\\', "\\\\")
}

// ---------------------------------------------------------------------
// The probe, and loads.

/// A running `probe top`: stopped with SIGINT when dropped (a failed
/// check leaves nothing attached for the next test).
struct Top {
    probe: Option<Probe>,
    /// Where it serves /metrics (--metrics-listen).
    addr: Option<SocketAddr>,
    /// The attach method (`probe: attached via METHOD ...`).
    method: String,
}

impl Top {
    /// `probe top -q ARGS`, attached; with --metrics-listen, its address
    /// as it says it (`probe: serving metrics on http://ADDR/metrics`).
    fn start(dir: &Path, args: &[&str]) -> Top {
        let mut all = vec!["top", "-q"];
        all.extend_from_slice(args);
        let mut probe = Probe::start(dir, &all);
        let attached = probe.wait_attached();
        let method = attached
            .strip_prefix("probe: attached via ")
            .and_then(|r| r.split(' ').next())
            .unwrap_or_else(|| panic!("{attached}"))
            .to_string();
        let addr = probe.stderr().iter().find_map(|l| {
            l.strip_prefix("probe: serving metrics on http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        });
        assert_eq!(
            addr.is_some(),
            args.contains(&"--metrics-listen"),
            "{:?}",
            probe.stderr()
        );
        Top {
            probe: Some(probe),
            addr,
            method,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.addr.expect("--metrics-listen")
    }

    fn pid(&self) -> i32 {
        self.probe.as_ref().unwrap().pid()
    }

    /// Stops it with SIGINT: exit 0, nothing on stdout (-q), the summary
    /// line last.
    fn stop(self) -> Finished {
        let done = self.finish();
        assert_eq!(done.stdout, "", "-q writes nothing on stdout");
        done
    }

    /// Stops it with SIGINT: exit 0, the summary line last.
    fn finish(mut self) -> Finished {
        let done = self.probe.take().unwrap().stop(libc::SIGINT);
        assert_eq!(exit_code(&done.status), 0, "{:?}", done.stderr);
        done.counts();
        done
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        if let Some(mut p) = self.probe.take() {
            p.signal(libc::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// Scrapes `top` until `done` holds for the samples (at most `limit`);
/// every scrape is pushed to `seen`. Panics with the last one.
fn scrape_until(
    top: &Top,
    limit: Duration,
    what: &str,
    seen: &mut Vec<Vec<Sample>>,
    done: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = Instant::now() + limit;
    loop {
        let r = scrape(top.addr());
        let samples = parse(r.text());
        seen.push(samples.clone());
        if done(&samples) {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not scraped within {limit:?}; the last scrape:\n{}",
            r.text()
                .lines()
                .filter(|l| l.starts_with("probe_calls_total") || l.starts_with("probe_errors"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs loadgen ARGS to completion.
fn loadgen_ok(args: &[&str]) {
    let out = Command::new(LOADGEN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn loadgen");
    assert!(
        out.status.success(),
        "loadgen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// VmRSS of a process, KiB.
fn vm_rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS: {status}"))
}

/// What a puppet's call is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    /// A 1-byte write to /dev/null: returns 1.
    WriteNull,
    /// A 1-byte read of fd -1: EBADF.
    ReadBadFd,
    /// A 1-byte read of a directory: EISDIR.
    ReadDir,
}

/// One step of a puppet's phase: it names itself `comm` (any bytes, up
/// to 15), then makes `calls` calls, sleeping `pause` after every `every`
/// of them (when both are set).
struct Step {
    comm: Vec<u8>,
    call: Call,
    calls: u64,
    every: u64,
    pause: Duration,
}

/// `calls` writes to /dev/null as `comm`.
fn step(comm: &[u8], calls: u64) -> Step {
    calls_of(comm, Call::WriteNull, calls)
}

fn calls_of(comm: &[u8], call: Call, calls: u64) -> Step {
    Step {
        comm: comm.to_vec(),
        call,
        calls,
        every: 0,
        pause: Duration::ZERO,
    }
}

/// A child process forked from this one that makes exactly the calls of
/// its phases and nothing else (no read, no write but those): it stops
/// itself (SIGSTOP) before its first phase and after each, and goes on at
/// SIGCONT; after the last, SIGCONT ends it. A probe started with `-p`
/// its pid counts only these calls, under names no process could get
/// through exec or loadgen's UTF-8 arguments (a newline, 0xff, ...).
/// Killed and reaped when dropped.
struct Puppet {
    pid: libc::pid_t,
    reaped: bool,
}

/// A step as the child runs it: name, fd, read (else write), calls,
/// every, pause.
type Planned = ([u8; 16], libc::c_int, bool, u64, u64, libc::timespec);

impl Puppet {
    fn start(phases: &[Vec<Step>]) -> Puppet {
        let sink = fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let dir = fs::File::open("/").unwrap();
        // Everything the child uses is made before the fork: between fork
        // and _exit it calls only prctl, read, write, nanosleep and raise.
        let plan: Vec<Vec<Planned>> = phases
            .iter()
            .map(|steps| {
                steps
                    .iter()
                    .map(|s| {
                        assert!(!s.comm.is_empty() && s.comm.len() <= 15 && !s.comm.contains(&0));
                        let mut name = [0u8; 16];
                        name[..s.comm.len()].copy_from_slice(&s.comm);
                        let pause = libc::timespec {
                            tv_sec: s.pause.as_secs() as libc::time_t,
                            tv_nsec: s.pause.subsec_nanos() as libc::c_long,
                        };
                        let (fd, read) = match s.call {
                            Call::WriteNull => (sink.as_raw_fd(), false),
                            Call::ReadBadFd => (-1, true),
                            Call::ReadDir => (dir.as_raw_fd(), true),
                        };
                        (name, fd, read, s.calls, s.every, pause)
                    })
                    .collect()
            })
            .collect();
        // SAFETY: the child only makes the async-signal-safe calls above
        // on memory made before the fork, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                libc::raise(libc::SIGSTOP);
                let mut byte = [b'm'; 1];
                for phase in &plan {
                    for (name, fd, read, calls, every, pause) in phase {
                        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
                        for i in 0..*calls {
                            if *read {
                                libc::read(*fd, byte.as_mut_ptr() as *mut libc::c_void, 1);
                            } else {
                                libc::write(*fd, byte.as_ptr() as *const libc::c_void, 1);
                            }
                            if *every > 0 && i % every == every - 1 {
                                libc::nanosleep(pause, std::ptr::null_mut());
                            }
                        }
                    }
                    libc::raise(libc::SIGSTOP);
                }
                libc::_exit(0);
            }
        }
        drop(sink);
        drop(dir);
        let mut p = Puppet { pid, reaped: false };
        p.wait_stopped(Duration::from_secs(5));
        p
    }

    /// Starts its next phase (or its end, after the last).
    fn go(&self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, libc::SIGCONT) };
    }

    /// Waits until it stops itself (a phase done), `limit` at most.
    fn wait_stopped(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r =
                unsafe { libc::waitpid(self.pid, &mut status, libc::WUNTRACED | libc::WNOHANG) };
            assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
            if r == self.pid {
                assert!(
                    libc::WIFSTOPPED(status),
                    "the puppet ended: status {status:#x}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the puppet did not stop in {limit:?}"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// One whole phase.
    fn phase(&mut self) {
        self.go();
        self.wait_stopped(Duration::from_secs(30));
    }

    /// After its last phase: lets it end, and reaps it (exit 0).
    fn finish(&mut self) {
        self.go();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        assert_eq!(r, self.pid);
        self.reaped = true;
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status:#x}"
        );
    }
}

impl Drop for Puppet {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: our own child, not reaped yet.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

// ---------------------------------------------------------------------
// The tests.

#[test]
fn prometheus_scrapes_the_exact_counts_of_a_known_load() {
    require_root!();
    if !tools_or_skip(&[PROMETHEUS, PROMTOOL]) {
        return;
    }
    let _turn = serial();
    let dir = scratch_dir("metrics-prometheus");
    let comm = unique_comm("mp");
    // A name of loopback (every /etc/hosts has localhost): its IPv4
    // address is bound.
    let top = Top::start(
        &dir,
        &["-i", "0.5", "-c", &comm, "--metrics-listen", "localhost:0"],
    );
    assert_eq!(top.addr().ip().to_string(), "127.0.0.1");
    let prom = start_prometheus(&dir, top.addr());

    // 1234 writes; then 7 processes that each write once and read fd -1
    // (EBADF) once.
    let (n, m) = (1234u64, 7u64);
    loadgen_ok(&["--comm", &comm, "--writes", &n.to_string()]);
    loadgen_ok(&["--comm", &comm, "--short-procs", &m.to_string()]);
    let writes = n + m;

    let q = |name: &str, extra: &str| format!("{name}{{comm=\"{comm}\"{extra}}}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let want = writes.to_string();
    loop {
        let got = prom_query(&prom, &q("probe_calls_total", ",syscall=\"write\""));
        if got.as_deref() == Some(want.as_str()) {
            break;
        }
        if Instant::now() > deadline {
            let targets = http_get(prom.addr, "/api/v1/targets")
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .unwrap_or_default();
            panic!(
                "Prometheus has probe_calls_total{{comm={comm},syscall=write}} = {got:?}, not \
                 {want} after 20 s; targets: {targets}\nits log:\n{}",
                prom.log()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
    let expect = [
        (q("probe_calls_total", ",syscall=\"read\""), m),
        (q("probe_bytes_total", ",syscall=\"write\""), writes),
        (q("probe_bytes_total", ",syscall=\"read\""), 0),
        (
            q("probe_errors_total", ",syscall=\"read\",errno=\"EBADF\""),
            m,
        ),
        (
            q("probe_latency_seconds_count", ",syscall=\"write\""),
            writes,
        ),
        (
            q(
                "probe_latency_seconds_bucket",
                ",syscall=\"write\",le=\"+Inf\"",
            ),
            writes,
        ),
        (q("probe_latency_seconds_count", ",syscall=\"read\""), m),
        (format!("count(probe_errors_total{{comm=\"{comm}\"}})"), 1),
        (
            "probe_events_lost_total{cause=\"missed_return\"}".to_string(),
            0,
        ),
        ("probe_events_lost_total{cause=\"evicted\"}".to_string(), 0),
        ("probe_map_overflow_total".to_string(), 0),
        ("up{job=\"probe\"}".to_string(), 1),
        (
            format!(
                "probe_build_info{{attach=\"{}\",version=\"{}\"}}",
                top.method,
                env!("CARGO_PKG_VERSION")
            ),
            1,
        ),
    ];
    let got: Vec<(String, Option<String>)> = expect
        .iter()
        .map(|(query, _)| (query.clone(), prom_query(&prom, query)))
        .collect();
    let want: Vec<(String, Option<String>)> = expect
        .iter()
        .map(|(query, v)| (query.clone(), Some(v.to_string())))
        .collect();
    assert_eq!(got, want);
    // Every write took less than 2^39 ns: the largest finite bucket holds
    // them all too, and the buckets are cumulative.
    let bound = prom_query(
        &prom,
        &format!(
            "histogram_quantile(1, probe_latency_seconds_bucket{{comm=\"{comm}\",syscall=\"write\"}})"
        ),
    );
    let top_bound: f64 = bound.as_deref().unwrap_or("NaN").parse().unwrap();
    assert!(
        top_bound > 0.0 && top_bound <= 549.755813888,
        "quantile 1: {bound:?}"
    );

    // The exposition itself passes promtool's checks.
    let r = scrape(top.addr());
    let (ok, said) = promtool_check(&r.body);
    eprintln!(
        "promtool check metrics (a scrape of {} bytes): ok={ok} {said:?}",
        r.body.len()
    );
    assert!(ok, "promtool check metrics failed:\n{said}\n{}", r.text());
    assert_eq!(said.trim(), "", "promtool's lint");

    drop(prom);
    let done = top.stop();
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", writes + m)
    );
    assert_nothing_left();
}

#[test]
fn node_exporter_serves_the_textfile_with_the_exact_counts() {
    require_root!();
    if !tools_or_skip(&[NODE_EXPORTER, PROMTOOL]) {
        return;
    }
    let _turn = serial();
    let dir = scratch_dir("metrics-textfile");
    let textfiles = dir.join("textfile");
    fs::create_dir_all(&textfiles).unwrap();
    // node_exporter's user's directory (0755), not root's: the probe keeps
    // what it needs to write there after dropping its privileges.
    std::os::unix::fs::chown(&textfiles, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&textfiles, fs::Permissions::from_mode(0o755)).unwrap();
    let file = textfiles.join("probe.prom");
    let comm = unique_comm("mt");
    // A umask that takes the group's and others' read bits: the file is
    // 0644 all the same (node_exporter runs as a user of its own).
    // SAFETY: umask has no preconditions; the tests of this file take
    // turns (serial), and the probe inherits it.
    let old = unsafe { libc::umask(0o077) };
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.5",
            "-c",
            &comm,
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let node = start_node_exporter(&dir, &textfiles);

    let n = 1234u64;
    loadgen_ok(&["--comm", &comm, "--writes", &n.to_string()]);
    let mut listings = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let names: BTreeSet<String> = fs::read_dir(&textfiles)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        listings.extend(names);
        let r = http_get(node.addr, "/metrics").expect("node_exporter /metrics");
        assert_eq!(r.status, 200, "{}", r.head);
        let text = r.text().to_string();
        let samples = parse(&text);
        if calls(&samples, "write", &comm) == Some(n as f64) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter has not {n} writes of {comm} after 10 s:\n{}\nits log:\n{}",
            text.lines()
                .filter(|l| l.starts_with("probe_calls") || l.starts_with("node_textfile"))
                .collect::<Vec<_>>()
                .join("\n"),
            node.log()
        );
        thread::sleep(Duration::from_millis(200));
    };
    // As node_exporter writes it: labels sorted.
    let line = format!("probe_calls_total{{comm=\"{comm}\",syscall=\"write\"}} {n}");
    assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    let samples = parse(&text);
    assert_eq!(
        value_of(&samples, "node_textfile_scrape_error", &[]),
        Some(0.0)
    );
    assert!(
        value_of(
            &samples,
            "node_textfile_mtime_seconds",
            &[("file", file.to_str().unwrap())]
        )
        .is_some()
            || value_of(
                &samples,
                "node_textfile_mtime_seconds",
                &[("file", "probe.prom")]
            )
            .is_some(),
        "no node_textfile_mtime_seconds for the file:\n{text}"
    );
    assert_eq!(
        value_of(
            &samples,
            "probe_latency_seconds_count",
            &[("comm", &comm), ("syscall", "write")]
        ),
        Some(n as f64)
    );
    assert_eq!(
        value_of(
            &samples,
            "probe_bytes_total",
            &[("comm", &comm), ("syscall", "write")]
        ),
        Some(n as f64)
    );

    let meta = fs::symlink_metadata(&file).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.mode() & 0o7777, 0o644, "{:o}", meta.mode());
    assert!(
        listings
            .iter()
            .all(|n| n == "probe.prom" || is_temp_name(n, "probe.prom")),
        "files in the directory while it ran: {listings:?}"
    );

    drop(node);
    let done = top.stop();
    assert_eq!(done.last_line(), format!("probe: received={n} lost=0"));
    let left: Vec<String> = fs::read_dir(&textfiles)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["probe.prom"], "no temporary file left");
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644, "{:o}", meta.mode());
    // The last interval's text, whole.
    let last = fs::read(&file).unwrap();
    let (ok, said) = promtool_check(&last);
    assert!(ok, "promtool check metrics on the file:\n{said}");
    let samples = parse(std::str::from_utf8(&last).unwrap());
    assert_eq!(calls(&samples, "write", &comm), Some(n as f64));
    assert_nothing_left();
}

#[test]
fn hostile_clients_neither_stop_nor_swell_the_listener() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-hostile");
    // 120 names with a write each (a big response: ~4.5 KB per series
    // set), then 60,000 writes under one name, paced over ~6 s: the load
    // counted while the clients below do their worst.
    let names: Vec<Vec<u8>> = (0..120).map(|i| format!("hz{i:03}").into_bytes()).collect();
    let load = b"hzload".to_vec();
    let load_writes = 60_000u64;
    let big: Vec<Step> = names.iter().map(|n| step(n, 1)).collect();
    let mut puppet = Puppet::start(&[
        big,
        vec![Step {
            every: 10,
            pause: Duration::from_millis(1),
            ..step(&load, load_writes)
        }],
    ]);
    let pid = puppet.pid.to_string();
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.5",
            "-p",
            &pid,
            "--metrics-comms",
            "200",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let addr = top.addr();
    let mut seen = Vec::new();
    puppet.phase();
    scrape_until(
        &top,
        Duration::from_secs(10),
        "the 120 names",
        &mut seen,
        |s| {
            names
                .iter()
                .all(|n| calls(s, "write", std::str::from_utf8(n).unwrap()) == Some(1.0))
        },
    );
    let full = scrape(addr);
    assert!(
        full.body.len() > 300_000,
        "a response of {} bytes only",
        full.body.len()
    );
    let mut rss_max = vm_rss_kib(top.pid());
    puppet.go();
    let load_started = Instant::now();

    // A connection that sends nothing; 200 more.
    let opened = Instant::now();
    let silent = TcpStream::connect(addr).unwrap();
    let crowd: Vec<TcpStream> = (0..200)
        .map(|i| {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    // Three that ask for the big response and never read it.
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let deaf: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    // 1 MB of one header, no end: answered 431 or closed, never read
    // whole into memory.
    let flood = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let mut req = b"GET /metrics HTTP/1.1\r\nX-Junk: ".to_vec();
        req.resize(1 << 20, b'a');
        let written = s.write_all(&req);
        let mut answer = Vec::new();
        let read = s.read_to_end(&mut answer);
        (started.elapsed(), written, read, answer)
    });
    // A request cut short, then the client's side closed.
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    let r = half.read_to_end(&mut got);
    assert!(
        r.is_ok()
            && (got.is_empty() || got.starts_with(b"HTTP/1.1 400 "))
            && t.elapsed() < Duration::from_secs(2),
        "a half-closed request cut short: {r:?} {:?} after {:?} (closed, or 400, expected)",
        lossy(&got),
        t.elapsed()
    );
    // A whole request, then the client's side closed: answered whole.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "{:?}", lossy(&got));
    // A head just over 8 KiB, then silence: 431, exactly.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    req.resize(9000, b'b');
    s.write_all(&req).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    assert!(
        r.is_ok() && got.starts_with(b"HTTP/1.1 431 "),
        "a head of 9000 bytes: {r:?} {:?}",
        lossy(&got)
    );

    // Meanwhile, scrapes: whole, in less than a second each.
    let mut slowest = Duration::ZERO;
    let mut scrapes = 0;
    while load_started.elapsed() < Duration::from_secs(5) || scrapes < 10 {
        let r = scrape(addr);
        parse(r.text());
        slowest = slowest.max(r.took);
        scrapes += 1;
        rss_max = rss_max.max(vm_rss_kib(top.pid()));
        thread::sleep(Duration::from_millis(200));
    }
    let (took, written, read, answer) = flood.join().unwrap();
    let flood_said = format!(
        "1 MB head: write {written:?}, read {read:?}, answer {:?}, after {took:?}",
        lossy(&answer)
    );
    eprintln!("{flood_said}");
    // A server that stopped reading but kept the connection would leave
    // the write or the read waiting for their 5 s.
    let waited =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    assert!(
        took < Duration::from_secs(4)
            && !written.as_ref().is_err_and(waited)
            && !read.as_ref().is_err_and(waited)
            && (answer.is_empty() || answer.starts_with(b"HTTP/1.1 431 ")),
        "neither 431 nor closed: {flood_said}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the slowest of {scrapes} scrapes took {slowest:?}"
    );
    rss_max = rss_max.max(vm_rss_kib(top.pid()));
    assert!(rss_max < 64 * 1024, "VmRSS up to {rss_max} KiB");

    // The other answers.
    let r = http(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 404, "{}", r.head);
    let r = http(addr, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(r.status, 405, "{}", r.head);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"), "{}", r.head);

    puppet.wait_stopped(Duration::from_secs(30));
    let load_label = std::str::from_utf8(&load).unwrap();
    scrape_until(&top, Duration::from_secs(5), "the load", &mut seen, |s| {
        calls(s, "write", load_label) == Some(load_writes as f64)
    });
    // Nothing counts any more: HEAD's length is GET's.
    let get = scrape(addr);
    let head = http(addr, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(head.status, 200, "{}", head.head);
    assert!(
        head.body.is_empty(),
        "HEAD with a body: {}",
        lossy(&head.body)
    );
    assert_eq!(
        head.header("Content-Length"),
        Some(get.body.len().to_string().as_str()),
        "{}",
        head.head
    );

    // Past the idle limit, the server has let every one of them go.
    let wait = (opened + IDLE_LIMIT + Duration::from_millis(1500))
        .saturating_duration_since(Instant::now());
    thread::sleep(wait);
    let closed = |s: &TcpStream| {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match (&*s).read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
            Ok(_) => panic!("a silent connection got an answer"),
        }
    };
    let open: Vec<usize> = std::iter::once(&silent)
        .chain(&crowd)
        .enumerate()
        .filter(|(_, s)| !closed(s))
        .map(|(i, _)| i)
        .collect();
    assert!(
        open.is_empty(),
        "{} of 201 silent connections still open {:?} after they were made: {open:?}",
        open.len(),
        opened.elapsed()
    );
    for mut s in deaf {
        // What the server sent before it let go, then its end.
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
            "a client that never read: {r:?} after {} bytes",
            got.len()
        );
    }
    drop(crowd);
    drop(silent);

    // More connections than it holds: the oldest go, a scrape still works.
    let many: Vec<TcpStream> = (0..MAX_CONNECTIONS + 44)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let r = scrape(addr);
    assert!(r.took < Duration::from_secs(1), "{:?}", r.took);
    thread::sleep(Duration::from_millis(300));
    let dropped = many.iter().filter(|s| closed(s)).count();
    assert!(
        (44..=45).contains(&dropped),
        "{dropped} of {} connections dropped",
        many.len()
    );
    drop(many);
    rss_max = rss_max.max(vm_rss_kib(top.pid()));
    assert!(rss_max < 64 * 1024, "VmRSS up to {rss_max} KiB");
    eprintln!(
        "hostile clients: {scrapes} scrapes, the slowest {slowest:?}; VmRSS at most {rss_max} \
         KiB; the big response {} bytes",
        full.body.len()
    );

    puppet.finish();
    let done = top.stop();
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", 120 + load_writes)
    );
    assert_nothing_left();
}

#[test]
fn hostile_comms_are_escaped_into_valid_distinct_series() {
    require_root!();
    if !tools_or_skip(&[PROMTOOL, NODE_EXPORTER]) {
        return;
    }
    let _turn = serial();
    let dir = scratch_dir("metrics-comms");
    let textfiles = dir.join("textfile");
    fs::create_dir_all(&textfiles).unwrap();
    // Each name with its own number of writes, and the label it must get
    // (written out by hand: the README's escaping, then `\` doubled).
    let cases: [(&[u8], u64, &str); 8] = [
        (b"q\"uote", 3, r"q\\x22uote"),
        (b"back\\slash", 5, r"back\\\\slash"),
        (b"new\nline", 7, r"new\\x0aline"),
        (b"byte\xff", 11, r"byte\\xff"),
        (b"x\"", 13, r"x\\x22"),
        (b"x\\x22", 17, r"x\\\\x22"),
        (b"sp ace\t{}=,", 19, r"sp\\x20ace\\x09{}=,"),
        (
            b"\xe2\x82\xac\x1b[0m\"\\",
            23,
            r"\\xe2\\x82\\xac\\x1b[0m\\x22\\\\",
        ),
    ];
    for (comm, _, label) in &cases {
        assert_eq!(label_of(comm), *label, "{comm:?}");
    }
    let steps: Vec<Step> = cases.iter().map(|(c, k, _)| step(c, *k)).collect();
    let mut puppet = Puppet::start(&[steps]);
    let pid = puppet.pid.to_string();
    let file = textfiles.join("probe.prom");
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.3",
            "-p",
            &pid,
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    let node = start_node_exporter(&dir, &textfiles);
    puppet.phase();
    let mut seen = Vec::new();
    let samples = scrape_until(&top, Duration::from_secs(10), "the names", &mut seen, |s| {
        cases
            .iter()
            .all(|(_, k, label)| calls(s, "write", label) == Some(*k as f64))
    });
    assert_eq!(
        comm_labels(&samples),
        cases.iter().map(|(_, _, l)| l.to_string()).collect(),
        "one series per name, none else"
    );
    for (_, k, label) in &cases {
        let count = value_of(
            &samples,
            "probe_latency_seconds_count",
            &[("syscall", "write"), ("comm", label)],
        );
        assert_eq!(count, Some(*k as f64), "{label}");
    }
    let r = scrape(top.addr());
    let (ok, said) = promtool_check(&r.body);
    eprintln!("promtool check metrics (hostile comms): ok={ok} {said:?}");
    assert!(ok, "promtool check metrics failed:\n{said}");
    assert_eq!(said.trim(), "", "promtool's lint");
    assert!(
        r.text().lines().all(|l| l.is_ascii()),
        "a byte that is not ASCII"
    );

    // node_exporter read the file with Prometheus' own parser and wrote
    // it out again: the same label values, so the same text.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = http_get(node.addr, "/metrics").unwrap();
        let s = parse(text.text());
        let got: Vec<Option<f64>> = cases
            .iter()
            .map(|(_, _, label)| calls(&s, "write", label))
            .collect();
        let want: Vec<Option<f64>> = cases.iter().map(|(_, k, _)| Some(*k as f64)).collect();
        if got == want {
            assert_eq!(value_of(&s, "node_textfile_scrape_error", &[]), Some(0.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter's values: {got:?}, not {want:?}:\n{}\n{}",
            text.text()
                .lines()
                .filter(|l| l.starts_with("probe_calls") || l.starts_with("node_textfile"))
                .collect::<Vec<_>>()
                .join("\n"),
            node.log()
        );
        thread::sleep(Duration::from_millis(200));
    }

    puppet.finish();
    drop(node);
    let done = top.stop();
    let total: u64 = cases.iter().map(|(_, k, _)| k).sum();
    assert_eq!(done.last_line(), format!("probe: received={total} lost=0"));
    assert_nothing_left();
}

/// Over successive scrapes: no series goes down from one scrape to the
/// next, and one that comes back after it went away (its name lost its
/// slot, then won one back) comes back where it was, or higher.
fn assert_never_goes_back(seen: &[Vec<Sample>]) {
    let mut last: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let mut went_back = Vec::new();
    for (i, scrape) in seen.iter().enumerate() {
        for s in scrape {
            if let Some(&(j, before)) = last.get(&s.key())
                && s.number() < before
            {
                went_back.push(format!(
                    "{}: {before} (scrape {j}) -> {} (scrape {i})",
                    s.key(),
                    s.value
                ));
            }
            last.insert(s.key(), (i, s.number()));
        }
    }
    assert!(
        went_back.is_empty(),
        "over {} scrapes:\n{}",
        seen.len(),
        went_back.join("\n")
    );
}

/// `probe_calls_total{syscall="write"}` of every series ever scraped, at
/// its last value: each call is in exactly one series, so they add up to
/// the calls made.
fn writes_ever(seen: &[Vec<Sample>]) -> BTreeMap<String, f64> {
    let mut last = BTreeMap::new();
    for scrape in seen {
        for s in scrape.iter().filter(|s| s.name == "probe_calls_total") {
            if s.labels
                .contains(&("syscall".to_string(), "write".to_string()))
            {
                let comm = s.labels.iter().find(|(k, _)| k == "comm").unwrap();
                last.insert(comm.1.clone(), s.number());
            }
        }
    }
    last
}

#[test]
fn slots_go_to_the_most_active_names_past_a_margin_and_no_series_goes_back() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-slots");
    let (a, b, c) = (b"slotA", b"slotB", b"slotC");
    // Two slots. Each phase's calls take microseconds: one interval's.
    let mut puppet = Puppet::start(&[
        vec![step(a, 4), step(b, 6)],
        vec![step(c, 5)],
        vec![step(c, 5)],
        vec![step(a, 20)],
    ]);
    let pid = puppet.pid.to_string();
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.3",
            "-p",
            &pid,
            "--metrics-comms",
            "2",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let mut seen = Vec::new();
    let state = |s: &[Sample]| {
        [
            calls(s, "write", "slotA"),
            calls(s, "write", "slotB"),
            calls(s, "write", "slotC"),
            calls(s, "write", "other"),
        ]
    };
    seen.push(parse(scrape(top.addr()).text()));
    // A and B take the two free slots.
    puppet.phase();
    scrape_until(&top, Duration::from_secs(10), "A and B", &mut seen, |s| {
        state(s) == [Some(4.0), Some(6.0), None, None]
    });
    // C: 5 calls, not more than twice A's 4 (the least active holder):
    // other.
    puppet.phase();
    scrape_until(
        &top,
        Duration::from_secs(10),
        "C as other",
        &mut seen,
        |s| state(s) == [Some(4.0), Some(6.0), None, Some(5.0)],
    );
    // 5 more: C's activity is about 10 now, more than 2 x 4: it takes A's
    // slot, from this interval's calls on. A's series is no longer
    // written.
    puppet.phase();
    scrape_until(
        &top,
        Duration::from_secs(10),
        "C takes A's slot",
        &mut seen,
        |s| state(s) == [None, Some(6.0), Some(5.0), Some(5.0)],
    );
    // A comes back with 20 calls, more than 2 x B's 6: it takes B's slot
    // and its series goes on from 4.
    puppet.phase();
    let last = scrape_until(
        &top,
        Duration::from_secs(10),
        "A takes B's slot",
        &mut seen,
        |s| state(s) == [Some(24.0), None, Some(5.0), Some(5.0)],
    );
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(350));
        seen.push(parse(scrape(top.addr()).text()));
    }
    assert_eq!(state(seen.last().unwrap()), state(&last));
    assert_eq!(
        comm_labels(&last),
        ["other", "slotA", "slotC"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // The kernel's table had room: nothing of "other" is overflow.
    assert_eq!(value_of(&last, "probe_map_overflow_total", &[]), Some(0.0));
    assert_never_goes_back(&seen);
    // Every call in one series: 4 + 6 + 5 + 5 + 20.
    let ever = writes_ever(&seen);
    assert_eq!(ever.values().sum::<f64>(), 40.0, "{ever:?}");
    assert!(seen.len() >= 6, "{} scrapes", seen.len());

    puppet.finish();
    let done = top.stop();
    assert_eq!(done.last_line(), "probe: received=40 lost=0");
    assert_nothing_left();
}

/// `probe_errors_total{syscall,comm,errno}` of one (syscall, comm): errno
/// -> count.
fn errors_of(samples: &[Sample], syscall: &str, comm: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter(|s| s.name == "probe_errors_total")
        .filter(|s| {
            let l = |k: &str| {
                s.labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            l("syscall") == Some(syscall) && l("comm") == Some(comm)
        })
        .map(|s| {
            let errno = s.labels.iter().find(|(k, _)| k == "errno").unwrap();
            (errno.1.clone(), s.number())
        })
        .collect()
}

/// Every (syscall, comm) whose errors outnumber its calls.
fn errors_past_calls(samples: &[Sample]) -> Vec<String> {
    let mut errors: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == "probe_errors_total") {
        let l = |k: &str| s.labels.iter().find(|(n, _)| n == k).unwrap().1.clone();
        *errors.entry((l("syscall"), l("comm"))).or_default() += s.number();
    }
    errors
        .into_iter()
        .filter_map(|((syscall, comm), n)| {
            let c = calls(samples, &syscall, &comm).unwrap_or(0.0);
            (n > c).then(|| format!("{syscall} {comm}: {n} errors, {c} calls"))
        })
        .collect()
}

#[test]
fn failed_calls_of_the_kernel_s_other_rows_are_counted_once() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-other-errors");
    // A table of one row: the first write has it, every read after goes
    // to the syscall's other row, each failing with EBADF, one after the
    // other for ~0.5 s (calls returning while each interval reads the
    // table).
    let flood = 300_000u64;
    let mut puppet = Puppet::start(&[vec![
        step(b"ovkeyed", 1),
        calls_of(b"ovflood", Call::ReadBadFd, flood),
    ]]);
    let pid = puppet.pid.to_string();
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.05",
            "-p",
            &pid,
            "--keys",
            "1",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    puppet.phase();
    let mut seen = Vec::new();
    scrape_until(&top, Duration::from_secs(10), "the reads", &mut seen, |s| {
        calls(s, "read", "other") == Some(flood as f64)
    });
    // A few intervals more: anything late is in.
    thread::sleep(Duration::from_millis(300));
    let s = parse(scrape(top.addr()).text());
    assert_eq!(calls(&s, "write", "ovkeyed"), Some(1.0));
    assert_eq!(calls(&s, "read", "other"), Some(flood as f64));
    assert_eq!(
        value_of(&s, "probe_map_overflow_total", &[]),
        Some(flood as f64)
    );
    // Each failed read once, under its errno: none "unknown" (the errno
    // table of the other rows has a slot for every errno).
    assert_eq!(
        errors_of(&s, "read", "other"),
        BTreeMap::from([("EBADF".to_string(), flood as f64)]),
        "the errors of {flood} reads of fd -1 in the other row"
    );
    assert_eq!(errors_past_calls(&s), Vec::<String>::new());

    puppet.finish();
    let done = top.stop();
    assert_eq!(
        done.last_line(),
        format!("probe: received={} lost=0", flood + 1)
    );
    assert_nothing_left();
}

#[test]
fn an_error_the_errno_table_had_no_room_for_is_counted_once() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-errno-full");
    // Two rows, and so room for two (row, errno) counts: A's read row
    // takes both (EBADF, EISDIR); B's read row is the second row, but its
    // EBADF has no room: the kernel files it under the other row's errnos.
    let mut puppet = Puppet::start(&[vec![
        calls_of(b"efullA", Call::ReadBadFd, 1),
        calls_of(b"efullA", Call::ReadDir, 1),
        calls_of(b"efullB", Call::ReadBadFd, 1),
    ]]);
    let pid = puppet.pid.to_string();
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.2",
            "-p",
            &pid,
            "--keys",
            "2",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    puppet.phase();
    let mut seen = Vec::new();
    scrape_until(&top, Duration::from_secs(10), "the reads", &mut seen, |s| {
        calls(s, "read", "efullA") == Some(2.0) && calls(s, "read", "efullB") == Some(1.0)
    });
    thread::sleep(Duration::from_millis(500));
    let s = parse(scrape(top.addr()).text());
    assert_eq!(
        errors_of(&s, "read", "efullA"),
        BTreeMap::from([("EBADF".to_string(), 1.0), ("EISDIR".to_string(), 1.0)])
    );
    // Three reads failed: three errors in all, whatever labels they
    // have (its EBADF is counted under "other", where the kernel filed it).
    let all: f64 = s
        .iter()
        .filter(|x| x.name == "probe_errors_total")
        .map(Sample::number)
        .sum();
    let listed: Vec<String> = s
        .iter()
        .filter(|x| x.name == "probe_errors_total")
        .map(|x| format!("{} {}", x.key(), x.value))
        .collect();
    assert_eq!(
        all,
        3.0,
        "3 reads failed; the exposition's errors:\n{}",
        listed.join("\n")
    );
    // B's EBADF is where the kernel filed it, under comm="other": that
    // series has an error and no call (the README says so); every other
    // series has no more errors than calls.
    assert_eq!(
        errors_past_calls(&s),
        vec!["read other: 1 errors, 0 calls".to_string()]
    );

    puppet.finish();
    let done = top.stop();
    assert_eq!(done.last_line(), "probe: received=3 lost=0");
    assert_nothing_left();
}

#[test]
fn cumulative_tables_do_not_inflate_the_counters() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-cumulative");
    let comm = unique_comm("mc");
    // --cumulative changes what the tables show (counts since the start),
    // not what the counters count.
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.2",
            "--cumulative",
            "-c",
            &comm,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let n = 1234u64;
    loadgen_ok(&["--comm", &comm, "--writes", &n.to_string()]);
    let mut seen = Vec::new();
    let first = scrape_until(
        &top,
        Duration::from_secs(10),
        "the writes",
        &mut seen,
        |s| calls(s, "write", &comm).is_some_and(|v| v >= n as f64),
    );
    // Five intervals with no call.
    thread::sleep(Duration::from_millis(1000));
    let later = parse(scrape(top.addr()).text());
    assert_eq!(
        (calls(&first, "write", &comm), calls(&later, "write", &comm)),
        (Some(n as f64), Some(n as f64)),
        "probe_calls_total of {n} writes: when first seen, and 1 s later"
    );
    let done = top.stop();
    assert_eq!(done.last_line(), format!("probe: received={n} lost=0"));
    assert_nothing_left();
}

#[test]
fn a_comm_label_counts_only_that_comm_s_calls_whatever_the_key() {
    require_root!();
    let _turn = serial();
    // With --by syscall or --by file the kernel's rows are not per comm
    // (a row's comm is its first caller's): the exposition must not put
    // B's calls under A's name. (Refusing the combination would do too.)
    let mut wrong = Vec::new();
    for by in ["syscall", "file"] {
        let dir = scratch_dir(&format!("metrics-by-{by}"));
        let mut puppet = Puppet::start(&[vec![step(b"byA", 3), step(b"byB", 5)]]);
        let pid = puppet.pid.to_string();
        let mut probe = Probe::start(
            &dir,
            &[
                "top",
                "-q",
                "-i",
                "0.2",
                "--by",
                by,
                "-p",
                &pid,
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let refused = loop {
            if probe
                .stderr()
                .iter()
                .any(|l| l.starts_with("probe: attached"))
            {
                break None;
            }
            if let Ok(Some(status)) = probe.child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                break Some((exit_code(&status), probe.stderr()));
            }
            assert!(Instant::now() < deadline, "{:?}", probe.stderr());
            thread::sleep(Duration::from_millis(10));
        };
        if let Some((code, stderr)) = refused {
            assert_eq!(code, 2, "--by {by} with --metrics-listen: {stderr:?}");
            assert!(
                stderr.iter().any(|l| l.contains("--by")),
                "refused without saying why: {stderr:?}"
            );
            continue;
        }
        let addr = probe
            .stderr()
            .iter()
            .find_map(|l| {
                l.strip_prefix("probe: serving metrics on http://")?
                    .strip_suffix("/metrics")?
                    .parse()
                    .ok()
            })
            .expect("the address");
        let top = Top {
            probe: Some(probe),
            addr: Some(addr),
            method: String::new(),
        };
        puppet.phase();
        let total = |s: &[Sample]| -> f64 {
            s.iter()
                .filter(|x| {
                    x.name == "probe_calls_total"
                        && x.labels.iter().any(|(k, v)| k == "syscall" && v == "write")
                })
                .map(Sample::number)
                .sum()
        };
        let mut seen = Vec::new();
        let s = scrape_until(&top, Duration::from_secs(10), "8 writes", &mut seen, |s| {
            total(s) >= 8.0
        });
        let (a, b) = (calls(&s, "write", "byA"), calls(&s, "write", "byB"));
        if total(&s) != 8.0 || a.is_some_and(|v| v != 3.0) || b.is_some_and(|v| v != 5.0) {
            wrong.push(format!(
                "--by {by}: A made 3 writes, B 5; the exposition: {}",
                s.iter()
                    .filter(|x| x.name == "probe_calls_total")
                    .map(|x| format!("{} {}", x.key(), x.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        puppet.finish();
        let done = top.stop();
        assert_eq!(done.last_line(), "probe: received=8 lost=0");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_nothing_left();
}

#[test]
fn a_request_head_over_8_kib_is_answered_431() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-head-limit");
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.5",
            "-c",
            &unique_comm("mh"),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    // README: "431 for a request head over 8 KiB": whole heads (their
    // blank line included) of these sizes, sent at once.
    let mut got = Vec::new();
    let mut want = Vec::new();
    for size in [8000usize, 8192, 8193, 9000, 10240, 10241, 12000] {
        let mut req = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
        req.resize(size - 4, b'b');
        req.extend_from_slice(b"\r\n\r\n");
        let r = http(top.addr(), &req).unwrap();
        got.push((size, r.status));
        want.push((size, if size <= 8192 { 200 } else { 431 }));
    }
    drop(top);
    assert_eq!(got, want, "(head size, status)");
    assert_nothing_left();
}

// ---------------------------------------------------------------------
// Exporter health: losses as they happen, the time of the last update,
// the alert rules; cardinality that cannot be blinded; the textfile in a
// shared directory.

/// The probe's `inflight` map (a call's record by thread id, `--exit` and
/// `top`), opened by its id, found among the probe's fds (the only LRU
/// hash of its size).
fn inflight_map(pid: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
    let size = probe::app::abi::INFLIGHT_SIZE.to_string();
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        let field = |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
        if field("map_type:") != Some("9") || field("value_size:") != Some(size.as_str()) {
            continue;
        }
        let id: u32 = field("map_id:").unwrap().parse().unwrap();
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&id.to_ne_bytes());
        // SAFETY: attr is a zeroed bpf_attr prefix of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_GET_FD_BY_ID,
                attr.as_mut_ptr(),
                16u32,
            )
        };
        assert!(fd >= 0, "map {id}: {}", std::io::Error::last_os_error());
        // SAFETY: a new fd the kernel just gave us.
        return unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    }
    panic!("no inflight map among the fds of {pid}");
}

/// What a call's entry leaves and its return has not taken yet: a record
/// in `inflight` marked pending. The next entry of that thread finds it
/// and counts a return never seen, as when the kernel skipped the exit
/// program (tracepoints) or a return probe's maxactive did (kprobes).
fn plant_pending_record(map: &std::os::fd::OwnedFd, tid: i32) {
    use std::os::fd::AsFd;
    let mut value = [0u8; probe::app::abi::INFLIGHT_SIZE];
    // struct event's flags (bpf/event.h), at byte 38.
    value[38..40].copy_from_slice(&probe::app::abi::EVENT_PENDING.to_ne_bytes());
    // SAFETY: a u32 key and a value of the map's value size.
    unsafe { probe::sys::bpf::map_update(map.as_fd(), &(tid as u32).to_ne_bytes(), &value) }
        .expect("update inflight");
}

/// The sum of N over the stderr lines `probe: lost N UNIT: ... [cause]`.
fn said_lost(stderr: &[String], cause: &str) -> u64 {
    stderr
        .iter()
        .filter(|l| l.ends_with(&format!(" [{cause}]")))
        .map(|l| {
            let n = l
                .strip_prefix("probe: lost ")
                .unwrap_or_else(|| panic!("{l}"));
            n.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

/// `probe top ARGS` with stdout to a file (for --json): attached, its
/// metrics' address and attach method.
fn top_with_stdout(dir: &Path, args: &[&str]) -> (Probe, SocketAddr, String) {
    let mut all = vec!["top"];
    all.extend_from_slice(args);
    let mut probe = Probe::start(dir, &all);
    let attached = probe.wait_attached();
    let method = attached
        .strip_prefix("probe: attached via ")
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    let addr = probe
        .stderr()
        .iter()
        .find_map(|l| {
            l.strip_prefix("probe: serving metrics on http://")?
                .strip_suffix("/metrics")?
                .parse()
                .ok()
        })
        .expect("serving metrics on");
    (probe, addr, method)
}

#[test]
fn losses_are_scraped_as_they_happen_under_the_cause_stderr_names() {
    require_root!();
    if !tools_or_skip(&[PROMTOOL]) {
        return;
    }
    let _turn = serial();
    let dir = scratch_dir("metrics-losses");
    let file = dir.join("probe.prom");
    let mut puppet = Puppet::start(&[
        vec![step(b"lossy", 1)],
        vec![step(b"lossy", 1)],
        vec![step(b"lossy", 1)],
    ]);
    let pid = puppet.pid.to_string();
    let (probe, addr, method) = top_with_stdout(
        &dir,
        &[
            "-i",
            "0.3",
            "-p",
            &pid,
            "--json",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    let top = Top {
        probe: Some(probe),
        addr: Some(addr),
        method: method.clone(),
    };
    // Where a return never seen is counted: on tracepoints the kernel's
    // skipping the exit program leaves one, and the records planted here
    // are returns it did not skip; a kernel that counts its skips (6.7+)
    // says so, and they are then of no known cause (`missed_return`, as on
    // kprobes); one that does not is taken to have skipped them.
    let counts_skips = probe::loader::kernel_at_least(6, 7);
    let cause = match method.as_str() {
        "tracepoint" | "raw-tracepoint" if !counts_skips => "kernel_skipped",
        _ => "missed_return",
    };
    let lost = |s: &[Sample]| value_of(s, "probe_events_lost_total", &[("cause", cause)]);
    let stamp = |s: &[Sample]| value_of(s, "probe_last_update_timestamp_seconds", &[]);
    let map = inflight_map(top.pid());
    let mut seen = vec![parse(scrape(top.addr()).text())];
    // Every cause is there from the start.
    for c in ["kernel_skipped", "missed_return", "evicted"] {
        assert!(
            value_of(&seen[0], "probe_events_lost_total", &[("cause", c)]).is_some(),
            "{c}"
        );
    }
    let mut stamps = vec![stamp(&seen[0]).expect("the timestamp")];
    for k in 1..=3u64 {
        plant_pending_record(&map, puppet.pid);
        puppet.phase();
        // Seen while the probe runs, not at its stop. (The kernel may
        // also skip a call of any process meanwhile: counted too.)
        let s = scrape_until(&top, Duration::from_secs(10), "a loss", &mut seen, |s| {
            lost(s) >= Some(k as f64) && calls(s, "write", "lossy") == Some(k as f64)
        });
        stamps.push(stamp(&s).unwrap());
    }
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "the time of the last update moves on: {stamps:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - stamps[3]).abs() < 5.0,
        "{} s from now",
        now - stamps[3]
    );
    assert_never_goes_back(&seen);
    puppet.finish();
    drop(map);
    let done = top.finish();

    // stderr names the cause; the three returns never seen are said on
    // their own line, the only one of its kind.
    let returns_line: Vec<&String> = done
        .stderr
        .iter()
        .filter(|l| l.contains("their returns were never seen"))
        .collect();
    assert_eq!(returns_line.len(), 1, "{:?}", done.stderr);
    assert!(
        returns_line[0].starts_with("probe: lost 3 events: ")
            && returns_line[0].ends_with(&format!(" [{cause}]")),
        "{returns_line:?}"
    );
    let on_stderr = said_lost(&done.stderr, cause);
    let (received, lost_total) = done.counts();
    assert_eq!(received, 3);
    let all_said: u64 = ["kernel_skipped", "missed_return", "evicted"]
        .iter()
        .map(|c| said_lost(&done.stderr, c))
        .sum();
    assert_eq!(lost_total, all_said, "{:?}", done.stderr);

    // The last text written (the stop's) has what stderr says, cause by
    // cause, and passes promtool.
    let last = fs::read(&file).unwrap();
    let (ok, said) = promtool_check(&last);
    assert!(ok, "{said}");
    let samples = parse(std::str::from_utf8(&last).unwrap());
    for c in ["kernel_skipped", "missed_return", "evicted"] {
        assert_eq!(
            value_of(&samples, "probe_events_lost_total", &[("cause", c)]),
            Some(said_lost(&done.stderr, c) as f64),
            "{c}: {:?}",
            done.stderr
        );
    }
    assert!(on_stderr >= 3);

    // --json: each interval that lost calls ends with an object of them;
    // added up, they are the run's.
    let mut by_cause: BTreeMap<String, u64> = BTreeMap::new();
    let mut json_calls = 0;
    for line in done.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        match v.get("lost") {
            Some(l) => {
                assert!(v.get("calls").is_none(), "{line}");
                for (c, n) in l.as_object().unwrap() {
                    *by_cause.entry(c.clone()).or_default() += n.as_u64().unwrap();
                }
            }
            None => json_calls += v["calls"].as_u64().unwrap(),
        }
    }
    assert_eq!(json_calls, 3);
    let said: BTreeMap<String, u64> = ["kernel_skipped", "missed_return", "evicted"]
        .iter()
        .map(|c| (c.to_string(), said_lost(&done.stderr, c)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(by_cause, said);
    assert_nothing_left();
}

#[test]
fn an_eviction_shows_at_the_next_sweep_of_the_table_of_calls_in_flight() {
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-evicted");
    let comm = unique_comm("ev");
    let top = Top::start(
        &dir,
        &["-i", "0.3", "-c", &comm, "--metrics-listen", "127.0.0.1:0"],
    );
    // A thread blocked in a read: its record is pending for as long as
    // it blocks. Its record taken out of the table is what an eviction
    // is (the LRU's, when the table is full).
    let mut reader = Command::new(LOADGEN)
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
        .unwrap();
    let map = inflight_map(top.pid());
    let reader_tid = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tasks: Vec<i32> = fs::read_dir(format!("/proc/{}/task", reader.id()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
                .collect();
            let blocked = tasks.iter().copied().find(|t| {
                fs::read_to_string(format!("/proc/{t}/syscall"))
                    .is_ok_and(|s| s.split(' ').next() == Some("0"))
            });
            if let Some(t) = blocked {
                break t;
            }
            assert!(Instant::now() < deadline, "no thread blocked in read");
            thread::sleep(Duration::from_millis(20));
        }
    };
    // SAFETY: a u32 key of the map.
    unsafe {
        probe::sys::bpf::map_delete(
            std::os::fd::AsFd::as_fd(&map),
            &(reader_tid as u32).to_ne_bytes(),
        )
    }
    .expect("the blocked reader's record");
    drop(map);
    let evicted = |s: &[Sample]| value_of(s, "probe_events_lost_total", &[("cause", "evicted")]);
    let mut seen = vec![parse(scrape(top.addr()).text())];
    assert_eq!(evicted(&seen[0]), Some(0.0));
    // 4,200 threads' first calls: a sweep is due after 4,096.
    loadgen_ok(&["--comm", &comm, "--short-threads", "4200"]);
    scrape_until(
        &top,
        Duration::from_secs(10),
        "the eviction",
        &mut seen,
        |s| evicted(s) == Some(1.0),
    );
    assert_never_goes_back(&seen);
    let done = top.stop();
    let _ = reader.kill();
    let _ = reader.wait();
    assert!(
        done.stderr.iter().any(|l| l
            == "probe: lost 1 events: evicted from the table of calls in flight (more at once \
                than it holds) [evicted]"),
        "{:?}",
        done.stderr
    );
    assert_nothing_left();
}

#[test]
fn the_readme_s_alert_rules_pass_promtool_and_fire_when_they_should() {
    if !tools_or_skip(&[PROMTOOL]) {
        return;
    }
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- alert-rules")
        .expect("the README's alert rules");
    let block = &readme[start..];
    let body = block.split_once("```yaml\n").unwrap().1;
    let rules = body.split_once("```").unwrap().0;
    let dir = std::env::temp_dir().join(format!("probe-test-{}-rules", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("rules.yml"), rules).unwrap();
    let out = Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(dir.join("rules.yml"))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 2 rules found"), "{said}");

    // Minute by minute: 10 calls lost in minutes 3-4, then none; the
    // probe updates its metrics every minute until minute 6, then stalls.
    let annotations = |cause: &str| {
        format!(
            "            exp_annotations:\n\
             \x20             summary: \"probe on h:9545 is losing calls ({cause})\"\n\
             \x20             description: \"probe top counts fewer calls than were made: its \
             stderr line ending in [{cause}] says why and what to do.\"\n"
        )
    };
    let test = format!(
        "rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    \
         input_series:\n\
         \x20     - series: 'probe_events_lost_total{{instance=\"h:9545\",job=\"probe\",cause=\"kernel_skipped\"}}'\n\
         \x20       values: '0 0 0 5 10 10 10 10 10 10 10 10 10 10 10'\n\
         \x20     - series: 'probe_events_lost_total{{instance=\"h:9545\",job=\"probe\",cause=\"evicted\"}}'\n\
         \x20       values: '0x14'\n\
         \x20     - series: 'probe_last_update_timestamp_seconds{{instance=\"h:9545\",job=\"probe\"}}'\n\
         \x20       values: '0+60x6 360x8'\n\
         \x20   alert_rule_test:\n\
         \x20     - eval_time: 2m\n        alertname: ProbeLosingCalls\n        exp_alerts: []\n\
         \x20     - eval_time: 4m\n        alertname: ProbeLosingCalls\n        exp_alerts:\n\
         \x20         - exp_labels:\n              severity: warning\n              instance: h:9545\n              \
         job: probe\n              cause: kernel_skipped\n{}\
         \x20     - eval_time: 12m\n        alertname: ProbeLosingCalls\n        exp_alerts: []\n\
         \x20     - eval_time: 10m\n        alertname: ProbeMetricsStale\n        exp_alerts: []\n\
         \x20     - eval_time: 12m\n        alertname: ProbeMetricsStale\n        exp_alerts:\n\
         \x20         - exp_labels:\n              severity: warning\n              instance: h:9545\n              \
         job: probe\n            exp_annotations:\n              \
         summary: \"probe on h:9545 has not updated its metrics for 5 minutes\"\n              \
         description: \"probe top stalled or stopped, or its --metrics-file can no longer be \
         written (its stderr says why).\"\n",
        annotations("kernel_skipped")
    );
    fs::write(dir.join("test.yml"), &test).unwrap();
    let out = Command::new(PROMTOOL)
        .args(["test", "rules", "test.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}\n{test}");
    assert!(said.contains("SUCCESS"), "{said}");
    fs::remove_dir_all(&dir).unwrap();
}

/// A cgroup v2 directory made for one test, removed after (its processes
/// gone by then).
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
        let root = mounts
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[2] == "cgroup2").then(|| PathBuf::from(f[1]))
            })
            .expect("no cgroup2 mount: mount -t cgroup2 none /sys/fs/cgroup");
        let dir = root.join(format!("probe-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir(&dir);
        fs::create_dir(&dir).unwrap();
        TestCgroup(dir)
    }

    fn add(&self, pid: u32) {
        fs::write(self.0.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// True once `pid` waits in sigtimedwait (loadgen --wait-signal, for
/// SIGUSR1: sent before, it would kill it).
fn waits_for_a_signal(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.split(' ').next() == Some(libc::SYS_rt_sigtimedwait.to_string().as_str()))
}

/// Children killed and reaped when dropped (a failed test leaves none).
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `count` processes named junk1...junkN, run by nobody in `cgroup`, that
/// each make `writes` writes and exit, all at once.
fn junk_flood(cgroup: &TestCgroup, count: usize, writes: u64) {
    use std::os::unix::process::CommandExt;
    let mut junk = Children(Vec::new());
    junk.0 = (1..=count)
        .map(|i| {
            Command::new(LOADGEN)
                .args(["--comm", &format!("junk{i}"), "--wait-signal"])
                .args(["--writes", &writes.to_string()])
                .uid(65534)
                .gid(65534)
                .stdout(Stdio::null())
                .spawn()
                .expect("loadgen as nobody")
        })
        .collect();
    for j in &junk.0 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !waits_for_a_signal(j.id()) {
            assert!(Instant::now() < deadline, "loadgen {} not waiting", j.id());
            thread::sleep(Duration::from_millis(2));
        }
        cgroup.add(j.id());
    }
    for j in &junk.0 {
        // SAFETY: signalling a child of ours.
        unsafe { libc::kill(j.id() as i32, libc::SIGUSR1) };
    }
    for j in &mut junk.0 {
        assert!(j.wait().unwrap().success());
    }
}

/// `probe_calls_total{syscall="write",comm=~"junk.*"}` of one scrape.
fn junk_series(s: &[Sample]) -> BTreeMap<String, f64> {
    s.iter()
        .filter(|x| x.name == "probe_calls_total")
        .filter_map(|x| {
            let comm = &x.labels.iter().find(|(k, _)| k == "comm")?.1;
            comm.starts_with("junk").then(|| (comm.clone(), x.number()))
        })
        .collect()
}

impl Puppet {
    /// True once it has stopped itself (its phase done), without waiting.
    fn stopped_now(&mut self) -> bool {
        let mut status = 0;
        // SAFETY: waiting for our own child, without blocking.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WUNTRACED | libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == self.pid {
            assert!(libc::WIFSTOPPED(status), "the puppet ended: {status:#x}");
        }
        r == self.pid
    }
}

/// The issue's scenario: 100 short processes junk1...junk100 started by
/// `nobody` in the first seconds, then a steady `postgres` (1,000 writes
/// a second for 6 s). `--metrics-comms` is 100. Returns every scrape from
/// the flood on, the index of the last before postgres started, and how
/// the probe ended.
fn flood_then_postgres(pin: bool) -> (Vec<Vec<Sample>>, usize, Finished) {
    const JUNK: usize = 100;
    const JUNK_WRITES: u64 = 1000;
    const PG_WRITES: u64 = 6000;
    let tag = if pin { "flood-pin" } else { "flood" };
    let dir = scratch_dir(&format!("metrics-{tag}"));
    let cgroup = TestCgroup::new(tag);
    let mut postgres = Puppet::start(&[vec![Step {
        comm: b"postgres".to_vec(),
        call: Call::WriteNull,
        calls: PG_WRITES,
        every: 100,
        pause: Duration::from_millis(100),
    }]]);
    cgroup.add(postgres.pid as u32);
    let cg = cgroup.0.to_string_lossy().into_owned();
    let mut args = vec![
        "-i",
        "0.3",
        "--cgroup",
        &cg,
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    if pin {
        args.extend(["--metrics-pin", "postgres"]);
    }
    let top = Top::start(&dir, &args);
    let mut seen = Vec::new();

    junk_flood(&cgroup, JUNK, JUNK_WRITES);
    let junk_total = (JUNK as u64 * JUNK_WRITES) as f64;
    scrape_until(&top, Duration::from_secs(10), "the flood", &mut seen, |s| {
        junk_series(s).values().sum::<f64>() + calls(s, "write", "other").unwrap_or(0.0)
            == junk_total
    });
    let before = seen.len() - 1;

    // postgres, scraped every 100 ms while it runs.
    postgres.go();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !postgres.stopped_now() {
        assert!(Instant::now() < deadline, "postgres did not finish");
        seen.push(parse(scrape(top.addr()).text()));
        thread::sleep(Duration::from_millis(100));
    }
    // Every call in one series, those written now or gone stale (a junk
    // name that lost its slot): their last values add up to the calls.
    let all = junk_total + PG_WRITES as f64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        seen.push(parse(scrape(top.addr()).text()));
        let ever = writes_ever(&seen);
        if ever.values().sum::<f64>() == all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the series ever scraped add up to {} calls, not {all}: postgres {:?}, other {:?}",
            ever.values().sum::<f64>(),
            ever.get("postgres"),
            ever.get("other")
        );
        thread::sleep(Duration::from_millis(100));
    }
    postgres.finish();
    let done = top.stop();
    (seen, before, done)
}

#[test]
fn a_flood_of_names_cannot_blind_a_pinned_process() {
    require_root!();
    let _turn = serial();
    let (seen, before, done) = flood_then_postgres(true);
    let last = seen.last().unwrap();
    // The flood: one slot is postgres', 99 for 100 names: the 100,000
    // junk calls are in junk series and other, none elsewhere.
    let flood = junk_series(&seen[before]);
    assert!(flood.len() <= 99, "{}", flood.len());
    let other_before = calls(&seen[before], "write", "other");
    assert!(
        other_before.is_some(),
        "100 names for 99 slots: some in other"
    );
    // postgres has its own series from its first interval on: while it
    // ran (6 s, a scrape every 100 ms), "other" stayed where the flood
    // left it, and at the end postgres' series has all of its 6,000.
    assert!(seen.len() - before > 40, "{} scrapes", seen.len() - before);
    for s in &seen[before..] {
        assert_eq!(calls(s, "write", "other"), other_before, "other moved");
    }
    assert_eq!(calls(last, "write", "postgres"), Some(6000.0));
    assert_never_goes_back(&seen);
    assert_eq!(done.last_line(), "probe: received=106000 lost=0");
    assert_nothing_left();
}

#[test]
fn a_flood_of_names_gives_way_to_a_steady_process_once_it_is_twice_as_active() {
    require_root!();
    let _turn = serial();
    let (seen, before, done) = flood_then_postgres(false);
    let last = seen.last().unwrap();
    // The flood took the 100 slots: every junk name has its series, all
    // its calls in it; nothing in other.
    let flood = junk_series(&seen[before]);
    assert_eq!(flood.len(), 100);
    assert!(flood.values().all(|&n| n == 1000.0), "{flood:?}");
    assert_eq!(calls(&seen[before], "write", "other"), None);
    // postgres counted under other first (300 calls an interval against
    // junk names of 1,000 each: not twice as active), then, once more
    // than twice as active as the least active holder (its calls weigh
    // less each minute), it took that one's slot: one junk series went
    // stale, postgres' calls went to its own series from then on.
    let own = calls(last, "write", "postgres").expect("postgres got a slot");
    let other = calls(last, "write", "other").expect("postgres was other first");
    assert_eq!(own + other, 6000.0);
    assert!(own >= 1000.0, "postgres' own series: {own}");
    let junk = junk_series(last);
    assert_eq!(junk.len(), 99, "one junk name gave its slot to postgres");
    assert!(junk.values().all(|&n| n == 1000.0), "{junk:?}");
    // From the scrape where postgres has its series on, other stays.
    let first = seen
        .iter()
        .position(|s| calls(s, "write", "postgres").is_some())
        .unwrap();
    for s in &seen[first..] {
        assert_eq!(
            calls(s, "write", "other"),
            Some(other),
            "other grew after the slot"
        );
    }
    eprintln!(
        "postgres: {other} writes under other, then {own} in its own series (its slot from \
         scrape {} of {} after the flood's)",
        first - before,
        seen.len() - before
    );
    assert_never_goes_back(&seen);
    assert_eq!(done.last_line(), "probe: received=106000 lost=0");
    assert_nothing_left();
}

#[test]
fn names_another_user_takes_do_not_stop_the_textfile_and_a_failed_write_is_said_each_interval() {
    use std::os::unix::process::CommandExt;
    require_root!();
    let _turn = serial();
    let dir = scratch_dir("metrics-shared-dir");
    // A world-writable sticky directory, as /tmp is.
    let shared = dir.join("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let file = shared.join("probe.prom");
    let comm = unique_comm("sd");
    let top = Top::start(
        &dir,
        &[
            "-i",
            "0.3",
            "-c",
            &comm,
            "--metrics-file",
            file.to_str().unwrap(),
        ],
    );
    // Another user makes directories at the names it can guess: the one
    // a pid made, its neighbours', and others.
    let pid = top.pid();
    let mut taken: Vec<String> = (pid - 2..=pid + 2)
        .map(|p| format!(".probe.prom.{p}.tmp"))
        .collect();
    taken.extend([".probe.prom.tmp", "probe.prom.tmp", ".probe.prom.0.tmp"].map(String::from));
    for name in &taken {
        let out = Command::new("mkdir")
            .arg(shared.join(name))
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(out.status.success(), "mkdir {name} as nobody: {out:?}");
    }
    let read = || parse(&fs::read_to_string(&file).unwrap());
    let stamp = |s: &[Sample]| value_of(s, "probe_last_update_timestamp_seconds", &[]).unwrap();
    let blocked_at = stamp(&read());
    loadgen_ok(&["--comm", &comm, "--writes", "77"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let written = loop {
        let s = read();
        if calls(&s, "write", &comm) == Some(77.0) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the file was not written after the names were taken"
        );
        thread::sleep(Duration::from_millis(100));
    };
    assert!(stamp(&written) > blocked_at);

    // The directory gone (renamed away): each interval says so, with how
    // many it has missed; back, the file is written again, said once.
    let away = dir.join("away");
    fs::rename(&shared, &away).unwrap();
    let failing = |p: &Top| -> Vec<String> {
        p.probe
            .as_ref()
            .unwrap()
            .stderr()
            .into_iter()
            .filter(|l| l.starts_with("probe: cannot write the metrics to "))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while failing(&top).len() < 4 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            top.probe.as_ref().unwrap().stderr()
        );
        thread::sleep(Duration::from_millis(50));
    }
    fs::rename(&away, &shared).unwrap();
    let again = |p: &Top| {
        p.probe
            .as_ref()
            .unwrap()
            .stderr()
            .into_iter()
            .find(|l| l.starts_with("probe: the metrics are written to "))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let said = loop {
        if let Some(l) = again(&top) {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "{:?}",
            top.probe.as_ref().unwrap().stderr()
        );
        thread::sleep(Duration::from_millis(50));
    };
    let lines = failing(&top);
    let shown = file.to_str().unwrap();
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        let intervals = if n == 1 {
            "1 interval".to_string()
        } else {
            format!("{n} intervals")
        };
        assert_eq!(
            *l,
            format!(
                "probe: cannot write the metrics to {shown} (No such file or directory (os error \
                 2)): {intervals} not written now; trying again every interval"
            )
        );
    }
    assert_eq!(
        said,
        format!(
            "probe: the metrics are written to {shown} again, after {} intervals not written",
            lines.len()
        )
    );
    assert!(stamp(&read()) > stamp(&written));

    let done = top.stop();
    assert_eq!(done.last_line(), "probe: received=77 lost=0");
    // Left in the directory: the file, and the other user's directories.
    let mut left: Vec<String> = fs::read_dir(&shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = taken.clone();
    want.push("probe.prom".into());
    want.sort();
    assert_eq!(left, want);
    assert_nothing_left();
}
