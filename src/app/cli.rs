//! Command-line parsing: flags in, a checked `Options` out, or a usage
//! error (exit code 2) that says which flag and why.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::app::abi::COMM_LEN;
use crate::attach::Method;

pub const DEFAULT_PAGES: usize = 1024;
/// The queue between the rings and the outputs may use this much memory.
pub const DEFAULT_BUFFER: usize = 128 << 20;
const MIN_BUFFER: usize = 1 << 20;
const MAX_BUFFER: usize = 1 << 40;
pub const DEFAULT_LOG: &str = "syscalls.log";
const MAX_PAGES: usize = 1 << 16;

pub const USAGE: &str = "\
usage: probe [options]        monitor every read(2) and write(2) on this machine
       probe inspect FILE     show what the loader sees in a BPF object file
       probe load FILE        load every program of a BPF object file in this
                              kernel, say what the verifier made of each, unload

options:
  --attach METHOD  auto (default), kprobe, kprobe-legacy or tracepoint
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
  -d, --duration SECS  stop after SECS seconds (default: until Ctrl+C or SIGTERM)
      --exit       one event per call when it returns, with its result (ret=)
                   and latency (lat_ns=); two hooks per call instead of one
      --maxactive N  with --exit and kprobe-legacy: calls each return probe
                   follows at once, 1 to 4096 (default: 4096)
      --pages N    data pages per CPU ring, a power of two (default: 1024)
      --buffer SIZE  memory for events the outputs have not written yet,
                   e.g. 512M or 2G (default: 128M; used only as needed)
  -h, --help       this text
      --version    the version";

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
    pub duration: Option<Duration>,
    pub pages: usize,
    /// Bytes the queue between the rings and the outputs may use.
    pub buffer: usize,
    /// Completed calls (entry and exit hooks) instead of entries.
    pub exit: bool,
    /// maxactive of legacy return probes; None: the loader's default.
    pub maxactive: Option<u32>,
}

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
            duration: None,
            pages: DEFAULT_PAGES,
            buffer: DEFAULT_BUFFER,
            exit: false,
            maxactive: None,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Options),
    Inspect(PathBuf),
    Load(PathBuf),
    Help,
    Version,
}

/// A usage error, shown as `probe: MESSAGE` and a hint to `--help`.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

fn usage<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(message.into()))
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
    let mut o = Options::default();
    let mut log_flag = None::<&str>;
    while let Some(arg) = args.next() {
        let bytes = arg.as_bytes();
        // --flag=value, and -xVALUE for the short flags that take a value.
        let (flag, mut inline): (String, Option<OsString>) = match bytes
            .iter()
            .position(|&b| b == b'=')
        {
            Some(i) if bytes.starts_with(b"--") => (
                String::from_utf8_lossy(&bytes[..i]).into_owned(),
                Some(std::ffi::OsStr::from_bytes(&bytes[i + 1..]).to_owned()),
            ),
            _ if bytes.len() > 2 && bytes[0] == b'-' && matches!(bytes[1], b'p' | b'c' | b'd') => (
                String::from_utf8_lossy(&bytes[..2]).into_owned(),
                Some(std::ffi::OsStr::from_bytes(&bytes[2..]).to_owned()),
            ),
            _ => (String::from_utf8_lossy(bytes).into_owned(), None),
        };
        let mut value = |name: &str| -> Result<OsString, UsageError> {
            match inline.take().or_else(|| args.next()) {
                Some(v) => Ok(v),
                None => usage(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            "--attach" => {
                let v = value("--attach")?;
                let v = v.to_string_lossy();
                o.attach = match v.as_ref() {
                    "auto" => None,
                    m => match Method::parse(m) {
                        Some(m) => Some(m),
                        None => {
                            return usage(format!(
                                "--attach {m}: unknown method (auto, kprobe, kprobe-legacy, tracepoint)"
                            ));
                        }
                    },
                };
            }
            "-p" | "--pid" => {
                let v = value("--pid")?;
                let v = v.to_string_lossy();
                match v.parse::<u32>() {
                    Ok(p) if p > 0 => o.pid = Some(p),
                    _ => {
                        return usage(format!(
                            "--pid {v}: not a process id (a whole number above 0)"
                        ));
                    }
                }
            }
            "-c" | "--comm" => {
                let v = value("--comm")?;
                let v = v.as_bytes();
                if v.is_empty() || v.len() >= COMM_LEN || v.contains(&0) {
                    return usage(format!(
                        "--comm {}: a process name is 1 to {} bytes (the kernel keeps no more)",
                        String::from_utf8_lossy(v),
                        COMM_LEN - 1
                    ));
                }
                o.comm = Some(v.to_vec());
            }
            "--cgroup" => {
                let v = value("--cgroup")?;
                if v.is_empty() {
                    return usage("--cgroup needs a path");
                }
                o.cgroup = Some(PathBuf::from(v));
            }
            "-v" | "--verbose" => o.verbose += 1,
            "-vv" => o.verbose += 2,
            "-q" | "--quiet" => o.quiet = true,
            "--explain" => o.explain = true,
            "--exit" => o.exit = true,
            "--maxactive" => {
                let v = value("--maxactive")?;
                let v = v.to_string_lossy();
                match v.parse::<u32>() {
                    Ok(n @ 1..=4096) => o.maxactive = Some(n),
                    _ => {
                        return usage(format!(
                            "--maxactive {v}: a whole number from 1 to 4096 (the kernel's limit)"
                        ));
                    }
                }
            }
            "--json" => o.json = true,
            "--log" => {
                let v = value("--log")?;
                if v.is_empty() {
                    return usage("--log needs a path");
                }
                log_flag = Some("--log");
                o.log = Some(PathBuf::from(v));
            }
            "--no-log" => {
                log_flag.get_or_insert("--no-log");
                o.log = None;
            }
            "-d" | "--duration" => {
                let v = value("--duration")?;
                let v = v.to_string_lossy();
                match v.parse::<f64>() {
                    Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => {
                        o.duration = Some(Duration::from_secs_f64(s))
                    }
                    _ => return usage(format!("--duration {v}: not a number of seconds above 0")),
                }
            }
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
    Ok(Command::Run(o))
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
