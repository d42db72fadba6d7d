//! `probe top`'s numbers: the probe's cumulative table, read whole each
//! interval, and what each interval added.
//!
//! The kernel only ever adds to a row (`top_stats`, `top_errors`,
//! `top_other`, `top_errors_other`); nothing there is reset, so there is
//! no window in which a swap could lose a call. An interval's numbers are
//! the difference between two reads. Rows of processes (or threads) that
//! have exited are removed after a read that came after the exit: their
//! values in that read are final, so removing them loses nothing.
//!
//! Pid reuse: a row is keyed by pid (and comm, for processes and threads).
//! A row is removed only if its process was gone when checked, before the
//! read. A new process that takes the same pid (and, for `--by process`,
//! has the same name) in the few milliseconds between that check and the
//! removal would lose the calls it made in between; a pid reused any later
//! starts a new row. Kernels hand out pids in increasing order up to
//! `pid_max` (4194304 with systemd) before reusing one, so this needs a
//! pid wrap within milliseconds.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;

use crate::app::abi::{
    ERRNO_SLOTS, LAT_SLOTS, Pod, SIZE_SLOTS, Syscall, TopBy, TopErrKey, TopKey, TopValue,
};
use crate::identity;
use crate::loader::Loaded;

/// The counts of one row, or of a sum of rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub bytes_req: u64,
    pub bytes_xfer: u64,
    pub errors: u64,
    pub lat_ns: u64,
    pub lat_hist: [u64; LAT_SLOTS],
    pub size_hist: [u64; SIZE_SLOTS],
    /// Errors by errno, as far as the kernel could file them under the row
    /// (see `unfiled_errors`).
    pub errnos: BTreeMap<u32, u64>,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            calls: 0,
            bytes_req: 0,
            bytes_xfer: 0,
            errors: 0,
            lat_ns: 0,
            lat_hist: [0; LAT_SLOTS],
            size_hist: [0; SIZE_SLOTS],
            errnos: BTreeMap::new(),
        }
    }
}

impl Counts {
    /// What the row `cur` added since it was `prev` (None: since it was
    /// made, from zero). The kernel only adds: the 64-bit counters are
    /// subtracted, the 32-bit histogram slots taken modulo 2^32.
    fn between(cur: &TopValue, prev: Option<&TopValue>) -> Counts {
        let zero = TopValue::default();
        let p = prev.unwrap_or(&zero);
        let mut d = Counts {
            calls: cur.calls.wrapping_sub(p.calls),
            bytes_req: cur.bytes_req.wrapping_sub(p.bytes_req),
            bytes_xfer: cur.bytes_xfer.wrapping_sub(p.bytes_xfer),
            errors: cur.errors.wrapping_sub(p.errors),
            lat_ns: cur.lat_ns.wrapping_sub(p.lat_ns),
            ..Counts::default()
        };
        for (i, v) in d.lat_hist.iter_mut().enumerate() {
            *v = cur.lat_hist[i].wrapping_sub(p.lat_hist[i]) as u64;
        }
        for (i, v) in d.size_hist.iter_mut().enumerate() {
            *v = cur.size_hist[i].wrapping_sub(p.size_hist[i]) as u64;
        }
        d
    }

    /// Adds `o` to these counts.
    pub fn add(&mut self, o: &Counts) {
        self.calls += o.calls;
        self.bytes_req += o.bytes_req;
        self.bytes_xfer += o.bytes_xfer;
        self.errors += o.errors;
        self.lat_ns += o.lat_ns;
        for (a, b) in self.lat_hist.iter_mut().zip(&o.lat_hist) {
            *a += b;
        }
        for (a, b) in self.size_hist.iter_mut().zip(&o.size_hist) {
            *a += b;
        }
        for (e, n) in &o.errnos {
            *self.errnos.entry(*e).or_default() += n;
        }
    }

    /// Nothing happened.
    pub fn is_empty(&self) -> bool {
        self.calls == 0 && self.errnos.is_empty()
    }

    /// Errors of the row whose errno the kernel could not file under it
    /// (its errno table was full): they are in the other row's errnos.
    pub fn unfiled_errors(&self) -> u64 {
        self.errors
            .saturating_sub(self.errnos.values().copied().sum::<u64>())
    }

    /// The mean latency per call, ns.
    pub fn mean_lat_ns(&self) -> u64 {
        self.lat_ns.checked_div(self.calls).unwrap_or(0)
    }
}

