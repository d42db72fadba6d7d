//! Command-line parsing: flags in, a checked `Options` out, or a usage
//! error (exit code 2) that says which flag and why.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::app::abi::{COMM_LEN, Syscall, TopBy};
use crate::app::top::render::Sort;
use crate::attach::Method;

pub const DEFAULT_PAGES: usize = 1024;
/// The queue between the rings and the outputs may use this much memory.
pub const DEFAULT_BUFFER: usize = 128 << 20;
const MIN_BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 1 << 40;
pub const DEFAULT_LOG: &str = "syscalls.log";
/// Rotated logs kept by default (`--log-keep`).
pub const DEFAULT_LOG_KEEP: u32 = 5;
const MAX_LOG_KEEP: u32 = 1000;
/// The smallest `--log-max`: four of a file output's 256 KiB writes, so
/// a file never grows past it.
const MIN_LOG_MAX: usize = 1 << 20;
/// What is followed without `--syscalls`: the seed's two calls.
pub const DEFAULT_SYSCALLS: [Syscall; 2] = [Syscall::Read, Syscall::Write];
const MAX_PAGES: usize = 1 << 16;

pub const USAGE: &str = "\
usage: probe [options]        monitor every read(2) and write(2) on this machine
       probe top [options]    who reads and writes, how much, how slow
                              (probe top --help)
       probe inspect FILE     show what the loader sees in a BPF object file
       probe load FILE        load every program of a BPF object file in this
                              kernel, say what the verifier made of each, unload

options:
  --attach METHOD  auto (default), kprobe, kprobe-legacy, tracepoint or
                   raw-tracepoint
  -p, --pid PID    only this process (its tgid), filtered in the kernel
  -c, --comm NAME  only processes whose name is exactly NAME (1-15 bytes)
      --cgroup PATH  only tasks in this cgroup v2 directory and below it
  -v, --verbose    details on each line, and the first bytes of each write;
                   -vv also shows the loader's steps on stderr
      --explain    tell every system call of set-up and teardown on stderr,
                   decoded like strace
  -q, --quiet      no per-event lines on stdout
      --json       one JSON object per event on stdout instead of hello lines
      --log PATH   the detailed log (default: syscalls.log)
      --no-log     no log file
      --log-max SIZE  rotate the log before it grows past SIZE, e.g. 100M
                   (1M at least): it moves to PATH.1, PATH.1 to PATH.2, ...
      --log-keep N  rotated logs kept, PATH.1 to PATH.N (default: 5)
      --pid-file PATH  write the probe's pid to PATH, removed at exit (for
                   logrotate: postrotate kill -USR1 $(cat PATH))
  -d, --duration SECS  stop after SECS seconds (default: until Ctrl+C or SIGTERM)
      --exit       one event per call when it returns, with its result (ret=)
                   and latency (lat_ns=); two hooks per call instead of one
      --syscalls LIST  the calls to follow, comma-separated: read, write,
                   pread64, pwrite64, readv, writev, preadv, pwritev,
                   preadv2, pwritev2, or all (default: read,write)
      --maxactive N  with --exit and kprobe-legacy: calls each return probe
                   follows at once, 1 to 4096 (default: 4096)
      --pages N    data pages per CPU ring, a power of two (default: 1024;
                   a map ring holds N x 64 events)
      --ring KIND  how events leave the kernel: map (event rings in mapped
                   BPF arrays, polled; the cheaper) or perf (perf rings,
                   the kernel wakes the reader) (default: map)
      --buffer SIZE  memory for events the outputs have not written yet,
                   e.g. 512M or 2G (default: 128M; used only as needed)
  -h, --help       this text
      --version    the version

Signals: SIGINT, SIGTERM and SIGHUP stop the probe (a second one stops it
at once); SIGUSR1 reopens the log at its path (after a rotation by
logrotate).

