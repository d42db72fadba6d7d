//! `--exit`'s table of calls in flight: one record per thread, which the
//! entry of each call fills and marks pending and its return completes
//! (bpf/probe.c). While the monitor runs, the records of threads that have
//! exited are swept out (`sweep`); a pending one among them is a call whose
//! return was never seen. At the stop, a record still pending is one of two
//! things, and they must not be confused:
//!
//! - a call still running (a read blocked on a pipe): reported once, as
//!   unfinished, with its latency so far;
//! - a call that returned without the return hook seeing it (a return
//!   probe follows at most `maxactive` calls at once): lost, and counted.
//!   The probe finds most of these itself, when the thread's next call
//!   begins (a thread's calls do not nest); only a thread's last call is
//!   left for the stop to find.
//!
//! So the stop looks twice. First with the entry hooks off and the return
//! hooks still on (`returned_unseen`): a record whose thread has exited,
//! or has moved on to another system call, returned, and the return hook,
//! still attached, did not take it: its return was missed. Then, with
//! everything detached (`calls_in_flight`), what is left and was not found
//! the first time is unfinished. A thread's state comes from
//! `/proc/TID/syscall`, which the kernel shows only to a process allowed to
//! ptrace the thread; where it cannot be read (another user's thread once
//! the monitor has dropped its capabilities, a thread running on a CPU, a
//! monitor in a pid namespace, whose /proc has other ids) the call counts
//! as unfinished: the cautious answer, and still counted once.

use std::collections::HashSet;
use std::io::ErrorKind;

use anyhow::Result;

use crate::app::abi::{self, Event, Inflight};
use crate::identity;
use crate::loader::Loaded;
use crate::sys;

/// `--exit`: the calls whose entry the probe stored, and what became of
/// them: `stored = matched + missed_returns + evicted + unfinished`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    /// Entries stored (calls that matched the filters while attached).
    pub stored: u64,
    /// Returns seen: each sent as a completed call (or dropped in the
    /// kernel with the ring full, counted there).
    pub matched: u64,
    /// Calls whose return was never seen (a return probe's maxactive):
    /// found when the thread's next call began, when a sweep found its
    /// thread gone, or at the stop.
    pub missed_returns: u64,
    /// Entries the in-flight table evicted (more calls in flight at once
    /// than it holds).
    pub evicted: u64,
    /// Calls still in flight at the stop: reported as unfinished.
    pub unfinished: u64,
    /// Returns of calls that matched the filters but whose entry was not
    /// seen (begun before the probe attached): not reported, not calls.
    pub no_entry: u64,
    /// Records of exited threads removed while the monitor ran.
    pub swept: u64,
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Records of exited threads removed.
    pub removed: u64,
    /// Of those, the ones still pending: returns never seen.
    pub missed: u64,
}

/// The records, by (thread id, entry time), found to have returned unseen.
#[derive(Debug, Default)]
pub struct ReturnedUnseen(HashSet<(u32, u64)>);

/// A thread, as `/proc/TID/syscall` shows it.
#[derive(Debug, PartialEq, Eq)]
enum ThreadNow {
    /// No such thread: it has exited.
    Gone,
    /// Blocked in the kernel in system call `nr`, or (-1) not in one.
    Blocked(i64),
    /// Running on a CPU, or not ours to look at.
    Unknown,
}

