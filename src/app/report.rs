//! Reports on stderr shared by the streaming monitor and `probe top`.

use crate::app::inflight::ExitCounts;
use crate::app::loss::{Cause, say_lost};
use crate::app::output::say;
use crate::attach::Method;

/// `--exit` and `top`: what became of the calls between their entry and exit.
/// `unfinished`: what became of the calls still in flight at the stop
/// (`written as unfinished`, `not counted (no result yet)`); `no_entry`:
/// of the returns whose entry was not seen (`not reported`, `not
/// counted`).
pub fn exit_losses(
    e: &ExitCounts,
    method: Option<Method>,
    return_maxactive: Option<u32>,
    unfinished: &str,
    no_entry: &str,
) {
    let cause = Cause::of_missed_returns(method);
    if e.missed_returns > 0 && cause == Cause::KernelSkipped {
        // No maxactive here: an exit tracepoint runs for every return,
        // unless the kernel skips the program, which it does while
        // another BPF program (or this one, preempted) runs on that CPU.
        say_lost(
            e.missed_returns,
            "events",
            cause,
            "their returns were never seen: the kernel skipped the exit hook (its recursion \
             protection: another BPF program was running on that CPU); fewer BPF tools at \
             once, or filter with -c or -p",
        );
    } else if e.missed_returns > 0 {
        let limit = match return_maxactive {
            Some(n) => format!("at most {n} calls at once (maxactive)"),
            None => "only so many calls at once".to_string(),
        };
        let fix = if method == Some(Method::KprobeLegacy) {
            "a larger --maxactive, or --attach tracepoint (no such limit)"
        } else {
            "--attach tracepoint (no such limit), or kprobe-legacy with --maxactive"
        };
        say_lost(
            e.missed_returns,
            "events",
            cause,
            &format!(
                "their returns were never seen: each return probe follows {limit}, and more \
                 were in flight (a blocked read holds one all along); try {fix}"
            ),
        );
    }
    if e.evicted > 0 {
        say_lost(
            e.evicted,
            "events",
            Cause::Evicted,
            "evicted from the table of calls in flight (more at once than it holds)",
        );
    }
    let calls_were = |n: u64| match n {
        1 => "1 call was".to_string(),
        n => format!("{n} calls were"),
    };
    if e.unfinished > 0 {
        say(&format!(
            "{} still in flight at the stop: {unfinished}",
            calls_were(e.unfinished)
        ));
    }
    if e.no_entry > 0 {
        say(&format!(
            "{} returned with no entry seen (begun before the probe attached, or an entry \
             the kernel skipped, counted above): {no_entry}",
            match e.no_entry {
                1 => "1 call".to_string(),
                n => format!("{n} calls"),
            }
        ));
    }
}

/// The kernel skips a program before it runs, so before its filters: with
/// -c, -p or --cgroup, the calls it skipped may be other processes'. They
/// are counted lost all the same (the count is an upper bound then).
pub fn before_filters(filtered: bool) -> &'static str {
    if filtered {
        "; counted before the filters ran, so some may be calls of other processes"
    } else {
        ""
    }
}