Exit status: 0 done (also stopped by a signal, or by the reader of stdout
going away); 1 error; 2 bad usage; 3 probe inspect: the object loads only in
part; 4 done, but events were lost (the kernel's rings, the buffer, a file
that could not be written: said on stderr; not stdout lines a slow terminal
skipped, which are in the log).";

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// None: try each method in turn.
    pub attach: Option<Method>,
    pub pid: Option<u32>,
    pub comm: Option<Vec<u8>>,
    /// Only tasks in this cgroup v2 (and below).
    pub cgroup: Option<PathBuf>,
    pub verbose: u32,
    /// Narrate the loader's system calls (sys::explain).
    pub explain: bool,
    pub quiet: bool,
    pub json: bool,
    pub log: Option<PathBuf>,
    /// `--log-max`: the log is rotated before it grows past this.
    pub log_max: Option<u64>,
    /// `--log-keep`: rotated logs kept.
    pub log_keep: u32,
    /// `--pid-file`: where the monitor's pid is written for the run.
    pub pid_file: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub pages: usize,
    /// Bytes the queue between the rings and the outputs may use.
    pub buffer: usize,
    /// Completed calls (entry and exit hooks) instead of entries.
    pub exit: bool,
    /// maxactive of legacy return probes; None: the loader's default.
    pub maxactive: Option<u32>,
    /// The calls followed (`--syscalls`), in the probe's order.
    pub syscalls: Vec<Syscall>,
    /// `--ring`: how events leave the kernel.
    pub ring: RingKind,
}

/// `--ring`: perf rings (`bpf_perf_event_output`), or the map rings of
/// ring/map_ring.rs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingKind {
    Perf,
    Map,
}

/// Events a map ring holds per page of `--pages`.
pub const MAP_RING_SLOTS_PER_PAGE: usize = 64;

impl Default for Options {
    fn default() -> Options {
        Options {
            attach: None,
            pid: None,
            comm: None,
            cgroup: None,
            verbose: 0,
            explain: false,
            quiet: false,
            json: false,
            log: Some(PathBuf::from(DEFAULT_LOG)),
            log_max: None,
            log_keep: DEFAULT_LOG_KEEP,
            pid_file: None,
            duration: None,
            pages: DEFAULT_PAGES,
            buffer: DEFAULT_BUFFER,
            exit: false,
            maxactive: None,
            syscalls: DEFAULT_SYSCALLS.to_vec(),
            ring: RingKind::Map,
        }
    }
}

/// `probe top`'s options.
#[derive(Clone, Debug, PartialEq)]
pub struct TopOptions {
    pub attach: Option<Method>,
    /// `-i`: the length of an interval.
    pub interval: Duration,
    /// `-d`: stop after this long.
    pub duration: Option<Duration>,
    /// `-n`: rows shown; None: what fits (JSON: all).
    pub rows: Option<usize>,
    pub pid: Option<u32>,
    pub comm: Option<Vec<u8>>,
    pub cgroup: Option<PathBuf>,
    pub json: bool,
    pub by: TopBy,
    pub sort: Sort,
    pub hist: bool,
    pub cumulative: bool,
    pub syscalls: Vec<Syscall>,
    /// Rows the kernel's table holds (`--keys`).
    pub keys: u32,
    pub maxactive: Option<u32>,
    pub explain: bool,
    /// `-q`: no tables on stdout (metrics only).
    pub quiet: bool,
    /// `--metrics-listen`: serve /metrics there.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `--metrics-file`: write the metrics there every interval.
    pub metrics_file: Option<PathBuf>,
    /// `--metrics-comms`: comm labels with series of their own.
    pub metrics_comms: usize,
    /// `--metrics-pin`: comms that always have series of their own.
    pub metrics_pins: Vec<Vec<u8>>,
}

/// The port `--metrics-listen PORT` binds on loopback (ebpf_exporter's is
/// 9435, node_exporter's 9100).
pub const DEFAULT_METRICS_PORT: u16 = 9545;
/// Comm labels with series of their own, by default.
pub const DEFAULT_METRICS_COMMS: usize = 100;