fn thread_now(tid: u32) -> ThreadNow {
    match std::fs::read_to_string(format!("/proc/{tid}/syscall")) {
        Ok(text) => parse_syscall_file(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => ThreadNow::Gone,
        // ESRCH: the thread exited while the file was open.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => ThreadNow::Gone,
        Err(_) => ThreadNow::Unknown,
    }
}

/// `0 0x3 0x7ffd... 0x10 ...` (the number, then arguments), `-1 sp pc`
/// (blocked, not in a system call) or `running`.
fn parse_syscall_file(text: &str) -> ThreadNow {
    match text.split_whitespace().next().map(str::parse::<i64>) {
        Some(Ok(nr)) => ThreadNow::Blocked(nr),
        _ => ThreadNow::Unknown,
    }
}

/// True when the call of `record` is over: its thread exited, or is
/// blocked in another system call or outside any.
fn returned(record: &Event) -> bool {
    match thread_now(record.pid) {
        ThreadNow::Gone => true,
        ThreadNow::Blocked(nr) => nr != record.syscall().number(),
        ThreadNow::Unknown => false,
    }
}

/// Every record in the table whose call has not returned (keyed by thread
/// id, which each holds); the others are completed calls kept for their
/// thread's next one.
fn pending(loaded: &Loaded) -> Result<Vec<Inflight>> {
    let inflight = loaded.map("inflight")?;
    let mut out = Vec::new();
    for key in inflight.keys() {
        let key = key?;
        let mut value = [0u8; abi::INFLIGHT_SIZE];
        // Completed since it was listed (its return hook took it): skip.
        if inflight.lookup(&key, &mut value).is_err() {
            continue;
        }
        let record = Inflight::decode(&value);
        if record.event.flags & abi::EVENT_PENDING != 0 {
            out.push(record);
        }
    }
    Ok(out)
}

/// Stop, step 1 of 2: with the entry hooks off and the return hooks on,
/// the records whose call is over although the return hook never took
/// it. A record still present after its thread was seen elsewhere was
/// missed: had the hook seen the return, it would have removed the record
/// before the thread could go on.
pub fn returned_unseen(loaded: &Loaded) -> Result<ReturnedUnseen> {
    let mut found = HashSet::new();
    // In another pid namespace, /proc/TID is another thread.
    if !identity::in_initial_pid_ns() {
        return Ok(ReturnedUnseen(found));
    }
    let candidates: Vec<(u32, u64)> = pending(loaded)?
        .iter()
        .filter(|r| returned(&r.event))
        .map(|r| (r.event.pid, r.event.ts_ns))
        .collect();
    if candidates.is_empty() {
        return Ok(ReturnedUnseen(found));
    }
    // Looked up again after the thread was seen to have moved on.
    let still: HashSet<(u32, u64)> = pending(loaded)?
        .iter()
        .map(|r| (r.event.pid, r.event.ts_ns))
        .collect();
    found.extend(candidates.into_iter().filter(|c| still.contains(c)));
    Ok(ReturnedUnseen(found))
}

/// Stop, step 2 of 2, after detaching: the calls left in the table that
/// are unfinished (as events, in the order they began, with their latency
/// so far), and the probe's counts of what became of the others.
pub fn calls_in_flight(
    loaded: &Loaded,
    unseen: &ReturnedUnseen,
    swept: Swept,
) -> Result<(ExitCounts, Vec<Event>)> {
    let now = sys::monotonic_ns();
    let mut missed_at_stop = 0;
    let mut events = Vec::new();
    for record in pending(loaded)? {
        let mut event = record.event;
        if unseen.0.contains(&(event.pid, event.ts_ns)) {
            missed_at_stop += 1;
            continue;
        }
        event.flags = (event.flags & !abi::EVENT_PENDING) | abi::EVENT_UNFINISHED;
        event.ret = 0;
        event.lat_ns = now.saturating_sub(event.ts_ns);
        events.push(event);
    }
    events.sort_by_key(|e| e.ts_ns);
    let counts = loaded.map("exit_counts")?;
    let count = |slot: u32| counts.sum_per_cpu_u64(&slot.to_ne_bytes());
    let stored = count(abi::COUNT_STORED)?;
    let matched = count(abi::COUNT_MATCHED)?;
    let missed_returns = count(abi::COUNT_MISSED_RETURN)? + swept.missed + missed_at_stop;
    let unfinished = events.len() as u64;
    let exit = ExitCounts {
        stored,
        matched,
        missed_returns,
        // An evicted entry leaves no trace but the arithmetic.
        evicted: stored.saturating_sub(matched + missed_returns + unfinished),
        unfinished,
        no_entry: count(abi::COUNT_NO_ENTRY)?,
        swept: swept.removed,
    };
    Ok((exit, events))
}

/// The sweeps of a run: when the last one was, and what they found.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sweeps {
    /// The table's insert count at the last sweep.
    inserted_at: u64,
    /// Records of exited threads removed, and how many were pending.
    pub swept: Swept,
    /// A sweep failed (said once; the stop still counts what is left).
    failed: bool,
}

impl Sweeps {
    /// Sweeps the table of dead threads' records once
    /// `SWEEP_AFTER_INSERTS` new records have come since the last sweep;
    /// true when it did. A failure is said once, and no sweep is tried
    /// after it.
    pub fn sweep_if_due(&mut self, loaded: &Loaded) -> bool {
        if self.failed {
            return false;
        }
        let result = inserted(loaded).and_then(|inserted| {
            if inserted < self.inserted_at + SWEEP_AFTER_INSERTS {
                return Ok(false);
            }
            let swept = sweep(loaded)?;
            self.swept.removed += swept.removed;
            self.swept.missed += swept.missed;
            self.inserted_at = inserted;
            Ok(true)
        });
        result.unwrap_or_else(|e| {
            crate::app::output::say(&format!(
                "cannot sweep the table of calls in flight ({e:#}); calls of threads that \
                 exited may be evicted from it and counted lost"
            ));
            self.failed = true;
            false
        })
    }
}

/// After this many new records (threads' first calls), the monitor sweeps
/// the table: a few thousand dead threads' records cost nothing to keep,
/// and an LRU map with room to spare evicts nothing.
pub const SWEEP_AFTER_INSERTS: u64 = 4096;