/// A row of the display: a key of the kernel's table, or a syscall's
/// "other" row (the calls of keys the table had no room for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Key(TopKey),
    Other(Syscall),
}

impl RowKey {
    pub fn syscall(&self) -> Syscall {
        match self {
            RowKey::Key(k) => Syscall::from_index(k.syscall).unwrap_or(Syscall::Read),
            RowKey::Other(s) => *s,
        }
    }
}

/// One row, with its counts (for an interval, or since the start).
#[derive(Clone, Debug)]
pub struct Row {
    pub key: RowKey,
    /// The comm to show: the key's, or the row's first caller's.
    pub comm: Vec<u8>,
    pub counts: Counts,
}

/// What one interval added, row by row.
#[derive(Debug, Default)]
pub struct Interval {
    /// Rows that had calls in the interval (or, cumulative, ever).
    pub rows: Vec<Row>,
    /// The sum of every row.
    pub total: Counts,
    /// Rows of exited processes removed from the kernel's table, this
    /// interval.
    pub removed: usize,
    /// Rows in the kernel's table after the interval.
    pub live_rows: usize,
}

/// Rows kept for the run's totals before the ones of exited processes
/// are folded into their syscall's "exited" sums.
const MAX_TOTAL_ROWS: usize = 65536;

/// A hasher for the table's keys (fixed-size integers and bytes): a
/// multiply-rotate mix, several times faster than std's SipHash, which
/// guards against keys chosen to collide; these keys come from the kernel's
/// own table, bounded by --keys.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_ne_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64);
    }

    fn write_i32(&mut self, v: i32) {
        self.write_u64(v as u32 as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

type Fast = std::hash::BuildHasherDefault<FastHasher>;
type FastMap<K, V> = HashMap<K, V, Fast>;

/// The reader of the probe's table, with what it read last.
pub struct Table<'a> {
    loaded: &'a Loaded,
    by: TopBy,
    /// Each row as the last read found it: a row whose bytes did not
    /// change had no call, and costs a comparison.
    prev: FastMap<TopKey, TopValue>,
    /// Each (row, errno) count at the last read.
    prev_errnos: FastMap<TopErrKey, u64>,
    /// Comm of each row (the key's, or its first caller's).
    comms: FastMap<TopKey, Vec<u8>>,
    prev_other: Vec<TopValue>,
    /// The other rows' errno counts (top_errors_other) at the last read.
    prev_other_errnos: Vec<u64>,
    /// Every row's counts since the start (for --cumulative and the final
    /// totals), and the syscall's "other" rows.
    totals: HashMap<RowKey, Row, Fast>,
    /// Buffers for the batched reads, one pair per map (a buffer shrunk
    /// for one map and grown again for the next would be cleared anew).
    buffers: [(Vec<u8>, Vec<u8>); 3],
    /// The rows can be removed when their process exits: a monitor in
    /// another pid namespace cannot tell (its /proc shows other pids).
    prune: bool,
    /// Rows removed so far.
    removed: usize,
}

impl<'a> Table<'a> {
    pub fn new(loaded: &'a Loaded, by: TopBy) -> Table<'a> {
        Table {
            loaded,
            by,
            prev: FastMap::default(),
            prev_errnos: FastMap::default(),
            comms: FastMap::default(),
            prev_other: vec![TopValue::default(); Syscall::ALL.len()],
            prev_other_errnos: vec![0; Syscall::ALL.len() * ERRNO_SLOTS],
            totals: HashMap::default(),
            buffers: Default::default(),
            prune: by != TopBy::Syscall && identity::in_initial_pid_ns(),
            removed: 0,
        }
    }

    /// The rows whose owner (process, or thread) has exited: their counts
    /// can no longer change. One listing of /proc (and of each process's
    /// task/ for threads) per interval, not a look per row.
    fn gone(&self) -> Vec<TopKey> {
        let live = pids_in("/proc");
        match self.by {
            TopBy::Syscall => Vec::new(),
            TopBy::Process | TopBy::File => self
                .prev
                .keys()
                .filter(|k| !live.contains(&k.tgid))
                .copied()
                .collect(),
            TopBy::Thread => {
                let mut threads: HashMap<u32, HashSet<u32>> = HashMap::new();
                self.prev
                    .keys()
                    .filter(|k| {
                        !live.contains(&k.tgid)
                            || !threads
                                .entry(k.tgid)
                                .or_insert_with(|| pids_in(&format!("/proc/{}/task", k.tgid)))
                                .contains(&k.tid)
                    })
                    .copied()
                    .collect()
            }
        }
    }

    /// Reads the kernel's table and returns what each row added since the
    /// last read (rows with no call left out), the other rows' included.
    fn read_changes(&mut self) -> Result<Vec<(RowKey, Counts)>> {
        let [stat_buf, error_buf, other_buf] = &mut self.buffers;
        let mut changed: FastMap<TopKey, Counts> = FastMap::default();
        let stats = self.loaded.map("top_stats")?;
        let (keys, values) = stat_buf;
        let n = stats.read_all(keys, values)?;
        let (ks, vs) = (stats.key_size(), stats.lookup_size());
        let mut unfiled = false;
        for i in 0..n {
            let value = &values[i * vs..(i + 1) * vs];
            let key = TopKey::from_bytes(&keys[i * ks..(i + 1) * ks]);
            let prev = self.prev.get(&key);
            if prev.is_some_and(|p| p.as_bytes() == value) {
                continue;
            }
            let value = TopValue::from_bytes(value);
            let delta = Counts::between(&value, prev);
            unfiled |= value.errors > 0;
            self.comms.entry(key).or_insert_with(|| {
                if key.comm[0] != 0 {
                    key.comm().to_vec()
                } else {
                    value.comm().to_vec()
                }
            });
            self.prev.insert(key, value);
            changed.insert(key, delta);
        }
        // Errnos only move with errors: read when some row has any.
        let has_errors = unfiled || self.prev.values().any(|v| v.errors > 0);
        if has_errors {
            let errors = self.loaded.map("top_errors")?;
            let (keys, values) = error_buf;
            let n = errors.read_all(keys, values)?;
            let (ks, vs) = (errors.key_size(), errors.lookup_size());
            for i in 0..n {
                let ek = TopErrKey::from_bytes(&keys[i * ks..(i + 1) * ks]);
                let count = u64::from_bytes(&values[i * vs..(i + 1) * vs]);
                let before = self.prev_errnos.insert(ek, count).unwrap_or(0);
                if count > before {
                    *changed
                        .entry(ek.key)
                        .or_default()
                        .errnos
                        .entry(ek.err)
                        .or_default() += count - before;
                }
            }
        }
        let mut out: Vec<(RowKey, Counts)> = changed
            .into_iter()
            .map(|(k, c)| (RowKey::Key(k), c))
            .collect();
        let other_map = self.loaded.map("top_other")?;
        let mut value = vec![0u8; other_map.lookup_size()];
        let mut other_changes: Vec<Counts> = Vec::new();
        for (i, s) in Syscall::ALL.into_iter().enumerate() {
            other_map.lookup(&(s.index() as u32).to_ne_bytes(), &mut value)?;
            let v = TopValue::from_bytes(&value);
            other_changes.push(Counts::between(&v, Some(&self.prev_other[i])));
            self.prev_other[i] = v;
        }
        // The errnos of the other rows, and of the errors no row's errno
        // table had room for.
        if has_errors || self.prev_other.iter().any(|o| o.errors > 0) {
            let errors_other = self.loaded.map("top_errors_other")?;
            let (keys, values) = other_buf;
            let n = errors_other.read_all(keys, values)?;
            let (ks, vs) = (errors_other.key_size(), errors_other.lookup_size());
            for i in 0..n {
                let slot = u32::from_bytes(&keys[i * ks..(i + 1) * ks]) as usize;
                let count = u64::from_bytes(&values[i * vs..(i + 1) * vs]);
                let Some(before) = self.prev_other_errnos.get_mut(slot) else {
                    continue;
                };
                if count > *before {
                    let (s, errno) = (slot / ERRNO_SLOTS, slot % ERRNO_SLOTS);
                    *other_changes[s].errnos.entry(errno as u32).or_default() += count - *before;
                    *before = count;
                }
            }
        }
        for (i, c) in other_changes.into_iter().enumerate() {
            if !c.is_empty() {
                out.push((RowKey::Other(Syscall::ALL[i]), c));
            }
        }
        Ok(out)
    }

    /// One interval: reads the table, computes what each row added since
    /// the last read, and removes the rows of processes that had exited
    /// before the read. With `cumulative`, the rows carry their counts
    /// since the start instead.
    pub fn interval(&mut self, cumulative: bool) -> Result<Interval> {
        let dead: Vec<TopKey> = if self.prune && !self.prev.is_empty() {
            self.gone()
        } else {
            Vec::new()
        };
        let changes = self.read_changes()?;
        let mut out = Interval::default();
        for (key, delta) in changes {
            let comm = match key {
                RowKey::Key(k) => self.comms.get(&k).cloned().unwrap_or_default(),
                RowKey::Other(_) => Vec::new(),
            };
            self.add_to_totals(key, &comm, &delta);
            out.total.add(&delta);
            if !cumulative {
                out.rows.push(Row {
                    key,
                    comm,
                    counts: delta,
                });
            }
        }
        out.removed = self.remove(&dead)?;
        self.removed += out.removed;
        out.live_rows = self.prev.len();
        if cumulative {
            out.rows = self.totals.values().cloned().collect();
        }
        Ok(out)
    }

    /// Removes the rows of exited processes, and their errnos, from the
    /// kernel's table (their last counts were just read).
    fn remove(&mut self, dead: &[TopKey]) -> Result<usize> {
        if dead.is_empty() {
            return Ok(0);
        }
        let stats = self.loaded.map("top_stats")?;
        let errors = self.loaded.map("top_errors")?;
        let dead_set: HashSet<&TopKey> = dead.iter().collect();
        let mut removed = 0;
        let errnos: Vec<TopErrKey> = self
            .prev_errnos
            .keys()
            .filter(|ek| dead_set.contains(&ek.key))
            .copied()
            .collect();
        for ek in errnos {
            self.prev_errnos.remove(&ek);
            let _ = errors.delete(ek.as_bytes());
        }
        for key in dead {
            self.prev.remove(key);
            if stats.delete(key.as_bytes()).is_ok() {
                removed += 1;
            }
            self.comms.remove(key);
        }
        self.fold_exited(&dead_set);
        Ok(removed)
    }

    /// Keeps the run's totals bounded: past `MAX_TOTAL_ROWS`, the rows of
    /// exited processes are folded into their syscall's other row.
    fn fold_exited(&mut self, dead: &HashSet<&TopKey>) {
        if self.totals.len() <= MAX_TOTAL_ROWS {
            return;
        }
        let gone: Vec<RowKey> = self
            .totals
            .keys()
            .filter(|k| matches!(k, RowKey::Key(key) if dead.contains(key) || !self.prev.contains_key(key)))
            .copied()
            .collect();
        for k in gone {
            if let Some(row) = self.totals.remove(&k) {
                self.add_to_totals(RowKey::Other(k.syscall()), b"", &row.counts);
            }
        }
    }

    fn add_to_totals(&mut self, key: RowKey, comm: &[u8], delta: &Counts) {
        self.totals
            .entry(key)
            .or_insert_with(|| Row {
                key,
                comm: comm.to_vec(),
                counts: Counts::default(),
            })
            .counts
            .add(delta);
    }

    /// Rows of exited processes removed from the kernel's table so far.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// Every row's counts since the start.
    pub fn totals(&self) -> Vec<Row> {
        self.totals.values().cloned().collect()
    }
}

/// The numeric entries of a /proc directory: the processes there (or a
/// process's threads, in its task/).
fn pids_in(dir: &str) -> HashSet<u32> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_the_difference_of_two_reads() {
        let mut a = TopValue {
            calls: 10,
            bytes_xfer: 100,
            errors: 2,
            ..TopValue::default()
        };
        a.lat_hist[3] = 10;
        // A 32-bit slot about to wrap between the two reads.
        a.size_hist[5] = u32::MAX - 1;
        let mut b = a;
        b.calls = 15;
        b.errors = 3;
        b.lat_hist[3] = 12;
        b.lat_hist[20] = 3;
        b.size_hist[5] = 2;
        let d = Counts::between(&b, Some(&a));
        assert_eq!((d.calls, d.bytes_xfer, d.errors), (5, 0, 1));
        assert_eq!((d.lat_hist[3], d.lat_hist[20]), (2, 3));
        assert_eq!(d.size_hist[5], 4);
        let first = Counts::between(&a, None);
        assert_eq!((first.calls, first.lat_hist[3]), (10, 10));
        let mut sum = first;
        sum.add(&d);
        assert_eq!(sum.calls, 15);
        assert_eq!(sum.size_hist[5], u32::MAX as u64 + 3);
    }

    #[test]
    fn errors_not_filed_by_errno_are_counted() {
        let mut c = Counts {
            errors: 5,
            ..Counts::default()
        };
        c.errnos.insert(9, 3);
        assert_eq!(c.unfiled_errors(), 2);
    }
}