/// Rows the kernel's table holds by default.
pub const DEFAULT_TOP_KEYS: u32 = 10240;

impl Default for TopOptions {
    fn default() -> TopOptions {
        TopOptions {
            attach: None,
            interval: Duration::from_secs(2),
            duration: None,
            rows: None,
            pid: None,
            comm: None,
            cgroup: None,
            json: false,
            by: TopBy::Process,
            sort: Sort::Bytes,
            hist: false,
            cumulative: false,
            syscalls: DEFAULT_SYSCALLS.to_vec(),
            keys: DEFAULT_TOP_KEYS,
            maxactive: None,
            explain: false,
            quiet: false,
            metrics_listen: None,
            metrics_file: None,
            metrics_comms: DEFAULT_METRICS_COMMS,
            metrics_pins: Vec::new(),
        }
    }
}

pub const TOP_USAGE: &str = "\
usage: probe top [options]    which processes read and write, how much, how
                              slow: counted in the kernel, shown every -i s

options:
  -i SECS          the length of an interval, up to 60 (default: 2)
  -d SECS          stop after SECS seconds (default: until q, Ctrl+C, SIGTERM)
  -n ROWS          rows shown (default: what fits the terminal; 20 when
                   stdout is not a terminal; every row with --json)
  -p PID, -c NAME, --cgroup PATH   only these tasks, as in streaming mode
      --by KEY     process (default: pid + comm), thread, syscall, or file
                   (pid + fd, shown as the file's path)
      --sort KEY   bytes (default: bytes moved), calls, or latency (mean)
      --hist       latency and size histograms of the rows shown
      --cumulative counts since the start instead of each interval's
      --json       one JSON object per row per interval
      --syscalls LIST  read,write (default), or any of pread64, pwrite64,
                   readv, writev, preadv, pwritev, preadv2, pwritev2, or all
      --keys N     rows the kernel's table holds (default: 10240); calls of
                   keys beyond it are counted in an (other) row
      --attach METHOD, --maxactive N, --explain   as in streaming mode
  -q, --quiet      no tables on stdout (with the metrics flags: an exporter)
      --metrics-listen ADDR  serve Prometheus metrics at http://ADDR/metrics
                   (ADDR: IP:PORT, a name of this machine's loopback such as
                   localhost:PORT, or a PORT on 127.0.0.1; 9545 is ours)
      --metrics-file PATH  write them to PATH every interval, atomically, for
                   node_exporter's textfile collector (PATH ending in .prom)
      --metrics-comms N  process names with series of their own (default:
                   100): the pinned ones, then the most active of the last
                   minute or so; the rest count as comm=\"other\"
      --metrics-pin NAME  a process name that always has series of its own
                   (one of the N; repeat the flag for more)
  -h, --help       this text

-d and -n are not top(1)'s: -d is the run's duration (top(1)'s -d is the
interval, here -i), -n the rows shown (top(1)'s -n counts intervals).";

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Options),
    Top(TopOptions),
    TopHelp,
    Inspect(PathBuf),
    Load(PathBuf),
    Help,
    Version,
}

