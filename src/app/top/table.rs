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
    COMM_LEN, ERRNO_SLOTS, LAT_SLOTS, Pod, SIZE_SLOTS, Syscall, TopBy, TopErrKey, TopKey, TopRow,
    TopValue,
};
use crate::identity;
use crate::loader::Loaded;
use crate::sys::mem::SharedMapping;

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
            bytes_req: cur.bytes_req.wrapping_sub(p.bytes_req),
            bytes_xfer: cur.bytes_xfer.wrapping_sub(p.bytes_xfer),
            lat_ns: cur.lat_ns.wrapping_sub(p.lat_ns),
            ..Counts::default()
        };
        for (i, v) in d.lat_hist.iter_mut().enumerate() {
            *v = cur.lat_hist[i].wrapping_sub(p.lat_hist[i]) as u64;
        }
        for (i, v) in d.size_hist.iter_mut().enumerate() {
            *v = cur.size_hist[i].wrapping_sub(p.size_hist[i]) as u64;
        }
        // Each call is in one latency slot; its errors are settled by
        // `Errors` (calls less successes, over the row's life).
        d.calls = d.lat_hist.iter().sum();
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

    /// No count moved at all (a row read while a call was being added to
    /// it can show its calls and not yet its latency: that half is still
    /// a change, shown now, the rest next time).
    pub fn is_zero(&self) -> bool {
        self.calls == 0
            && self.bytes_req == 0
            && self.bytes_xfer == 0
            && self.errors == 0
            && self.lat_ns == 0
            && self.lat_hist.iter().all(|&n| n == 0)
            && self.size_hist.iter().all(|&n| n == 0)
            && self.errnos.is_empty()
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

/// A row's errors over its life: its calls less its successes (the kernel
/// counts no errors apart: each call is in one latency slot, each success
/// also in one size slot, added first), and how many were shown.
#[derive(Clone, Copy, Debug, Default)]
struct Errors {
    calls: u64,
    successes: u64,
    shown: u64,
}

impl Errors {
    /// Sets `delta.errors`: the row's errors not shown yet. A row read
    /// between a success's two adds shows one error too few, never one
    /// too many: it comes with the next read.
    fn settle(&mut self, delta: &mut Counts) {
        self.calls += delta.calls;
        self.successes += delta.size_hist.iter().sum::<u64>();
        let errors = self.calls.saturating_sub(self.successes);
        delta.errors = errors.saturating_sub(self.shown);
        self.shown += delta.errors;
    }
}

/// A row of the display: a key of the kernel's table, or a syscall's
/// "other" row (the calls of keys the table had no room for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    Key(TopKey),
    Other(Syscall),
}

impl Row {
    /// The comm up to its NUL.
    pub fn comm(&self) -> &[u8] {
        crate::app::abi::until_nul(&self.comm)
    }
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
    /// NUL-padded, as the kernel keeps it (no allocation per row).
    pub comm: [u8; COMM_LEN],
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
    /// With --cumulative: what each row added this interval (`rows` are
    /// then the totals).
    pub changed: Vec<Row>,
    /// `rows` are the totals (--cumulative).
    pub cumulative: bool,
}

