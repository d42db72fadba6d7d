//! `probe top`'s numbers for Prometheus: counters and histograms in the
//! text exposition format (0.0.4), served over HTTP (listener.rs) and
//! written for node_exporter's textfile collector (textfile.rs).
//!
//! Beside `top`, consuming what each of its intervals added (never the
//! BPF maps): every interval's rows are added to monotonic totals here,
//! by syscall and comm, and the text is rendered once per interval; a
//! scrape sends the last rendering (so the values are as of the last
//! interval, `-i`).
//!
//! Cardinality is bounded, and cannot be taken by whoever comes first:
//! `max_comms` comm labels have series of their own. The pinned ones
//! (`--metrics-pin`) always; the other slots go to the most active names
//! (calls, an exponentially weighted sum with a half-life of `HALF_LIFE`),
//! and a name takes a slot from another only when it is more than
//! `HYSTERESIS` times as active, so a slot does not flap between two
//! names of like activity. A name's calls count in its own series while
//! it holds a slot, under `comm="other"` while it does not: every call is
//! in exactly one series, so the series add up to the calls exactly, and
//! every series only grows. A series whose name lost its slot is no longer
//! written (Prometheus marks it stale); its totals are kept, so a name
//! that wins a slot back goes on from where it stopped.

pub mod exposition;
pub mod listener;
pub mod textfile;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app::abi::{COMM_LEN, LAT_SLOTS, Syscall, until_nul};
use crate::app::loss::Losses;
use crate::app::top::table::{Counts, Row, RowKey};

/// Raw comms whose label is remembered, at most.
const LABEL_CACHE: usize = 65536;

/// Names whose activity is followed, at most (beyond, the least active
/// without a slot or series are forgotten first).
const ACTIVITY_LIMIT: usize = 65536;

/// How long a call weighs in a name's activity: half as much after this.
pub const HALF_LIFE: Duration = Duration::from_secs(60);

/// A name without a slot takes the least active holder's only when it is
/// more than this many times as active.
pub const HYSTERESIS: f64 = 2.0;

/// Below this, a name's activity is forgotten (it holds no slot and no
/// series): less than a call, an interval's worth of half-lives ago.
const FORGET_BELOW: f64 = 0.5;

/// The label of the calls whose comm has no series of its own.
pub const OTHER: &str = "other";

/// One series' totals: a syscall and a comm label.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub calls: u64,
    pub bytes: u64,
    pub lat_ns: u64,
    pub lat_hist: Vec<u64>,
    pub errnos: BTreeMap<u32, u64>,
}

impl Series {
    fn add(&mut self, c: &Counts) {
        self.calls += c.calls;
        self.bytes += c.bytes_xfer;
        self.lat_ns += c.lat_ns;
        if self.lat_hist.is_empty() {
            self.lat_hist = vec![0; LAT_SLOTS];
        }
        for (a, b) in self.lat_hist.iter_mut().zip(&c.lat_hist) {
            *a += b;
        }
        // Every error's errno is filed once: under its row, or (its row's
        // errno table full, or its row an other row) under its syscall's
        // other row, whose errnos come with the other rows. A row's errors
        // its table could not file are not counted again here.
        for (e, n) in &c.errnos {
            *self.errnos.entry(*e).or_default() += n;
        }
    }
}

/// A comm label's standing.
#[derive(Clone, Copy, Debug, Default)]
struct Standing {
    /// Its calls, each weighing half as much every HALF_LIFE.
    activity: f64,
    /// It holds one of the slots that are not pinned.
    slot: bool,
    /// It has series (current or, without a slot, kept for its return).
    has_series: bool,
    /// The interval its series last grew.
    counted_at: u64,
}

/// The run's totals, by (syscall, comm label).
pub struct Registry {
    /// Labels of their own, the pinned ones included.
    max_comms: usize,
    /// The pinned labels (always their own).
    pins: BTreeSet<String>,
    /// What an interval leaves of a name's activity.
    decay: f64,
    standings: HashMap<String, Standing>,
    /// Unpinned labels holding a slot.
    held: usize,
    /// Each comm seen, as the kernel keeps it, and its label: escaped once.
    labels: HashMap<[u8; COMM_LEN], String>,
    series: BTreeMap<(Syscall, String), Series>,
    lost: Losses,
    /// Calls counted in the kernel's other rows (its table was full).
    overflow: u64,
    /// Intervals added.
    intervals: u64,
    version: &'static str,
    attach: String,
}

impl Registry {
    /// Totals with at most `max_comms` comm labels of their own, `pins`
    /// among them whatever happens; `interval` is `-i`, how often `add`
    /// is called.
    pub fn new(max_comms: usize, pins: &[Vec<u8>], interval: Duration, attach: &str) -> Registry {
        let pins: BTreeSet<String> = pins.iter().map(|p| exposition::comm_label(p)).collect();
        Registry {
            max_comms: max_comms.max(pins.len()),
            pins,
            decay: 0.5f64.powf(interval.as_secs_f64() / HALF_LIFE.as_secs_f64()),
            standings: HashMap::new(),
            held: 0,
            labels: HashMap::new(),
            series: BTreeMap::new(),
            lost: Losses::default(),
            overflow: 0,
            intervals: 0,
            version: env!("CARGO_PKG_VERSION"),
            attach: attach.to_string(),
        }
    }

    /// `comm` as a label: escaped as the README escapes comms.
    fn label(&mut self, comm: &[u8; COMM_LEN]) -> String {
        if let Some(label) = self.labels.get(comm) {
            return label.clone();
        }
        let label = exposition::comm_label(until_nul(comm));
        // Only a cache, kept bounded.
        if self.labels.len() >= LABEL_CACHE {
            self.labels.clear();
        }
        self.labels.insert(*comm, label.clone());
        label
    }

