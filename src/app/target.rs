//! `-p PID` follows a process, not a number. A pid is given to another
//! process once the first has exited and been reaped; `strace -p` and
//! `perf -p` stop when their process exits, and so does the probe:
//!
//! - at the start it takes a pidfd for the process (pidfd_open, Linux
//!   5.3+), a handle on that process alone, and reads when the process
//!   started (`/proc/PID/stat`, field 22, in clock ticks since boot);
//! - while it runs it asks the pidfd, between its other checks, whether
//!   the process has exited (`Target::exited`), and then stops as at the
//!   end of `-d`; where pidfd_open is refused (a seccomp profile, a kernel
//!   without it) it reads `/proc/PID/stat` instead, and a start time that
//!   changed, a zombie or no file at all is the exit;
//! - in the kernel, the time between the exit and the stop is covered
//!   too: a call whose tgid matches is reported only if its process's
//!   group leader started at that same tick (`task_struct.start_boottime`,
//!   read at offsets taken from the kernel's BTF: `TargetIdentity`), so a
//!   process that reused the pid in between is never reported. BPF cannot
//!   resolve a pidfd; the start time is what tells two processes with one
//!   pid apart.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::app::abi::TargetIdentity;
use crate::app::output::{format, say};
use crate::obj::btf::Btf;
use crate::sys::{self, Fd};

/// How often the monitors look for the exit (their wait loops' tick): the
/// longest a process that reused the pid could run before the stop, and
/// so what the kernel-side check covers.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);

/// The kernel's BTF is read once, when -p is given; a file larger than
/// this is not one (today's are 5 to 7 MiB).
const MAX_BTF: u64 = 64 << 20;

/// The process of `-p`, held.
pub struct Target {
    pid: u32,
    /// Its name when the probe started (for the line at its exit).
    comm: Vec<u8>,
    /// When its group leader started: clock ticks since boot, as this
    /// process's time namespace shows them in /proc.
    ticks: u64,
    watch: Watch,
}

/// How the exit is found.
enum Watch {
    /// The pidfd polls readable.
    Pidfd(Fd),
    /// pidfd_open was refused: /proc/PID/stat, read at each check.
    Proc,
}

/// What /proc/PID/stat says of a process.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    comm: Vec<u8>,
    /// Field 3: R, S, D, ..., Z (a zombie: exited, not reaped), X (dead).
    state: u8,
    /// Field 22: the start time, clock ticks since boot.
    start: u64,
}

impl Stat {
    fn running(&self) -> bool {
        !matches!(self.state, b'Z' | b'X')
    }
}

impl Target {
    /// Holds process `pid` (which the caller found exists in this pid
    /// namespace). The process exiting meanwhile is an error: nothing
    /// would be monitored.
    pub fn open(pid: u32) -> Result<Target> {
        check_proc_is_ours()?;
        // kill(2) and /proc take a thread's id as well as a process's; the
        // kernel would never match it with a tgid.
        if let Some(tgid) = thread_group_of(pid).filter(|&t| t != pid) {
            return Err(anyhow!(
                "-p {pid}: {pid} is a thread of process {tgid}, not a process: use -p {tgid}"
            ));
        }
        let watch = match sys::process::pidfd_open(pid) {
            Ok(fd) => Watch::Pidfd(fd),
            Err(e) => refused_pidfd(pid, e)?,
        };
        let stat = read_stat(pid).map_err(|_| gone(pid, None))?;
        let target = Target {
            pid,
            comm: stat.comm,
            ticks: stat.start,
            watch,
        };
        // The pidfd still open on a live process: the stat just read was
        // its, not a newcomer's with the same pid.
        if target.exited() || !target.past_its_first_tick() {
            return Err(gone(pid, Some(&target.comm)));
        }
        Ok(target)
    }

    /// The same-tick hole: the kernel compares start times in clock ticks
    /// (10 ms), and a process that reused the pid within the tick the
    /// target started in would match. It cannot have, if the target is
    /// still alive after that tick: a newcomer starts after the target
    /// exited, so in a later tick. A target younger than a tick is waited
    /// for (at most a tick) and looked at again; false if it exited.
    fn past_its_first_tick(&self) -> bool {
        let tick = tick_ns();
        let next = (self.ticks + 1).saturating_mul(tick);
        let now = sys::process::boottime_ns();
        if now >= next {
            return true;
        }
        std::thread::sleep(Duration::from_nanos(next - now));
        // The clock, then the process: alive after the tick ended.
        while sys::process::boottime_ns() < next {
            std::thread::sleep(Duration::from_micros(100));
        }
        !self.exited()
    }