/// A usage error, shown as `probe: MESSAGE`, then the usage of the
/// command it was made to (`probe top`'s for `probe top ...`).
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub message: String,
    /// `USAGE` or `TOP_USAGE`.
    pub usage: &'static str,
}

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError {
        message: message.into(),
        usage: USAGE,
    })
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.into_iter().peekable();
    for (name, command) in [
        ("inspect", Command::Inspect as fn(PathBuf) -> Command),
        ("load", Command::Load),
    ] {
        if args.peek().is_some_and(|a| a == name) {
            args.next();
            let (Some(file), None) = (args.next(), args.next()) else {
                return usage(format!("{name} takes exactly one FILE"));
            };
            return Ok(command(PathBuf::from(file)));
        }
    }
    if args.peek().is_some_and(|a| a == "top") {
        args.next();
        return parse_top(args).map_err(|e| UsageError {
            usage: TOP_USAGE,
            ..e
        });
    }
    let mut o = Options::default();
    let mut log_flag = None::<&str>;
    let mut keep_flag = false;
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        // --flag=value, and -xVALUE for the short flags that take a value.
        let (flag, mut inline) = split_flag(bytes, b"pcd");
        let mut value = |name: &str| -> Result<OsString, UsageError> {
            match inline.take().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => usage(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--attach" => o.attach = attach_value(&value("--attach")?)?,
            "-p" | "--pid" => o.pid = Some(pid_value(&value("--pid")?)?),
            "-c" | "--comm" => o.comm = Some(comm_value(&value("--comm")?)?),
            "--cgroup" => o.cgroup = Some(path_value("--cgroup", value("--cgroup")?)?),
            "-v" | "--verbose" => o.verbose += 1,
            "-vv" => o.verbose += 2,
            "-q" | "--quiet" => o.quiet = true,
            "--explain" => o.explain = true,
            "--exit" => o.exit = true,
            "--maxactive" => o.maxactive = Some(maxactive_value(&value("--maxactive")?)?),
            "--syscalls" => {
                let v = value("--syscalls")?;
                o.syscalls = parse_syscalls(&v.to_string_lossy())?;
            }
            "--json" => o.json = true,
            "--log" => {
                o.log = Some(path_value("--log", value("--log")?)?);
                log_flag = Some("--log");
            }
            "--no-log" => {
                log_flag.get_or_insert("--no-log");
                o.log = None;
            }
            "--log-max" => {
                let v = value("--log-max")?;
                let v = v.to_string_lossy();
                match parse_size(&v) {
                    Some(n) if (MIN_LOG_MAX..=MAX_BUFFER).contains(&n) => {
                        o.log_max = Some(n as u64)
                    }
                    _ => {
                        return usage(format!(
                            "--log-max {v}: a size from 1M to 1T, in bytes or with K, M, G or T (1024-based)"
                        ));
                    }
                }
            }
            "--log-keep" => {
                let v = value("--log-keep")?;
                let v = v.to_string_lossy();
                match v.parse::<u32>() {
                    Ok(n @ 1..=MAX_LOG_KEEP) => o.log_keep = n,
                    _ => {
                        return usage(format!(
                            "--log-keep {v}: a number of files from 1 to {MAX_LOG_KEEP}"
                        ));
                    }
                }
                keep_flag = true;
            }
            "--pid-file" => o.pid_file = Some(path_value("--pid-file", value("--pid-file")?)?),
            "-d" | "--duration" => o.duration = Some(seconds("--duration", &value("--duration")?)?),
            "--pages" => {
                let v = value("--pages")?;
                let v = v.to_string_lossy();
                match v.parse::<usize>() {
                    Ok(n) if n.is_power_of_two() && n <= MAX_PAGES => o.pages = n,
                    _ => {
                        return usage(format!(
                            "--pages {v}: must be a power of two from 1 to {MAX_PAGES}"
                        ));
                    }
                }
            }
            "--ring" => {
                let v = value("--ring")?;
                o.ring = match v.to_str() {
                    Some("perf") => RingKind::Perf,
                    Some("map") => RingKind::Map,
                    _ => {
                        return usage(format!(
                            "--ring {}: unknown kind (perf, map)",
                            v.to_string_lossy()
                        ));
                    }
                };
            }
            "--buffer" => {
                let v = value("--buffer")?;
                let v = v.to_string_lossy();
                match parse_size(&v) {
                    Some(n) if (MIN_BUFFER..=MAX_BUFFER).contains(&n) => o.buffer = n,
                    _ => {
                        return usage(format!(
                            "--buffer {v}: a size from 1M to 1T, in bytes or with K, M, G or T (1024-based)"
                        ));
                    }
                }
            }
            other => return usage(format!("unknown option {other}")),
        }
        if inline.is_some() {
            return usage(format!("{flag} takes no value"));
        }
    }
    if log_flag == Some("--log") && o.log.is_none() {
        return usage("--log and --no-log contradict each other");
    }
    if o.maxactive.is_some() && !o.exit {
        return usage("--maxactive applies to the return probes of --exit only");
    }
    if o.log_max.is_some() && o.log.is_none() {
        return usage("--log-max rotates the log: not with --no-log");
    }
    if keep_flag && o.log_max.is_none() {
        return usage("--log-keep applies to the files --log-max rotates: give --log-max SIZE too");
    }
    Ok(Command::Run(o))
}