    /// True when `label` has series of its own now (what is rendered).
    pub fn has_own(&self, label: &str) -> bool {
        label != OTHER
            && (self.pins.contains(label) || self.standings.get(label).is_some_and(|s| s.slot))
    }

    /// Adds what one interval's rows counted: first the slots are given
    /// for this interval (by the activity it brings), then each row counts
    /// under its comm's label if that has a slot, else under "other".
    pub fn add(&mut self, rows: &[Row]) {
        self.intervals += 1;
        let labels: Vec<Option<String>> = rows
            .iter()
            .map(|row| match row.key {
                RowKey::Key(_) => Some(self.label(&row.comm)),
                RowKey::Other(_) => None,
            })
            .collect();
        let mut calls: HashMap<&str, u64> = HashMap::new();
        for (row, label) in rows.iter().zip(&labels) {
            if let Some(l) = label {
                *calls.entry(l).or_default() += row.counts.calls;
            }
        }
        self.rank(&calls);
        for (row, label) in rows.iter().zip(labels) {
            let label = match label {
                Some(l) if self.has_own(&l) => {
                    let s = self.standings.entry(l.clone()).or_default();
                    s.has_series = true;
                    s.counted_at = self.intervals;
                    l
                }
                Some(_) => OTHER.to_string(),
                None => {
                    self.overflow += row.counts.calls;
                    OTHER.to_string()
                }
            };
            self.series
                .entry((row.key.syscall(), label))
                .or_default()
                .add(&row.counts);
        }
        self.forget();
    }

    /// The interval's activity in; then the free slots to the most active
    /// names of the interval without one, and each further name that is
    /// more than HYSTERESIS times as active as the least active holder
    /// takes that holder's slot.
    fn rank(&mut self, calls: &HashMap<&str, u64>) {
        for s in self.standings.values_mut() {
            s.activity *= self.decay;
        }
        let mut candidates: Vec<(f64, String)> = Vec::new();
        for (&label, &n) in calls {
            if n == 0 || label == OTHER || self.pins.contains(label) {
                continue;
            }
            let s = self.standings.entry(label.to_string()).or_default();
            s.activity += n as f64;
            if !s.slot {
                candidates.push((s.activity, label.to_string()));
            }
        }
        // Best first; of two alike, the smaller label (a fixed order).
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let slots = self.max_comms - self.pins.len();
        let free = slots.saturating_sub(self.held).min(candidates.len());
        for (_, label) in &candidates[..free] {
            self.set_slot(label, true);
        }
        if candidates.len() == free {
            return;
        }
        // The holders, least active first. A name that just took a free
        // slot is at least as active as every candidate left, so it is
        // never more than HYSTERESIS times behind one: the two lists can
        // be walked once.
        let mut holders: Vec<(f64, String)> = self
            .standings
            .iter()
            .filter(|(_, s)| s.slot)
            .map(|(l, s)| (s.activity, l.clone()))
            .collect();
        holders.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        for ((activity, label), (weakest, holder)) in candidates[free..].iter().zip(&holders) {
            if *activity <= HYSTERESIS * weakest {
                break;
            }
            self.set_slot(holder, false);
            self.set_slot(label, true);
        }
    }

    fn set_slot(&mut self, label: &str, slot: bool) {
        let s = self.standings.entry(label.to_string()).or_default();
        if s.slot != slot {
            s.slot = slot;
            if slot {
                self.held += 1;
            } else {
                self.held -= 1;
            }
        }
    }

    /// Keeps what is followed bounded: names that hold nothing and have
    /// next to no activity are forgotten; past ACTIVITY_LIMIT names, the
    /// least active of those without series; past `max_comms` names whose
    /// series are kept without a slot, those idle longest (their series go:
    /// a name that comes back after that starts again from 0, which
    /// Prometheus takes as a counter reset).
    fn forget(&mut self) {
        let mut kept: Vec<(u64, String)> = self
            .standings
            .iter()
            .filter(|(l, s)| s.has_series && !s.slot && !self.pins.contains(*l))
            .map(|(l, s)| (s.counted_at, l.clone()))
            .collect();
        if kept.len() > self.max_comms {
            kept.sort();
            let excess = kept.len() - self.max_comms;
            let gone: BTreeSet<String> = kept.into_iter().take(excess).map(|(_, l)| l).collect();
            self.series.retain(|(_, l), _| !gone.contains(l));
            for label in &gone {
                if let Some(s) = self.standings.get_mut(label) {
                    s.has_series = false;
                }
            }
        }
        self.standings
            .retain(|_, s| s.slot || s.has_series || s.activity >= FORGET_BELOW);
        if self.standings.len() > ACTIVITY_LIMIT {
            let mut idle: Vec<(f64, String)> = self
                .standings
                .iter()
                .filter(|(_, s)| !s.slot && !s.has_series)
                .map(|(l, s)| (s.activity, l.clone()))
                .collect();
            idle.sort_by(|a, b| a.0.total_cmp(&b.0));
            let excess = self.standings.len() - ACTIVITY_LIMIT;
            for (_, label) in idle.into_iter().take(excess) {
                self.standings.remove(&label);
            }
        }
    }

    /// The losses so far (each only grows: the largest seen is kept).
    pub fn set_lost(&mut self, lost: Losses) {
        self.lost = self.lost.max(lost);
    }
}
/// The last rendering, shared with the listener: a scrape copies an Arc.
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Arc<Vec<u8>>>>);

impl Published {
    /// Replaces what scrapes get.
    pub fn set(&self, text: Vec<u8>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(text);
    }

    /// What a scrape gets now.
    pub fn get(&self) -> Arc<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