    /// True once the process has exited (a zombie counts: it makes no
    /// more calls). Never blocks.
    pub fn exited(&self) -> bool {
        match &self.watch {
            Watch::Pidfd(fd) => sys::process::pidfd_exited(fd.as_fd()),
            // Only a file that is gone says the process is: another error
            // (a /proc mounted with hidepid, once the capabilities are
            // dropped) cannot tell, and a false stop would be worse.
            Watch::Proc => match read_stat(self.pid) {
                Ok(s) => s.start != self.ticks || !s.running(),
                Err(e) => {
                    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
                }
            },
        }
    }

    /// The line said when it exited: `process 4242 (name) exited: stopping`.
    pub fn exit_line(&self) -> String {
        format!(
            "process {} ({}) exited: stopping",
            self.pid,
            format::printable(&self.comm)
        )
    }

    /// What the kernel needs to tell this process from one that reuses
    /// its pid: None (said in one line) without the kernel's BTF. Reading
    /// that (5 MB, parsed) costs about 8 ms at the start, so only -p does.
    pub fn identity(&self, debug: &dyn Fn(&str)) -> Option<TargetIdentity> {
        let path = btf_path();
        let started = Instant::now();
        match task_offsets(&path) {
            Ok((leader_off, start_off)) => {
                let (start_lo, start_hi) = start_range(self.ticks, tick_ns(), boottime_offset());
                debug(&format!(
                    "-p {}: process {} started at tick {} (its start_boottime in [{start_lo}, \
                     {start_hi}) ns); task_struct.group_leader at {leader_off}, .start_boottime \
                     at {start_off}, from {} in {:.1} ms; its exit watched {}",
                    self.pid,
                    format::printable(&self.comm),
                    self.ticks,
                    path.display(),
                    started.elapsed().as_secs_f64() * 1e3,
                    match self.watch {
                        Watch::Pidfd(_) => "through a pidfd",
                        Watch::Proc => "in /proc",
                    }
                ));
                Some(TargetIdentity {
                    leader_off,
                    start_off,
                    start_lo,
                    start_hi,
                })
            }
            Err(why) => {
                say(&format!(
                    "-p {pid}: no kernel BTF to tell process {pid} from another that reuses \
                     its pid ({why}): the kernel matches the number alone until the probe \
                     sees process {pid} exit (within {} ms) and detaches",
                    CHECK_EVERY.as_millis(),
                    pid = self.pid
                ));
                None
            }
        }
    }
}

/// pidfd_open failed: a refusal (the call missing, or a seccomp profile
/// saying no) falls back to /proc, said in one line; the rest is an error.
fn refused_pidfd(pid: u32, e: io::Error) -> Result<Watch> {
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => {
            say(&format!(
                "-p {pid}: pidfd_open refused ({}): the exit of process {pid} is found by \
                 reading /proc/{pid}/stat every {} ms instead",
                plain(&e),
                CHECK_EVERY.as_millis()
            ));
            Ok(Watch::Proc)
        }
        Some(libc::ESRCH) => Err(gone(pid, None)),
        _ => Err(anyhow!(
            "-p {pid}: cannot hold process {pid}: pidfd_open: {}",
            plain(&e)
        )),
    }
}

/// An error's text without ` (os error N)`.
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" (os error") {
        Some((words, _)) => words.to_string(),
        None => text,
    }
}

fn gone(pid: u32, comm: Option<&[u8]>) -> anyhow::Error {
    let name = comm.map_or(String::new(), |c| format!(" ({})", format::printable(c)));
    anyhow!(
        "-p {pid}: process {pid}{name} exited while the probe was starting: nothing was monitored"
    )
}

/// /proc/PID/stat names the processes of this pid namespace only if the
/// /proc mounted here is this namespace's (`unshare --pid --fork` without
/// `--mount-proc` leaves the host's): else the start time read would be
/// another process's.
fn check_proc_is_ours() -> Result<()> {
    let me = std::process::id().to_string();
    match std::fs::read_link("/proc/self") {
        Ok(link) if link.as_os_str() == me.as_str() => Ok(()),
        _ => Err(anyhow!(
            "-p: the /proc mounted here is not this pid namespace's (/proc/self is not \
             process {me}): mount one (unshare --mount-proc, or mount -t proc proc /proc)"
        )),
    }
}

/// /proc/PID/stat, read whole (it is short: the bound is for safety) and
/// parsed.
fn read_stat(pid: u32) -> io::Result<Stat> {
    let mut text = Vec::with_capacity(512);
    std::fs::File::open(format!("/proc/{pid}/stat"))?
        .take(4096)
        .read_to_end(&mut text)?;
    parse_stat(&text).ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
}