/// A flag and its value if it came inline (`--by=file`, `-i5`).
fn split_flag(bytes: &[u8], short_with_value: &[u8]) -> (String, Option<OsString>) {
    match bytes.iter().position(|&b| b == b'=') {
        Some(i) if bytes.starts_with(b"--") => (
            String::from_utf8_lossy(&bytes[..i]).into_owned(),
            Some(std::ffi::OsStr::from_bytes(&bytes[i + 1..]).to_owned()),
        ),
        _ if bytes.len() > 2 && bytes[0] == b'-' && short_with_value.contains(&bytes[1]) => (
            String::from_utf8_lossy(&bytes[..2]).into_owned(),
            Some(std::ffi::OsStr::from_bytes(&bytes[2..]).to_owned()),
        ),
        _ => (String::from_utf8_lossy(bytes).into_owned(), None),
    }
}

fn seconds(flag: &str, v: &OsString) -> Result<Duration, UsageError> {
    let v = v.to_string_lossy();
    match v.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => usage(format!("{flag} {v}: not a number of seconds above 0")),
    }
}

fn one_of<T: Copy>(
    flag: &str,
    v: &OsString,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, UsageError> {
    let v = v.to_string_lossy();
    match all.iter().find(|x| name(**x) == v) {
        Some(x) => Ok(*x),
        None => usage(format!(
            "{flag} {v}: one of {}",
            all.iter().map(|x| name(*x)).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// `probe top`'s flags.
fn parse_top(args: impl Iterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut args = args.peekable();
    let mut o = TopOptions::default();
    while let Some(arg) = args.next() {
        let (flag, mut inline) = split_flag(arg.as_bytes(), b"idnpc");
        let mut value = |name: &str| -> Result<OsString, UsageError> {
            match inline.take().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => usage(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::TopHelp),
            "-i" | "--interval" => {
                o.interval = seconds("-i", &value("-i")?)?;
                // The kernel's 32-bit histogram slots are read as
                // differences: an interval must not let one wrap twice.
                if o.interval > Duration::from_secs(60) {
                    return usage("-i: an interval is at most 60 seconds");
                }
            }
            "-d" | "--duration" => o.duration = Some(seconds("-d", &value("-d")?)?),
            "-n" | "--rows" => {
                let v = value("-n")?;
                let v = v.to_string_lossy();
                match v.parse::<usize>() {
                    Ok(n) if n > 0 => o.rows = Some(n),
                    _ => return usage(format!("-n {v}: a number of rows above 0")),
                }
            }
            "-p" | "--pid" => o.pid = Some(pid_value(&value("--pid")?)?),
            "-c" | "--comm" => o.comm = Some(comm_value(&value("--comm")?)?),
            "--cgroup" => o.cgroup = Some(path_value("--cgroup", value("--cgroup")?)?),
            "--json" => o.json = true,
            "--by" => o.by = one_of("--by", &value("--by")?, &TopBy::ALL, TopBy::name)?,
            "--sort" => o.sort = one_of("--sort", &value("--sort")?, &Sort::ALL, Sort::name)?,
            "--hist" => o.hist = true,
            "--cumulative" => o.cumulative = true,
            "--syscalls" => {
                o.syscalls = parse_syscalls(&value("--syscalls")?.to_string_lossy())?;
            }
            "--keys" => {
                let v = value("--keys")?;
                let v = v.to_string_lossy();
                match v.parse::<u32>() {
                    Ok(n @ 1..=1_000_000) => o.keys = n,
                    _ => return usage(format!("--keys {v}: a number of rows from 1 to 1000000")),
                }
            }
            "--attach" => o.attach = attach_value(&value("--attach")?)?,
            "--maxactive" => o.maxactive = Some(maxactive_value(&value("--maxactive")?)?),
            "--explain" => o.explain = true,
            "-q" | "--quiet" => o.quiet = true,
            "--metrics-listen" => {
                let v = value("--metrics-listen")?;
                o.metrics_listen = Some(listen_value(&v.to_string_lossy())?);
            }
            "--metrics-pin" => {
                let v = value("--metrics-pin")?;
                let pin = comm_value(&v).map_err(|e| UsageError {
                    message: e.message.replacen("--comm", "--metrics-pin", 1),
                    ..e
                })?;
                if pin == b"other" {
                    return usage(
                        "--metrics-pin other: \"other\" is the label of the names without \
                         series of their own",
                    );
                }
                if !o.metrics_pins.contains(&pin) {
                    o.metrics_pins.push(pin);
                }
            }
            "--metrics-file" => {
                o.metrics_file = Some(path_value("--metrics-file", value("--metrics-file")?)?);
            }
            "--metrics-comms" => {
                let v = value("--metrics-comms")?;
                let v = v.to_string_lossy();
                match v.parse::<usize>() {
                    Ok(n @ 1..=100_000) => o.metrics_comms = n,
                    _ => {
                        return usage(format!(
                            "--metrics-comms {v}: a number of process names from 1 to 100000"
                        ));
                    }
                }
            }
            other => return usage(format!("top: unknown option {other}")),
        }
        if inline.is_some() {
            return usage(format!("{flag} takes no value"));
        }
    }
    if (o.metrics_listen.is_some() || o.metrics_file.is_some())
        && matches!(o.by, TopBy::Syscall | TopBy::File)
    {
        // Their rows carry their first caller's comm only: the metrics'
        // comm label would be wrong for every later caller.
        return usage(format!(
            "--by {}: the metrics count by process name: use --by process (the default) or \
             thread with --metrics-listen and --metrics-file",
            o.by.name()
        ));
    }
    if o.maxactive.is_some() && o.attach != Some(Method::KprobeLegacy) && o.attach.is_some() {
        return usage("--maxactive applies to kprobe-legacy's return probes only");
    }
    if o.metrics_pins.len() > o.metrics_comms {
        return usage(format!(
            "--metrics-pin: {} names pinned, more than --metrics-comms {} has series for; \
             raise --metrics-comms",
            o.metrics_pins.len(),
            o.metrics_comms
        ));
    }
    Ok(Command::Top(o))
}

/// `--metrics-listen`'s value: an address (`127.0.0.1:9545`, `[::1]:9545`,
/// any other IP, said on stderr when it is not loopback), a PORT alone
/// (on 127.0.0.1), or `NAME:PORT` where NAME resolves (/etc/hosts, DNS) to
/// loopback addresses only (`localhost`): the IPv4 one is bound when there
/// is one, else the first. A name that resolves elsewhere is refused: where
/// the metrics are open to other machines is said with an address, not
/// left to a resolver.
fn listen_value(v: &str) -> Result<std::net::SocketAddr, UsageError> {
    use std::net::{SocketAddr, ToSocketAddrs};
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let what = format!(
        "--metrics-listen {v}: IP:PORT (127.0.0.1:{DEFAULT_METRICS_PORT}, \
         [::1]:{DEFAULT_METRICS_PORT}), localhost:PORT (a name of loopback addresses only), \
         or a PORT"
    );
    let Some((host, port)) = v.rsplit_once(':') else {
        return usage(what);
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return usage(what);
    }
    let addrs: Vec<SocketAddr> = match v.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return usage(format!(
                "--metrics-listen {v}: {host} does not resolve ({e}); give IP:PORT, or a name \
                 of loopback such as localhost:PORT"
            ));
        }
    };
    if let Some(out) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return usage(format!(
            "--metrics-listen {v}: {host} resolves to {}, not a loopback address; give the \
             address itself (IP:PORT) to listen beyond this machine",
            out.ip()
        ));
    }
    match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
        Some(addr) => Ok(*addr),
        None => usage(format!("{what}: {host} resolves to no address")),
    }
}

/// A path flag's value: any bytes but none.
fn path_value(flag: &str, v: OsString) -> Result<PathBuf, UsageError> {
    if v.is_empty() {
        return usage(format!("{flag} needs a path"));
    }
    Ok(PathBuf::from(v))
}

fn attach_value(v: &OsString) -> Result<Option<Method>, UsageError> {
    let v = v.to_string_lossy();
    match v.as_ref() {
        "auto" => Ok(None),
        m => match Method::parse(m) {
            Some(m) => Ok(Some(m)),
            None => usage(format!(
                "--attach {m}: unknown method (auto, kprobe, kprobe-legacy, tracepoint, raw-tracepoint)"
            )),
        },
    }
}

fn pid_value(v: &OsString) -> Result<u32, UsageError> {
    let v = v.to_string_lossy();
    match v.parse::<u32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => usage(format!(
            "--pid {v}: not a process id (a whole number above 0)"
        )),
    }
}

