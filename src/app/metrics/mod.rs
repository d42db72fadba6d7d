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
//! Cardinality is bounded and sticky: the first `max_comms` comm labels
//! keep their series for the life of the process; later ones, and the
//! calls of keys the kernel's table had no room for, count under
//! `comm="other"`. No series ever goes away, no counter ever goes down.

pub mod exposition;
pub mod listener;
pub mod textfile;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::app::abi::{COMM_LEN, LAT_SLOTS, Syscall, until_nul};
use crate::app::top::table::{Counts, Row, RowKey};

/// Raw comms whose label is remembered, at most.
const LABEL_CACHE: usize = 65536;

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

/// Losses, by where they happened (`probe_events_lost_total{where}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lost {
    /// Returns a return probe missed (its maxactive), or the kernel
    /// skipped on an exit tracepoint.
    pub missed_return: u64,
    /// In-flight records the table evicted (known at the stop).
    pub evicted: u64,
    /// Calls the kernel's recursion protection skipped (known at the stop,
    /// on 6.7+).
    pub recursion: u64,
}

/// The run's totals, by (syscall, comm label).
pub struct Registry {
    max_comms: usize,
    /// comm labels with a series of their own (sticky).
    comms: HashSet<String>,
    /// Each comm seen, as the kernel keeps it, and its label (its own or
    /// "other"): decided once, escaped once.
    labels: HashMap<[u8; COMM_LEN], String>,
    series: BTreeMap<(Syscall, String), Series>,
    lost: Lost,
    /// Calls counted in the kernel's other rows (its table was full).
    overflow: u64,
    version: &'static str,
    attach: String,
}

impl Registry {
    /// Totals with at most `max_comms` comm labels of their own.
    pub fn new(max_comms: usize, attach: &str) -> Registry {
        Registry {
            max_comms,
            comms: HashSet::new(),
            labels: HashMap::new(),
            series: BTreeMap::new(),
            lost: Lost::default(),
            overflow: 0,
            version: env!("CARGO_PKG_VERSION"),
            attach: attach.to_string(),
        }
    }

    /// The label for `comm`: escaped as the README escapes comms, its own
    /// if it is one of the first `max_comms`, else "other".
    fn label(&mut self, comm: &[u8; COMM_LEN]) -> String {
        if let Some(label) = self.labels.get(comm) {
            return label.clone();
        }
        let own = exposition::comm_label(until_nul(comm));
        let label = if self.comms.contains(&own) || self.comms.len() < self.max_comms {
            self.comms.insert(own.clone());
            own
        } else {
            OTHER.to_string()
        };
        // Only a cache: what is sticky is `comms`. Kept bounded.
        if self.labels.len() >= LABEL_CACHE {
            self.labels.clear();
        }
        self.labels.insert(*comm, label.clone());
        label
    }

    /// Adds what one interval's rows counted.
    pub fn add(&mut self, rows: &[Row]) {
        for row in rows {
            let label = match row.key {
                RowKey::Key(_) => self.label(&row.comm),
                RowKey::Other(_) => {
                    self.overflow += row.counts.calls;
                    OTHER.to_string()
                }
            };
            self.series
                .entry((row.key.syscall(), label))
                .or_default()
                .add(&row.counts);
        }
    }

    /// The losses so far (each only grows: the largest seen is kept).
    pub fn set_lost(&mut self, lost: Lost) {
        self.lost.missed_return = self.lost.missed_return.max(lost.missed_return);
        self.lost.evicted = self.lost.evicted.max(lost.evicted);
        self.lost.recursion = self.lost.recursion.max(lost.recursion);
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
