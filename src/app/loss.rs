//! Why a call the probe matched never reached an output or a count: one
//! name per cause, said the same way in the three places an operator
//! reads it. On stderr each loss line ends with the name in brackets
//! (`probe: lost 12 events: the kernel found the map rings full; ...
//! [ring_full]`); `probe top --json` has it as a key (`"lost":
//! {"ring_full":12}`), the metrics as a label value
//! (`probe_events_lost_total{cause="ring_full"}`). A cause's counts add up
//! the same in all three: the stderr lines that end with a name sum to
//! that name's count.
//!
//! The names are stable (dashboards and alert rules use them); the
//! sentences are what the README's table and the metrics' HELP say.

use crate::app::output::say;
use crate::attach::Method;

/// A cause of loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The kernel found the rings full (the BPF program's failed output,
    /// counted in its `drops` map).
    RingFull,
    /// The outputs fell more than `--buffer` behind.
    BufferFull,
    /// Still buffered when the stop (3 s, or a second signal) cut it off.
    CutAtStop,
    /// The kernel's recursion protection skipped the probe's program (at a
    /// call's entry; on tracepoints also at its return, which leaves the
    /// call without a result).
    KernelSkipped,
    /// A return probe's `maxactive` missed the call's return.
    MissedReturn,
    /// Evicted from the table of calls in flight.
    Evicted,
    /// A record in a ring that is not an event (a bug).
    Malformed,
}

impl Cause {
    /// Every cause, in the order the reports list them.
    pub const ALL: [Cause; 7] = [
        Cause::RingFull,
        Cause::BufferFull,
        Cause::CutAtStop,
        Cause::KernelSkipped,
        Cause::MissedReturn,
        Cause::Evicted,
        Cause::Malformed,
    ];

    /// The causes `probe top` (and so the metrics) can have: it sends no
    /// event, so no ring, buffer or output can lose one.
    pub const TOP: [Cause; 3] = [Cause::KernelSkipped, Cause::MissedReturn, Cause::Evicted];

    /// Its stable name: stderr's `[name]`, the JSON key, the label value.
    pub fn label(self) -> &'static str {
        match self {
            Cause::RingFull => "ring_full",
            Cause::BufferFull => "buffer_full",
            Cause::CutAtStop => "cut_at_stop",
            Cause::KernelSkipped => "kernel_skipped",
            Cause::MissedReturn => "missed_return",
            Cause::Evicted => "evicted",
            Cause::Malformed => "malformed",
        }
    }

    /// What it means, in one sentence.
    pub fn sentence(self) -> &'static str {
        match self {
            Cause::RingFull => "the kernel found the rings full",
            Cause::BufferFull => "the outputs fell more than --buffer behind",
            Cause::CutAtStop => "still buffered when the stop cut the writing off",
            Cause::KernelSkipped => {
                "the kernel's recursion protection skipped the probe (a task preempted in a \
                 bpf(2) map operation, or a preempted run of the probe's own raw-tracepoint \
                 program, on that CPU)"
            }
            Cause::MissedReturn => {
                "a return the probe never saw (on kprobes: more calls in flight than a return \
                 probe's maxactive)"
            }
            Cause::Evicted => "evicted from the table of calls in flight",
            Cause::Malformed => "a record in the rings that is not an event (a bug)",
        }
    }

    /// The returns of `missed` calls that were never seen with `method`,
    /// split by cause. A return probe follows at most maxactive calls at
    /// once: on kprobes they are `MissedReturn`. A tracepoint (raw or not)
    /// follows every call, so only the kernel skipping the exit program
    /// leaves a call without its return: up to the exit runs it counted
    /// skipped (`exit_skips`; every one where it does not count them,
    /// before Linux 6.7) they are `KernelSkipped`, and any beyond have no
    /// known cause (`MissedReturn`, which the line says).
    pub fn split_missed_returns(
        method: Option<Method>,
        missed: u64,
        exit_skips: Option<u64>,
    ) -> [(Cause, u64); 2] {
        match method {
            Some(Method::Tracepoint | Method::RawTracepoint) => {
                let skipped = exit_skips.map_or(missed, |k| k.min(missed));
                [
                    (Cause::KernelSkipped, skipped),
                    (Cause::MissedReturn, missed - skipped),
                ]
            }
            _ => [(Cause::KernelSkipped, 0), (Cause::MissedReturn, missed)],
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Losses([u64; Cause::ALL.len()]);

impl Losses {
    /// The count of `cause`.
    pub fn get(&self, cause: Cause) -> u64 {
        self.0[cause.index()]
    }

    /// Adds `n` to `cause`.
    pub fn add(&mut self, cause: Cause, n: u64) {
        self.0[cause.index()] += n;
    }

    /// Adds the returns never seen, split as `Cause::split_missed_returns`.
    pub fn add_missed_returns(
        &mut self,
        method: Option<Method>,
        missed: u64,
        exit_skips: Option<u64>,
    ) {
        for (cause, n) in Cause::split_missed_returns(method, missed, exit_skips) {
            self.add(cause, n);
        }
    }

    /// Every cause together.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Cause by cause, the larger of the two: counts read at different
    /// moments never go back.
    pub fn max(self, other: Losses) -> Losses {
        let mut out = self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a = (*a).max(b);
        }
        out
    }

    /// Cause by cause, what `self` has more than `before`.
    pub fn since(self, before: Losses) -> Losses {
        let mut out = self;
        for (a, b) in out.0.iter_mut().zip(before.0) {
            *a = a.saturating_sub(b);
        }
        out
    }

    /// The causes with a count above 0, in the order of `Cause::ALL`.
    pub fn nonzero(&self) -> impl Iterator<Item = (Cause, u64)> + '_ {
        Cause::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|(_, n)| *n > 0)
    }
}

/// `probe: lost N UNIT: TEXT [cause]` on stderr. `text` says what happened
/// and what to do; the bracket names the cause as the JSON and the
/// metrics do.
pub fn say_lost(n: u64, unit: &str, cause: Cause, text: &str) {
    say(&format!("lost {n} {unit}: {text} [{}]", cause.label()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_every_cause_is_listed_once() {
        let mut labels: Vec<&str> = Cause::ALL.iter().map(|c| c.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Cause::ALL.len());
        for (i, c) in Cause::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert!(
                c.label()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }

    #[test]
    fn counts_add_compare_and_subtract_by_cause() {
        let mut a = Losses::default();
        a.add(Cause::KernelSkipped, 3);
        a.add(Cause::Evicted, 1);
        let mut b = Losses::default();
        b.add(Cause::KernelSkipped, 5);
        let m = a.max(b);
        assert_eq!(m.get(Cause::KernelSkipped), 5);
        assert_eq!(m.get(Cause::Evicted), 1);
        assert_eq!(m.total(), 6);
        assert_eq!(m.since(a).get(Cause::KernelSkipped), 2);
        assert_eq!(m.since(a).get(Cause::Evicted), 0);
        assert_eq!(
            m.nonzero().collect::<Vec<_>>(),
            [(Cause::KernelSkipped, 5), (Cause::Evicted, 1)]
        );
    }

    #[test]
    fn the_readme_names_every_cause_with_its_sentence() {
        let readme = include_str!("../../README.md");
        for c in Cause::ALL {
            let row = format!("| `{}` | {} |", c.label(), c.sentence());
            assert!(readme.contains(&row), "README lacks the row {row:?}");
        }
    }
}