impl Interval {
    /// What each row added this interval, whatever `rows` show.
    pub fn deltas(&self) -> &[Row] {
        if self.cumulative {
            &self.changed
        } else {
            &self.rows
        }
    }
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

/// What one read found: the rows that changed, in a vector (rows are
/// large: made in place, moved as a whole), found by key for their errnos.
#[derive(Default)]
struct Changes {
    rows: Vec<Row>,
    at: FastMap<TopKey, usize>,
}

impl Changes {
    /// The row of `key` (made if it is not there), found through an index
    /// built at the first call: only errnos need one.
    fn row(&mut self, key: TopKey, comm: [u8; COMM_LEN]) -> &mut Counts {
        if self.at.is_empty() {
            for (i, r) in self.rows.iter().enumerate() {
                if let RowKey::Key(k) = r.key {
                    self.at.insert(k, i);
                }
            }
        }
        let i = *self.at.entry(key).or_insert_with(|| {
            self.rows.push(Row {
                key: RowKey::Key(key),
                comm,
                counts: Counts::default(),
            });
            self.rows.len() - 1
        });
        &mut self.rows[i].counts
    }
}

/// The reader of the probe's table, with what it read last.
pub struct Table<'a> {
    loaded: &'a Loaded,
    by: TopBy,
    /// The probe's `top_rows` array, mapped: read with no system call.
    rows: SharedMapping,
    /// Words per slot, and slots.
    words: usize,
    slots: usize,
    /// Every slot as the last read found it: a row whose words did not
    /// change had no call, and costs a comparison.
    prev: Vec<u64>,
    /// The slot of each key seen (the rows of live keys), and the key of
    /// each slot.
    slot_of: FastMap<TopKey, u32>,
    slot_key: Vec<Option<TopKey>>,
    /// The errors each slot's row counted so far (its calls less its
    /// successes, summed read after read: the 32-bit slots wrap).
    slot_errors: Vec<Errors>,
    /// The same for the other rows, by syscall.
    other_errors: Vec<Errors>,
    /// Slots whose key was removed from the index at the last interval:
    /// read once more (a call already past the index lookup may still add
    /// to them), then cleared and freed.
    quarantine: Vec<u32>,
    /// Each (row, errno) count shown so far.
    prev_errnos: FastMap<TopErrKey, u64>,
    /// Each row's errors filed under an errno so far (the sum of its
    /// `prev_errnos`).
    errnos_filed: FastMap<TopKey, u64>,
    /// Comm of each row (the key's, or its first caller's).
    comms: FastMap<TopKey, [u8; COMM_LEN]>,
    prev_other: Vec<TopValue>,
    /// The other rows' errno counts (top_errors_other) at the last read.
    prev_other_errnos: Vec<u64>,
    /// Every row's counts since the start (for --cumulative and the final
    /// totals), and the syscall's "other" rows.
    totals: HashMap<RowKey, Row, Fast>,
    /// Keep `totals` row by row (a screen's final table, --cumulative);
    /// else only the run's sum.
    keep_rows: bool,
    /// The run's sum, and the calls of it in other rows.
    run_total: Counts,
    run_other_calls: u64,
    /// Buffers for the batched reads of the errno tables.
    buffers: [(Vec<u8>, Vec<u8>); 2],
    /// The rows can be removed when their process exits: a monitor in
    /// another pid namespace cannot tell (its /proc shows other pids).
    prune: bool,
    /// Rows removed so far.
    removed: usize,
}

/// Fills the probe's queue of free slots (at the start: all of them).
pub fn free_all_slots(loaded: &Loaded) -> Result<()> {
    let free = loaded.map("top_free")?;
    let slots = loaded.map("top_rows")?.max_entries();
    for slot in 0..slots {
        free.push(&slot.to_ne_bytes())?;
    }
    Ok(())
}