fn comm_value(v: &OsString) -> Result<Vec<u8>, UsageError> {
    let v = v.as_bytes();
    if v.is_empty() || v.len() >= COMM_LEN || v.contains(&0) {
        return usage(format!(
            "--comm {}: a process name is 1 to {} bytes (the kernel keeps no more)",
            String::from_utf8_lossy(v),
            COMM_LEN - 1
        ));
    }
    Ok(v.to_vec())
}

fn maxactive_value(v: &OsString) -> Result<u32, UsageError> {
    let v = v.to_string_lossy();
    match v.parse::<u32>() {
        Ok(n @ 1..=4096) => Ok(n),
        _ => usage(format!(
            "--maxactive {v}: a whole number from 1 to 4096 (the kernel's limit)"
        )),
    }
}

/// `read,pwrite64,preadv2`, or `all`: calls of the read/write family, in
/// the probe's order, each once.
pub fn parse_syscalls(text: &str) -> Result<Vec<Syscall>, UsageError> {
    if text == "all" {
        return Ok(Syscall::ALL.to_vec());
    }
    let mut calls = Vec::new();
    for name in text.split(',') {
        match Syscall::parse(name.trim()) {
            Some(s) => calls.push(s),
            None => {
                return usage(format!(
                    "--syscalls {text}: {name:?} is not one of {}, or all",
                    Syscall::ALL.map(Syscall::name).join(", ")
                ));
            }
        }
    }
    calls.sort();
    calls.dedup();
    Ok(calls)
}