/// `PID (COMM) STATE PPID ... STARTTIME ...`: COMM may hold anything,
/// spaces and parentheses included, so the fields are counted from the
/// last `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let comm = text.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 (the state), so field 22 is fields[19].
    Some(Stat {
        comm,
        state: *fields.first()?.as_bytes().first()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The process a thread id belongs to (`Tgid:` in its status).
fn thread_group_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// A clock tick (USER_HZ: 100 a second on x86-64), in ns.
fn tick_ns() -> u64 {
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        1_000_000_000 / hz as u64
    } else {
        10_000_000
    }
}

/// This process's time namespace's boottime offset (ns, signed): /proc
/// shows start times, and CLOCK_BOOTTIME reads, with it added; the kernel
/// keeps them without. 0 without time namespaces (before 5.6).
fn boottime_offset() -> i128 {
    let Ok(text) = std::fs::read_to_string("/proc/self/timens_offsets") else {
        return 0;
    };
    parse_boottime_offset(&text).unwrap_or(0)
}

/// `boottime <secs> <nanosecs>` of /proc/self/timens_offsets, in ns.
fn parse_boottime_offset(text: &str) -> Option<i128> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("boottime"))?;
    let mut parts = line.split_whitespace().skip(1);
    let secs: i128 = parts.next()?.parse().ok()?;
    let nanos: i128 = parts.next()?.parse().ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

/// The kernel's start_boottime (ns) of a process that /proc shows started
/// at tick `ticks`: /proc computes `(start_boottime + offset) / tick`,
/// rounded down (nsec_to_clock_t), so start_boottime is in
/// `[ticks * tick - offset, (ticks + 1) * tick - offset)`. A range, not a
/// tick compared in the kernel: exact whatever the offset, and no
/// division there.
fn start_range(ticks: u64, tick: u64, offset: i128) -> (u64, u64) {
    let at = |t: u64| (i128::from(t) * i128::from(tick) - offset).clamp(0, u64::MAX.into()) as u64;
    (at(ticks), at(ticks.saturating_add(1)))
}

/// Where the kernel's BTF is read from: PROBE_BTF=FILE, else the running
/// kernel's.
fn btf_path() -> std::path::PathBuf {
    std::env::var_os("PROBE_BTF")
        .map(Into::into)
        .unwrap_or_else(|| crate::loader::KERNEL_BTF.into())
}

/// (task_struct.group_leader, task_struct.start_boottime): byte offsets in
/// the BTF file at `path`, or why there are none.
fn task_offsets(path: &Path) -> Result<(u32, u32), String> {
    let shown = path.display();
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BTF + 1).read_to_end(&mut data))
        .map_err(|e| format!("{shown}: {}", plain(&e)))?;
    if data.len() as u64 > MAX_BTF {
        return Err(format!("{shown} is larger than {} MiB", MAX_BTF >> 20));
    }
    let btf = Btf::parse(&data).map_err(|e| format!("{shown}: {e}"))?;
    let field = |name: &str| {
        let task = btf.composite("task_struct")?;
        let m = btf.member(task, name)?;
        (btf.size_of(m.type_id)? == 8 && m.bit_offset % 8 == 0).then_some(m.bit_offset / 8)
    };
    match (field("group_leader"), field("start_boottime")) {
        (Some(leader), Some(start)) if start > 0 => Ok((leader, start)),
        _ => Err(format!(
            "{shown} has no task_struct with group_leader and start_boottime"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (a) b (c) Z 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 \
                     139249 1000 10 18446744073709551615\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: b"a) b (c".to_vec(),
                state: b'Z',
                start: 139249
            })
        );
        assert_eq!(parse_stat(b"4242 (cut"), None);
        assert_eq!(parse_stat(b"4242 (x) S 1 2"), None);
    }

    #[test]
    fn the_start_range_undoes_the_time_namespace_offset_exactly() {
        const TICK: u64 = 10_000_000;
        // No offset: the tick's 10 ms.
        assert_eq!(
            start_range(139249, TICK, 0),
            (1_392_490_000_000, 1_392_500_000_000)
        );
        // An offset that is not whole ticks: /proc showed tick 139249
        // for every start s with s + offset in that tick.
        let offset = 1_000_003_000_000i128 + 7;
        let (lo, hi) = start_range(139249, TICK, offset);
        for s in [lo, hi - 1] {
            assert_eq!((i128::from(s) + offset) / i128::from(TICK), 139249);
        }
        assert_eq!((i128::from(lo - 1) + offset) / i128::from(TICK), 139248);
        assert_eq!((i128::from(hi) + offset) / i128::from(TICK), 139250);
        // A negative offset, and one larger than the start (clamped).
        assert_eq!(start_range(5, TICK, -3), (50_000_003, 60_000_003));
        assert_eq!(start_range(5, TICK, 1 << 62), (0, 0));
    }

    #[test]
    fn the_boottime_offset_is_read_signed() {
        let text = "monotonic           0         0\nboottime         -100     25000\n";
        assert_eq!(parse_boottime_offset(text), Some(-100_000_000_000 + 25_000));
        assert_eq!(parse_boottime_offset("monotonic 1 2\n"), None);
    }
}