/// Returns missed so far, as the probe found them (an entry that found
/// its thread's record still pending); sweeps and the stop find more.
pub fn missed_returns_so_far(loaded: &Loaded) -> Result<u64> {
    Ok(loaded
        .map("exit_counts")?
        .sum_per_cpu_u64(&abi::COUNT_MISSED_RETURN.to_ne_bytes())?)
}

/// While the monitor runs: at least how many pending records the table
/// has evicted so far, from `stored - matched - missed - pending`, read in
/// the order that can only make it smaller than the truth: `stored` first
/// (calls stored later are not in it), the pending records next (a
/// record that completes meanwhile may also be in `matched`, read last).
/// Every record present for the whole walk is seen: the kernel's walk of
/// a hash goes from a key to the next, and starts again from the first
/// when the key it is at was deleted. It walks the whole table, two
/// system calls per record: for the sweeps, which do so anyway, not for
/// every interval. `swept`: what the sweeps have removed so far.
pub fn evicted_so_far(loaded: &Loaded, swept: Swept) -> Result<u64> {
    let counts = loaded.map("exit_counts")?;
    let count = |slot: u32| counts.sum_per_cpu_u64(&slot.to_ne_bytes());
    let stored = count(abi::COUNT_STORED)?;
    // A walk that started again lists some records twice: each counts once.
    let pending: HashSet<(u32, u64)> = pending(loaded)?
        .iter()
        .map(|r| (r.event.pid, r.event.ts_ns))
        .collect();
    let pending = pending.len() as u64;
    let matched = count(abi::COUNT_MATCHED)?;
    let missed = count(abi::COUNT_MISSED_RETURN)? + swept.missed;
    Ok(stored.saturating_sub(matched + missed + pending))
}

/// Records added to the table since the probe attached.
pub fn inserted(loaded: &Loaded) -> Result<u64> {
    Ok(loaded
        .map("exit_counts")?
        .sum_per_cpu_u64(&abi::COUNT_INSERTED.to_ne_bytes())?)
}

/// While the monitor runs: removes the records of threads that have
/// exited, so that the table holds live threads only and its LRU never
/// has to evict a call in flight for them. Returns how many of those were
/// still pending: calls whose return was never seen (a thread returns from
/// its calls before it exits), to count as missed. Only a thread that is
/// gone is touched, so no program can be writing its record meanwhile.
/// Nothing is swept by a monitor in another pid namespace, whose /proc
/// does not show the host's thread ids.
pub fn sweep(loaded: &Loaded) -> Result<Swept> {
    let mut swept = Swept::default();
    if !identity::in_initial_pid_ns() {
        return Ok(swept);
    }
    let inflight = loaded.map("inflight")?;
    let keys: Vec<Vec<u8>> = inflight.keys().collect::<Result<_, _>>()?;
    for key in keys {
        let tid = u32::from_ne_bytes(key.as_slice().try_into()?);
        if thread_now(tid) != ThreadNow::Gone {
            continue;
        }
        let mut value = [0u8; abi::INFLIGHT_SIZE];
        if inflight.lookup(&key, &mut value).is_err() {
            continue;
        }
        if inflight.delete(&key).is_ok() {
            swept.removed += 1;
            if Inflight::decode(&value).event.flags & abi::EVENT_PENDING != 0 {
                swept.missed += 1;
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syscall_file_says_where_a_thread_is() {
        assert_eq!(
            parse_syscall_file("0 0x3 0x7ffd1000 0x10 0x0 0x0 0x0 0x7ffd0f00 0x7f00\n"),
            ThreadNow::Blocked(0)
        );
        assert_eq!(
            parse_syscall_file("-1 0x7ffd0f00 0x7f00\n"),
            ThreadNow::Blocked(-1)
        );
        assert_eq!(parse_syscall_file("running\n"), ThreadNow::Unknown);
        assert_eq!(parse_syscall_file(""), ThreadNow::Unknown);
    }

    #[test]
    fn a_thread_reading_its_own_file_is_in_read_and_a_dead_one_is_gone() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        assert_eq!(thread_now(me), ThreadNow::Blocked(libc::SYS_read));
        let child = std::thread::spawn(|| unsafe { libc::gettid() } as u32)
            .join()
            .unwrap();
        // A thread id is not reused this soon: pid_max is at least 32768.
        // join() returns once the thread cleared its tid, a moment before
        // the kernel releases it (/proc still shows it, as exiting).
        let mut now = thread_now(child);
        for _ in 0..200 {
            if now == ThreadNow::Gone {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            now = thread_now(child);
        }
        assert_eq!(now, ThreadNow::Gone);
    }
}
