//! Reports on stderr shared by the streaming monitor and `probe top`.

use crate::app::inflight::ExitCounts;
use crate::app::loss::{Cause, say_lost};
use crate::app::output::say;
use crate::attach::Method;

/// Why the kernel skipped runs of the probe's programs attached by
/// `method` (its recursion protection), as the loss lines say it, and what
/// the kernel cannot tell apart. Measured (README, "Recursion misses"): a
/// syscall hook can only meet a CPU whose flag a preempted task left
/// raised; other tracers' kprobe, tracepoint and perf-event programs run
/// with preemption off, so a system call never meets one of them running.
pub fn recursion_cause(method: Option<Method>) -> &'static str {
    match method {
        // Its own counter, per program: only a run of the same program.
        Some(Method::RawTracepoint) => {
            "its recursion protection: a run of the probe's program had been preempted on that \
             CPU, which kernels that run syscall tracepoint programs preemptibly allow, as 7.2 \
             does; the program runs for every system call, so some of these may not be reads or \
             writes"
        }
        // bpf_prog_active, the CPU's flag for every kprobe, tracepoint
        // and perf-event program, which bpf(2)'s map operations raise
        // with only migration off.
        _ => {
            "its recursion protection: on that CPU a task of any process, this one included, \
             had been preempted inside a bpf(2) map operation, which only kernels that preempt \
             inside the kernel allow, e.g. preempt=full"
        }
    }
}

/// What keeps the skips of `recursion_cause` away.
fn recursion_advice(method: Option<Method>) -> &'static str {
    match method {
        Some(Method::RawTracepoint) => "try --attach tracepoint, whose programs are not preempted",
        _ => "try --attach raw-tracepoint, which map operations do not stop",
    }
}

/// `--exit` and `top`: what became of the calls between their entry and exit.
/// `exit_skips`: the runs of the return hooks the kernel skipped, as it
/// counted them (None where it does not); `unfinished`: what became of the
/// calls still in flight at the stop (`written as unfinished`, `not
/// counted (no result yet)`); `no_entry`: of the returns whose entry was
/// not seen (`not reported`, `not counted`).
pub fn exit_losses(
    e: &ExitCounts,
    method: Option<Method>,
    return_maxactive: Option<u32>,
    exit_skips: Option<u64>,
    unfinished: &str,
    no_entry: &str,
) {
    let [(_, skipped), (_, unexplained)] =
        Cause::split_missed_returns(method, e.missed_returns, exit_skips);
    let tracepoints = matches!(method, Some(Method::Tracepoint | Method::RawTracepoint));
    if skipped > 0 {
        // No maxactive here: an exit tracepoint runs for every return,
        // unless the kernel skips the program.
        say_lost(
            skipped,
            "events",
            Cause::KernelSkipped,
            &format!(
                "their returns were never seen: the kernel skipped the exit hook ({}); {}",
                recursion_cause(method),
                recursion_advice(method)
            ),
        );
    }
    if unexplained > 0 && tracepoints {
        // More than the kernel says it skipped: nothing known explains it.
        say_lost(
            unexplained,
            "events",
            Cause::MissedReturn,
            "their returns were never seen, and the kernel skipped no exit hook for them: a \
             cause the probe does not know (please report it)",
        );
    } else if unexplained > 0 {
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
            unexplained,
            "events",
            Cause::MissedReturn,
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
            "{} returned with no entry seen (begun before the probe attached or after the \
             stop turned the entry hooks off, or an entry the kernel skipped, counted above): \
             {no_entry}",
            match e.no_entry {
                1 => "1 call".to_string(),
                n => format!("{n} calls"),
            }
        ));
    }
}

/// Why the kernel skipped the entry hook of `method` on calls, for the
/// loss line (`say_lost` adds the count and the cause's name).
pub fn entry_skips(method: Option<Method>, filtered: bool) -> String {
    format!(
        "the kernel skipped the probe on these calls ({}){}; {}",
        recursion_cause(method),
        before_filters(filtered),
        recursion_advice(method)
    )
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