/// `128M`, `2G`, `512KiB`, `1048576`: bytes, with an optional 1024-based
/// suffix (K, M, G, T, with or without `iB`/`B`, any case).
pub fn parse_size(text: &str) -> Option<usize> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: usize = number.parse().ok()?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod log_flag_tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, UsageError> {
        match parse(args.iter().map(OsString::from))? {
            Command::Run(o) => Ok(o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn log_max_log_keep_and_pid_file() {
        let o = run(&[
            "--log-max",
            "100M",
            "--log-keep=3",
            "--pid-file",
            "/run/p.pid",
        ])
        .unwrap();
        assert_eq!(o.log_max, Some(100 << 20));
        assert_eq!(o.log_keep, 3);
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/p.pid")));
        let o = run(&["--log-max", "1M"]).unwrap();
        assert_eq!((o.log_max, o.log_keep), (Some(1 << 20), DEFAULT_LOG_KEEP));
        assert_eq!(run(&[]).unwrap().log_max, None);
        assert!(run(&["--log-max", "1048575"]).is_err());
        assert!(run(&["--log-max", "1M", "--log-keep", "1001"]).is_err());
        assert!(run(&["--log-keep", "2"]).is_err());
        assert!(run(&["--log-max", "2M", "--no-log"]).is_err());
        // --pid-file without a log is allowed: the pid is still useful.
        assert!(run(&["--pid-file", "p", "--no-log"]).is_ok());
    }
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("128M"), Some(128 << 20));
        assert_eq!(parse_size("128m"), Some(128 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("512KB"), Some(512 << 10));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("10B"), Some(10));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("12Q"), None);
        assert_eq!(parse_size("-1M"), None);
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
    }
}