impl<'a> Table<'a> {
    /// The table of `loaded`'s probe, counting by `by`; `keep_rows`: the
    /// run's totals are wanted row by row.
    pub fn new(loaded: &'a Loaded, by: TopBy, keep_rows: bool) -> Result<Table<'a>> {
        let rows = loaded.map("top_rows")?;
        let words = rows.stride() / 8;
        let slots = rows.max_entries() as usize;
        Ok(Table {
            loaded,
            by,
            rows: rows.mmap()?,
            words,
            slots,
            prev: vec![0; words * slots],
            slot_of: FastMap::default(),
            slot_key: vec![None; slots],
            slot_errors: vec![Errors::default(); slots],
            other_errors: vec![Errors::default(); Syscall::ALL.len()],
            quarantine: Vec::new(),
            prev_errnos: FastMap::default(),
            errnos_filed: FastMap::default(),
            comms: FastMap::default(),
            prev_other: vec![TopValue::default(); Syscall::ALL.len()],
            prev_other_errnos: vec![0; Syscall::ALL.len() * ERRNO_SLOTS],
            totals: HashMap::default(),
            keep_rows,
            run_total: Counts::default(),
            run_other_calls: 0,
            buffers: Default::default(),
            prune: by != TopBy::Syscall && identity::in_initial_pid_ns(),
            removed: 0,
        })
    }

    /// The rows whose owner (process, or thread) has exited: their counts
    /// can no longer change. One listing of /proc (and of each process's
    /// task/ for threads) per interval, not a look per row.
    fn gone(&self) -> Vec<TopKey> {
        let live = pids_in("/proc");
        match self.by {
            TopBy::Syscall => Vec::new(),
            TopBy::Process | TopBy::File => self
                .slot_of
                .keys()
                .filter(|k| !live.contains(&k.tgid))
                .copied()
                .collect(),
            TopBy::Thread => {
                let mut threads: HashMap<u32, HashSet<u32>> = HashMap::new();
                self.slot_of
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

    /// Every slot that changed since the last read: what its row added.
    fn read_rows(&mut self, changed: &mut Changes) -> Result<bool> {
        let mut cur = vec![0u64; self.words];
        let mut any_errors = false;
        for slot in 0..self.slots {
            let at = slot * self.words;
            self.rows
                .read_words(at * 8, &mut cur)
                .ok_or_else(|| anyhow::anyhow!("top_rows is smaller than its size"))?;
            let before = &mut self.prev[at..at + self.words];
            if before == cur.as_slice() {
                continue;
            }
            let row = TopRow::from_words(&cur);
            let prev = TopRow::from_words(before);
            before.copy_from_slice(&cur);
            let mut delta = Counts::between(&row.v, Some(&prev.v));
            self.slot_errors[slot].settle(&mut delta);
            any_errors |= self.slot_errors[slot].shown > 0;
            if delta.is_zero() {
                continue;
            }
            let key = row.key;
            let comm = if key.comm[0] != 0 {
                key.comm
            } else {
                row.v.comm
            };
            // A slot keeps its key until it is recycled: only a new one
            // is indexed. (Not by comparing with the last read: a slot
            // read between the probe writing its key and its first count
            // had the key already.)
            if self.slot_key[slot] != Some(key) {
                self.slot_key[slot] = Some(key);
                self.slot_of.insert(key, slot as u32);
                self.comms.insert(key, comm);
            }
            changed.rows.push(Row {
                key: RowKey::Key(key),
                comm,
                counts: delta,
            });
        }
        Ok(any_errors)
    }

    /// The errors of `key`'s row as last read (0 for a row not seen).
    fn row_errors(&self, key: &TopKey) -> u64 {
        let Some(&slot) = self.slot_of.get(key) else {
            return 0;
        };
        self.slot_errors[slot as usize].shown
    }

    /// Clears the slots quarantined at the last interval (read once more
    /// just now) and gives them back to the probe.
    fn recycle(&mut self) -> Result<()> {
        let free = self.loaded.map("top_free")?;
        for slot in std::mem::take(&mut self.quarantine) {
            let at = slot as usize * self.words;
            self.rows
                .zero_words(at * 8, self.words * 8)
                .ok_or_else(|| anyhow::anyhow!("top_rows is smaller than its size"))?;
            self.prev[at..at + self.words].fill(0);
            self.slot_key[slot as usize] = None;
            self.slot_errors[slot as usize] = Errors::default();
            free.push(&slot.to_ne_bytes())?;
        }
        Ok(())
    }

    /// Reads the kernel's table and returns what each row added since the
    /// last read (rows with no call left out), the other rows' included.
    fn read_changes(&mut self) -> Result<Vec<Row>> {
        let mut changed = Changes::default();
        let unfiled = self.read_rows(&mut changed)?;
        self.recycle()?;
        // Out of self while in use (an error drops them: made again).
        let mut buffers = std::mem::take(&mut self.buffers);
        let [error_buf, other_buf] = &mut buffers;
        // Errnos only move with errors: read when some row has any.
        let has_errors = unfiled || !self.prev_errnos.is_empty();
        if has_errors {
            let errors = self.loaded.map("top_errors")?;
            let (keys, values) = error_buf;
            let n = errors.read_all(keys, values)?;
            let (ks, vs) = (errors.key_size(), errors.lookup_size());
            // Read after the rows, this table can hold the errno of a call
            // that returned in between, whose error the row read did not
            // count yet: an errno is shown only once its row's errors
            // count it (the row's errors shown, less the errnos shown, is
            // what may still be filed); the rest waits for the next read.
            for i in 0..n {
                let ek = TopErrKey::from_bytes(&keys[i * ks..(i + 1) * ks]);
                let count = u64::from_bytes(&values[i * vs..(i + 1) * vs]);
                let before = self.prev_errnos.get(&ek).copied().unwrap_or(0);
                if count <= before {
                    continue;
                }
                let errors = self.row_errors(&ek.key);
                let filed = self.errnos_filed.entry(ek.key).or_default();
                let fresh = (count - before).min(errors.saturating_sub(*filed));
                if fresh == 0 {
                    continue;
                }
                *filed += fresh;
                self.prev_errnos.insert(ek, before + fresh);
                let comm = self.comms.get(&ek.key).copied().unwrap_or_default();
                *changed.row(ek.key, comm).errnos.entry(ek.err).or_default() += fresh;
            }
        }
        let mut out = changed.rows;
        let other_map = self.loaded.map("top_other")?;
        let mut value = vec![0u8; other_map.lookup_size()];
        let mut other_changes: Vec<Counts> = Vec::new();
        for (i, s) in Syscall::ALL.into_iter().enumerate() {
            other_map.lookup(&(s.index() as u32).to_ne_bytes(), &mut value)?;
            let v = TopValue::from_bytes(&value);
            let mut c = Counts::between(&v, Some(&self.prev_other[i]));
            self.other_errors[i].settle(&mut c);
            other_changes.push(c);
            self.prev_other[i] = v;
        }
        // The errnos of the other rows, and of the errors no row's errno
        // table had room for.
        if has_errors || self.other_errors.iter().any(|e| e.shown > 0) {
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
            if !c.is_zero() {
                out.push(Row {
                    key: RowKey::Other(Syscall::ALL[i]),
                    comm: [0; COMM_LEN],
                    counts: c,
                });
            }
        }
        self.buffers = buffers;
        Ok(out)
    }

    /// One interval: reads the table, computes what each row added since
    /// the last read, and removes the rows of processes that had exited
    /// before the read. With `cumulative`, the rows carry their counts
    /// since the start instead.
    pub fn interval(&mut self, cumulative: bool) -> Result<Interval> {
        let dead: Vec<TopKey> = if self.prune && !self.slot_of.is_empty() {
            self.gone()
        } else {
            Vec::new()
        };
        let changes = self.read_changes()?;
        let mut out = Interval::default();
        for row in &changes {
            self.add_to_totals(row.key, &row.comm, &row.counts);
            out.total.add(&row.counts);
            if matches!(row.key, RowKey::Other(_)) {
                self.run_other_calls += row.counts.calls;
            }
        }
        out.cumulative = cumulative;
        if cumulative {
            out.changed = changes;
        } else {
            out.rows = changes;
        }
        self.run_total.add(&out.total);
        out.removed = self.remove(&dead)?;
        self.removed += out.removed;
        out.live_rows = self.slot_of.len();
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
        let index = self.loaded.map("top_index")?;
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
            self.errnos_filed.remove(key);
        }
        for key in dead {
            if let Some(slot) = self.slot_of.remove(key)
                && index.delete(key.as_bytes()).is_ok()
            {
                self.quarantine.push(slot);
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
            .filter(|k| matches!(k, RowKey::Key(key) if dead.contains(key) || !self.slot_of.contains_key(key)))
            .copied()
            .collect();
        for k in gone {
            if let Some(row) = self.totals.remove(&k) {
                self.add_to_totals(RowKey::Other(k.syscall()), &[0; COMM_LEN], &row.counts);
            }
        }
    }

    fn add_to_totals(&mut self, key: RowKey, comm: &[u8; COMM_LEN], delta: &Counts) {
        if !self.keep_rows {
            return;
        }
        self.totals
            .entry(key)
            .or_insert_with(|| Row {
                key,
                comm: *comm,
                counts: Counts::default(),
            })
            .counts
            .add(delta);
    }

    /// The run's sum of every row.
    pub fn run_total(&self) -> &Counts {
        &self.run_total
    }

    /// Of the run's calls, those counted in other rows (the table was
    /// full).
    pub fn other_calls(&self) -> u64 {
        self.run_other_calls
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
            bytes_xfer: 100,
            ..TopValue::default()
        };
        a.lat_hist[3] = 10;
        a.size_hist[2] = 8;
        // A 32-bit slot about to wrap between the two reads.
        a.lat_hist[7] = u32::MAX - 1;
        let mut b = a;
        b.lat_hist[3] = 12;
        b.lat_hist[20] = 3;
        b.lat_hist[7] = 2;
        b.size_hist[2] = 12;
        let d = Counts::between(&b, Some(&a));
        assert_eq!((d.calls, d.bytes_xfer), (9, 0));
        assert_eq!((d.lat_hist[3], d.lat_hist[20], d.lat_hist[7]), (2, 3, 4));
        let first = Counts::between(&a, None);
        assert_eq!(first.calls, 10 + u32::MAX as u64 - 1);
        let mut sum = first;
        sum.add(&d);
        assert_eq!(sum.lat_hist[7], u32::MAX as u64 + 3);
    }

    #[test]
    fn errors_are_calls_less_successes_never_shown_too_soon() {
        let mut e = Errors::default();
        // One failed call and one success read half-way (its size slot
        // added, not yet its latency slot): one error, not zero or two.
        let mut d = Counts {
            calls: 1,
            ..Counts::default()
        };
        d.size_hist[0] = 1;
        e.settle(&mut d);
        assert_eq!(d.errors, 0);
        // The success's call arrives: the failure shows now.
        let mut d = Counts {
            calls: 1,
            ..Counts::default()
        };
        e.settle(&mut d);
        assert_eq!(d.errors, 1);
        let mut d = Counts::default();
        e.settle(&mut d);
        assert_eq!((d.errors, e.shown), (0, 1));
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