#[cfg(test)]
mod metrics_flag_tests {
    use super::*;

    fn top(args: &[&str]) -> Result<TopOptions, UsageError> {
        let all = std::iter::once("top").chain(args.iter().copied());
        match parse(all.map(OsString::from))? {
            Command::Top(o) => Ok(o),
            other => panic!("{other:?}"),
        }
    }

    fn listen(v: &str) -> Result<std::net::SocketAddr, String> {
        top(&["--metrics-listen", v])
            .map(|o| o.metrics_listen.unwrap())
            .map_err(|e| e.message)
    }

    #[test]
    fn listen_takes_addresses_ports_and_names_of_loopback_only() {
        assert_eq!(
            listen("127.0.0.1:9545").unwrap().to_string(),
            "127.0.0.1:9545"
        );
        assert_eq!(listen("[::1]:9545").unwrap().to_string(), "[::1]:9545");
        assert_eq!(listen("9545").unwrap().to_string(), "127.0.0.1:9545");
        // Any address is taken as given (the run says so if not loopback).
        assert_eq!(listen("0.0.0.0:9545").unwrap().to_string(), "0.0.0.0:9545");
        // localhost: its IPv4 address when it has one (it does in every
        // /etc/hosts this project knows).
        assert_eq!(
            listen("localhost:9545").unwrap().to_string(),
            "127.0.0.1:9545"
        );
        for bad in [
            "localhost",
            "localhost:",
            ":9545",
            "localhost:99999",
            "a b:1",
        ] {
            let e = listen(bad).unwrap_err();
            assert!(e.starts_with(&format!("--metrics-listen {bad}: ")), "{e}");
        }
        let e = listen("no-such-host.invalid:9545").unwrap_err();
        assert!(e.contains("no-such-host.invalid does not resolve"), "{e}");
    }

    #[test]
    fn pins_are_process_names_and_fit_in_the_comms() {
        let o = top(&["--metrics-pin", "postgres", "--metrics-pin", "nginx"]).unwrap();
        assert_eq!(o.metrics_pins, [b"postgres".to_vec(), b"nginx".to_vec()]);
        let o = top(&["--metrics-pin", "a", "--metrics-pin", "a"]).unwrap();
        assert_eq!(o.metrics_pins, [b"a".to_vec()]);
        assert_eq!(
            top(&["--metrics-pin", "0123456789abcdef"])
                .unwrap_err()
                .message,
            "--metrics-pin 0123456789abcdef: a process name is 1 to 15 bytes (the kernel \
             keeps no more)"
        );
        assert!(
            top(&["--metrics-pin", "other"])
                .unwrap_err()
                .message
                .starts_with("--metrics-pin other: ")
        );
        assert_eq!(
            top(&[
                "--metrics-comms",
                "1",
                "--metrics-pin",
                "a",
                "--metrics-pin",
                "b"
            ])
            .unwrap_err()
            .message,
            "--metrics-pin: 2 names pinned, more than --metrics-comms 1 has series for; \
             raise --metrics-comms"
        );
    }
}
