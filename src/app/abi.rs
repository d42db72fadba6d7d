//! The two structs shared with the C probe, mirroring `bpf/event.h` byte for
//! byte: the event it sends and the configuration we write into its map.

pub const COMM_LEN: usize = 16;
pub const PREVIEW_LEN: usize = 8;
/// A whole `struct event`: a completed call (`--exit`).
pub const EVENT_SIZE: usize = 80;
/// The part an entry sends: the event without ret and lat_ns.
pub const ENTRY_EVENT_SIZE: usize = 64;
pub const CONFIG_SIZE: usize = 96;

pub const EVENT_HAS_PREVIEW: u16 = 1;
pub const EVENT_COMPLETED: u16 = 2;
pub const EVENT_UNFINISHED: u16 = 4;
/// In the inflight map only: the record's call has not returned yet.
pub const EVENT_PENDING: u16 = 8;

/// The slots of the probe's `exit_counts` map (bpf/event.h COUNT_*).
pub const COUNT_STORED: u32 = 0;
pub const COUNT_MATCHED: u32 = 1;
pub const COUNT_MISSED_RETURN: u32 = 2;
pub const COUNT_NO_ENTRY: u32 = 3;
pub const COUNT_INSERTED: u32 = 4;
/// A whole `struct inflight`.
pub const INFLIGHT_SIZE: usize = EVENT_SIZE + 8 + 4 * 10;

/// A comm as the kernel keeps it (NUL-padded), up to its NUL: raw bytes,
/// which any process may set.
pub fn until_nul(comm: &[u8; COMM_LEN]) -> &[u8] {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
    &comm[..end]
}

/// A call of the read/write family (bpf/event.h SYSCALL_*, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Syscall {
    Read,
    Write,
    Pread64,
    Pwrite64,
    Readv,
    Writev,
    Preadv,
    Pwritev,
    Preadv2,
    Pwritev2,
}

impl Syscall {
    /// The family, in the probe's numbering.
    pub const ALL: [Syscall; 10] = [
        Syscall::Read,
        Syscall::Write,
        Syscall::Pread64,
        Syscall::Pwrite64,
        Syscall::Readv,
        Syscall::Writev,
        Syscall::Preadv,
        Syscall::Pwritev,
        Syscall::Preadv2,
        Syscall::Pwritev2,
    ];

    /// Its name, as the kernel's tables (and `--syscalls`) spell it.
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Read => "read",
            Syscall::Write => "write",
            Syscall::Pread64 => "pread64",
            Syscall::Pwrite64 => "pwrite64",
            Syscall::Readv => "readv",
            Syscall::Writev => "writev",
            Syscall::Preadv => "preadv",
            Syscall::Pwritev => "pwritev",
            Syscall::Preadv2 => "preadv2",
            Syscall::Pwritev2 => "pwritev2",
        }
    }

    /// The call the probe numbers `n`.
    pub fn from_index(n: u16) -> Option<Syscall> {
        Syscall::ALL.get(n as usize).copied()
    }

    /// Its number in the probe (event.syscall).
    pub fn index(self) -> u16 {
        self as u16
    }

    /// The call named `name` (`pread` and `pwrite` taken for the 64s).
    pub fn parse(name: &str) -> Option<Syscall> {
        match name {
            "pread" => Some(Syscall::Pread64),
            "pwrite" => Some(Syscall::Pwrite64),
            _ => Syscall::ALL.into_iter().find(|s| s.name() == name),
        }
    }

    /// The call a program of the probe hooks, from its section: kprobes
    /// on `__x64_sys_NAME`, tracepoints `sys_enter_NAME`/`sys_exit_NAME`.
    pub fn of_program(kind: &crate::obj::ProgramKind) -> Option<Syscall> {
        use crate::obj::ProgramKind;
        let name = match kind {
            ProgramKind::Kprobe { function } | ProgramKind::Kretprobe { function } => {
                function.strip_prefix("__x64_sys_")?
            }
            ProgramKind::Tracepoint { name, .. } => name
                .strip_prefix("sys_enter_")
                .or_else(|| name.strip_prefix("sys_exit_"))?,
            // One program for every call (config.syscalls says which).
            ProgramKind::RawTracepoint { .. } => return None,
        };
        Syscall::ALL.into_iter().find(|s| s.name() == name)
    }

    /// A program of the probe is needed for `syscalls`: its call's, or a
    /// raw tracepoint program (which serves every call of the family).
    pub fn needed(kind: &crate::obj::ProgramKind, syscalls: &[Syscall]) -> bool {
        match kind {
            crate::obj::ProgramKind::RawTracepoint { .. } => !syscalls.is_empty(),
            _ => Syscall::of_program(kind).is_some_and(|s| syscalls.contains(&s)),
        }
    }

    /// The calls of `syscalls` as config.syscalls has them: bit `index`.
    pub fn mask(syscalls: &[Syscall]) -> u32 {
        syscalls.iter().fold(0, |m, s| m | 1 << s.index())
    }

    /// It fills the caller's memory (a read of some kind), rather than
    /// taking bytes from it.
    pub fn reads(self) -> bool {
        (self as u16).is_multiple_of(2)
    }

    /// Its number on x86-64.
    pub fn number(self) -> i64 {
        match self {
            Syscall::Read => libc::SYS_read,
            Syscall::Write => libc::SYS_write,
            Syscall::Pread64 => libc::SYS_pread64,
            Syscall::Pwrite64 => libc::SYS_pwrite64,
            Syscall::Readv => libc::SYS_readv,
            Syscall::Writev => libc::SYS_writev,
            Syscall::Preadv => libc::SYS_preadv,
            Syscall::Pwritev => libc::SYS_pwritev,
            Syscall::Preadv2 => libc::SYS_preadv2,
            Syscall::Pwritev2 => libc::SYS_pwritev2,
        }
    }
}

/// `struct event` of bpf/event.h, field for field: 80 bytes, no padding;
/// an entry's event is its first 64 (ret and lat_ns 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    pub count: u64,
    pub fd: i32,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub cpu: u32,
    pub syscall: u16,
    pub flags: u16,
    pub comm: [u8; COMM_LEN],
    pub preview: [u8; PREVIEW_LEN],
    /// What the call returned: bytes, or -errno (completed calls only).
    pub ret: i64,
    /// From entry to return, ns (completed calls only).
    pub lat_ns: u64,
}

// The layout bpf/event.h gives; a change on either side fails the build.
const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<Event>() == EVENT_SIZE);
    assert!(offset_of!(Event, ts_ns) == 0);
    assert!(offset_of!(Event, count) == 8);
    assert!(offset_of!(Event, fd) == 16);
    assert!(offset_of!(Event, pid) == 20);
    assert!(offset_of!(Event, tgid) == 24);
    assert!(offset_of!(Event, uid) == 28);
    assert!(offset_of!(Event, cpu) == 32);
    assert!(offset_of!(Event, syscall) == 36);
    assert!(offset_of!(Event, flags) == 38);
    assert!(offset_of!(Event, comm) == 40);
    assert!(offset_of!(Event, preview) == 56);
    assert!(offset_of!(Event, ret) == ENTRY_EVENT_SIZE);
    assert!(offset_of!(Event, lat_ns) == 72);
};

/// `struct inflight` of bpf/event.h: what a call's entry leaves in the
/// `inflight` map for its exit (`--exit`), keyed by thread id.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inflight {
    /// The event as far as the entry knows it (ret and lat_ns 0).
    pub event: Event,
    /// The user buffer's address, for the exit's read preview.
    pub buf: u64,
    /// `probe top`: the thread's last row per syscall (slot + 1; 0 none).
    pub slots: [u32; 10],
}

const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<Inflight>() == INFLIGHT_SIZE);
    assert!(offset_of!(Inflight, event) == 0);
    assert!(offset_of!(Inflight, buf) == EVENT_SIZE);
    assert!(offset_of!(Inflight, slots) == EVENT_SIZE + 8);
};

impl Inflight {
    /// Decodes a value of the `inflight` map.
    pub fn decode(b: &[u8; INFLIGHT_SIZE]) -> Inflight {
        // SAFETY: exactly size_of::<Inflight>() bytes, read without
        // alignment assumptions into plain integers and byte arrays, which
        // are valid for any bit pattern.
        unsafe { std::ptr::read_unaligned(b.as_ptr() as *const Inflight) }
    }
}

impl Event {
    /// The flags of a payload (they say how long the event is).
    #[inline]
    fn payload_flags(b: &[u8]) -> u16 {
        const AT: usize = std::mem::offset_of!(Event, flags);
        u16::from_ne_bytes([b[AT], b[AT + 1]])
    }

    /// Decodes a sample payload: an entry's 64 bytes, or a completed
    /// call's 80. The kernel pads payloads to 8 bytes, so only the bytes
    /// the flags promise are ours (an entry's padding must not be read as
    /// its ret); a shorter payload is not an event of this probe. (The BPF
    /// side runs on this machine: its byte order is ours.)
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Event> {
        if b.len() < ENTRY_EVENT_SIZE {
            return None;
        }
        let len = if Self::payload_flags(b) & EVENT_COMPLETED != 0 {
            EVENT_SIZE
        } else {
            ENTRY_EVENT_SIZE
        };
        let b = b.get(..len)?;
        let mut event = Event::default();
        // SAFETY: `len` <= size_of::<Event>() bytes are copied into a live
        // Event, which is plain integers and byte arrays, valid for any bit
        // pattern; the source is read without alignment assumptions.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), &mut event as *mut Event as *mut u8, len);
        }
        Some(event)
    }

    /// When a payload's call is ordered among the others: its entry, or
    /// for a completed call its return (entry + latency), which is when it
    /// was sent.
    #[inline]
    pub fn timestamp(b: &[u8]) -> Option<u64> {
        let entry = u64::from_ne_bytes(b.get(..8)?.try_into().ok()?);
        if b.len() < ENTRY_EVENT_SIZE {
            return None;
        }
        if Self::payload_flags(b) & EVENT_COMPLETED != 0 {
            const LAT: usize = std::mem::offset_of!(Event, lat_ns);
            let lat = u64::from_ne_bytes(b.get(LAT..LAT + 8)?.try_into().ok()?);
            return Some(entry.saturating_add(lat));
        }
        Some(entry)
    }

    /// `timestamp` of a decoded event.
    pub fn order_key(&self) -> u64 {
        if self.completed() {
            self.ts_ns.saturating_add(self.lat_ns)
        } else {
            self.ts_ns
        }
    }

    /// A call that returned (`--exit`): ret and lat_ns are set.
    pub fn completed(&self) -> bool {
        self.flags & EVENT_COMPLETED != 0
    }

    /// A call still in flight when the monitor stopped.
    pub fn unfinished(&self) -> bool {
        self.flags & EVENT_UNFINISHED != 0
    }

    /// Its call (a number the probe does not use reads as `read`: the
    /// probe sends only its own).
    pub fn syscall(&self) -> Syscall {
        Syscall::from_index(self.syscall).unwrap_or(Syscall::Read)
    }

    /// The comm up to its NUL: raw bytes, which any process may set.
    pub fn comm(&self) -> &[u8] {
        until_nul(&self.comm)
    }

    /// The first bytes written, or read once a read returned, when the
    /// kernel side copied them (`-v`).
    pub fn preview(&self) -> Option<&[u8]> {
        if self.flags & EVENT_HAS_PREVIEW == 0 {
            return None;
        }
        let moved = if self.completed() && self.syscall().reads() {
            self.ret.max(0) as u64
        } else {
            self.count
        };
        let len = (moved as usize).min(PREVIEW_LEN);
        Some(&self.preview[..len])
    }
}

/// `struct config` of bpf/event.h, field for field: slot 0 of the
/// probe's config map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawConfig {
    pub verbose: u32,
    pub filter_tgid: u32,
    pub self_tgid: u32,
    pub filter_comm_set: u32,
    pub filter_comm: [u8; COMM_LEN],
    pub filter_cgroup: u32,
    pub exit_mode: u32,
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    pub top_by: u32,
    pub syscalls: u32,
    pub compat_status_off: u32,
    pub ring_slots: u32,
    pub target_leader_off: u32,
    pub target_start_off: u32,
    pub target_start_lo: u64,
    pub target_start_hi: u64,
}

const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<RawConfig>() == CONFIG_SIZE);
    assert!(offset_of!(RawConfig, verbose) == 0);
    assert!(offset_of!(RawConfig, filter_tgid) == 4);
    assert!(offset_of!(RawConfig, self_tgid) == 8);
    assert!(offset_of!(RawConfig, filter_comm_set) == 12);
    assert!(offset_of!(RawConfig, filter_comm) == 16);
    assert!(offset_of!(RawConfig, filter_cgroup) == 32);
    assert!(offset_of!(RawConfig, pidns_dev) == 40);
    assert!(offset_of!(RawConfig, pidns_ino) == 48);
    assert!(offset_of!(RawConfig, top_by) == 56);
    assert!(offset_of!(RawConfig, syscalls) == 60);
    assert!(offset_of!(RawConfig, compat_status_off) == 64);
    assert!(offset_of!(RawConfig, ring_slots) == 68);
    assert!(offset_of!(RawConfig, target_leader_off) == 72);
    assert!(offset_of!(RawConfig, target_start_off) == 76);
    assert!(offset_of!(RawConfig, target_start_lo) == 80);
    assert!(offset_of!(RawConfig, target_start_hi) == 88);
};

/// A pid namespace, as `bpf_get_ns_current_pid_tgid` names it: the
/// `st_dev` and `st_ino` of its /proc/PID/ns/pid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidNs {
    pub dev: u64,
    pub ino: u64,
}

/// `-p`'s process as the kernel can tell it from another that reuses its
/// pid: where its group leader's start time is in a task_struct (from the
/// kernel's BTF), and the range that start time lies in (`app::target`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetIdentity {
    /// `offsetof(struct task_struct, group_leader)`.
    pub leader_off: u32,
    /// `offsetof(struct task_struct, start_boottime)`: not 0.
    pub start_off: u32,
    /// The leader's `start_boottime` (ns since boot, the kernel's own
    /// clock) is at least this...
    pub start_lo: u64,
    /// ... and less than this.
    pub start_hi: u64,
}

/// What the monitor tells the probe, before it becomes a `RawConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    pub verbose: u32,
    /// Only this process (tgid); None for all. A host tgid, or, with
    /// `pid_ns`, the tgid in that namespace (the probe_pidns build).
    pub filter_tgid: Option<u32>,
    /// With `filter_tgid`: the process's identity, so that one reusing its
    /// pid is not matched (None: the number alone, without kernel BTF).
    pub target: Option<TargetIdentity>,
    pub pid_ns: Option<PidNs>,
    /// The monitor's own tgid as the kernel sees it (the host's).
    pub self_tgid: u32,
    /// Only processes whose comm is exactly this (at most 15 bytes).
    pub filter_comm: Option<Vec<u8>>,
    /// Only tasks under the cgroup in the probe's `cgroup_filter` map.
    pub filter_cgroup: bool,
    /// Entries stored for the exit hooks, which send completed calls.
    pub exit_mode: bool,
    /// `probe top`: the exit hooks count completed calls into the
    /// top_stats table by this key instead of sending them.
    pub top_by: Option<TopBy>,
    /// The calls of --syscalls (the raw tracepoint programs serve every
    /// call and filter on these; the others are attached per call).
    pub syscalls: Vec<Syscall>,
    /// Where thread_info.status is in the task_struct of this kernel
    /// (`compat::status_offset`), for the raw tracepoint programs.
    pub compat_status_off: u32,
    /// `--ring map`: event slots per CPU (a power of two); 0: the perf
    /// rings.
    pub ring_slots: u32,
}

impl ProbeConfig {
    pub fn raw(&self) -> RawConfig {
        let mut raw = RawConfig {
            verbose: self.verbose,
            filter_tgid: self.filter_tgid.unwrap_or(0),
            self_tgid: self.self_tgid,
            filter_cgroup: self.filter_cgroup as u32,
            exit_mode: (self.exit_mode || self.top_by.is_some()) as u32,
            top_by: self.top_by.map_or(0, |b| b as u32),
            pidns_dev: self.pid_ns.map_or(0, |n| n.dev),
            pidns_ino: self.pid_ns.map_or(0, |n| n.ino),
            syscalls: Syscall::mask(&self.syscalls),
            compat_status_off: self.compat_status_off,
            ring_slots: self.ring_slots,
            ..RawConfig::default()
        };
        if let (Some(_), Some(t)) = (self.filter_tgid, self.target) {
            raw.target_leader_off = t.leader_off;
            raw.target_start_off = t.start_off;
            raw.target_start_lo = t.start_lo;
            raw.target_start_hi = t.start_hi;
        }
        if let Some(comm) = &self.filter_comm {
            raw.filter_comm_set = 1;
            let n = comm.len().min(COMM_LEN - 1);
            raw.filter_comm[..n].copy_from_slice(&comm[..n]);
        }
        raw
    }

    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let raw = self.raw();
        // SAFETY: RawConfig is CONFIG_SIZE bytes of plain integers with
        // no padding (checked above): every byte is initialised.
        unsafe { std::mem::transmute::<RawConfig, [u8; CONFIG_SIZE]>(raw) }
    }
}

/// `probe top --by`: what a row of the table counts (bpf/event.h TOP_BY_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopBy {
    /// tgid + comm.
    Process = 1,
    /// tgid + thread id + comm.
    Thread = 2,
    /// The syscall alone: the machine's totals.
    Syscall = 3,
    /// tgid + fd.
    File = 4,
}

impl TopBy {
    pub const ALL: [TopBy; 4] = [TopBy::Process, TopBy::Thread, TopBy::Syscall, TopBy::File];

    /// Its name, as `--by` takes it.
    pub fn name(self) -> &'static str {
        match self {
            TopBy::Process => "process",
            TopBy::Thread => "thread",
            TopBy::Syscall => "syscall",
            TopBy::File => "file",
        }
    }
}

/// Slots of the latency histogram (bpf/event.h LAT_SLOTS): slot k holds
/// [2^k, 2^(k+1)) ns, slot 0 also 0, the last everything from 2^39 ns.
pub const LAT_SLOTS: usize = 40;
/// Slots of the size histogram (bytes moved by a successful call).
pub const SIZE_SLOTS: usize = 32;
/// Slots per syscall of `top_errors_other`: errno 0..=542, then the rest.
pub const ERRNO_SLOTS: usize = 544;
pub const TOP_KEY_SIZE: usize = 32;
pub const TOP_VALUE_SIZE: usize = 24 + COMM_LEN + 4 * (LAT_SLOTS + SIZE_SLOTS);
pub const TOP_ERR_KEY_SIZE: usize = TOP_KEY_SIZE + 8;

/// `struct top_key` of bpf/event.h: a row of `top_stats`. The fields a
/// `--by` leaves out are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TopKey {
    pub tgid: u32,
    pub tid: u32,
    pub fd: i32,
    pub syscall: u16,
    pub pad: u16,
    pub comm: [u8; COMM_LEN],
}

/// `struct top_value`: a row's counts since the probe attached. Its calls
/// are the sum of `lat_hist`, its successful calls that of `size_hist`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopValue {
    pub bytes_req: u64,
    pub bytes_xfer: u64,
    pub lat_ns: u64,
    /// The comm of the row's first call (for the keys without comm).
    pub comm: [u8; COMM_LEN],
    /// 32-bit: read as differences modulo 2^32 from one read to the next.
    pub lat_hist: [u32; LAT_SLOTS],
    pub size_hist: [u32; SIZE_SLOTS],
}

impl Default for TopValue {
    fn default() -> TopValue {
        TopValue {
            bytes_req: 0,
            bytes_xfer: 0,
            lat_ns: 0,
            comm: [0; COMM_LEN],
            lat_hist: [0; LAT_SLOTS],
            size_hist: [0; SIZE_SLOTS],
        }
    }
}

/// `struct top_row`: a slot of the `top_rows` array, its counts and the
/// key they are for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopRow {
    pub v: TopValue,
    pub key: TopKey,
}

pub const TOP_ROW_SIZE: usize = TOP_KEY_SIZE + TOP_VALUE_SIZE;

/// `struct top_err_key`: one errno of one row, in `top_errors`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TopErrKey {
    pub key: TopKey,
    pub err: u32,
    pub pad: u32,
}

const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<TopKey>() == TOP_KEY_SIZE);
    assert!(offset_of!(TopKey, tgid) == 0);
    assert!(offset_of!(TopKey, tid) == 4);
    assert!(offset_of!(TopKey, fd) == 8);
    assert!(offset_of!(TopKey, syscall) == 12);
    assert!(offset_of!(TopKey, comm) == 16);
    assert!(size_of::<TopValue>() == TOP_VALUE_SIZE);
    assert!(offset_of!(TopValue, bytes_req) == 0);
    assert!(offset_of!(TopValue, bytes_xfer) == 8);
    assert!(offset_of!(TopValue, lat_ns) == 16);
    assert!(offset_of!(TopValue, comm) == 24);
    assert!(offset_of!(TopValue, lat_hist) == 40);
    assert!(offset_of!(TopValue, size_hist) == 40 + 4 * LAT_SLOTS);
    assert!(size_of::<TopRow>() == TOP_ROW_SIZE);
    assert!(offset_of!(TopRow, v) == 0);
    assert!(offset_of!(TopRow, key) == TOP_VALUE_SIZE);
    assert!(size_of::<TopErrKey>() == TOP_ERR_KEY_SIZE);
    assert!(offset_of!(TopErrKey, key) == 0);
    assert!(offset_of!(TopErrKey, err) == TOP_KEY_SIZE);
};

/// Plain-old-data shared with the probe: any bytes of the right length
/// are a valid value (integers and byte arrays, no padding: the layouts
/// are checked above).
pub trait Pod: Copy + Default {
    /// The value in `b` (exactly `size_of::<Self>()` bytes).
    fn from_bytes(b: &[u8]) -> Self {
        assert_eq!(b.len(), size_of::<Self>(), "a value of the wrong size");
        // SAFETY: the length is checked; Self is plain integers and byte
        // arrays, valid for any bit pattern; read without alignment
        // assumptions.
        unsafe { std::ptr::read_unaligned(b.as_ptr() as *const Self) }
    }

    /// The value in `w`: exactly `size_of::<Self>()` bytes of words (as
    /// read from a mapped array).
    fn from_words(w: &[u64]) -> Self {
        assert_eq!(w.len() * 8, size_of::<Self>(), "a value of the wrong size");
        // SAFETY: as in from_bytes; the words hold exactly the bytes.
        unsafe { std::ptr::read_unaligned(w.as_ptr() as *const Self) }
    }

    /// Its bytes, as the kernel takes them.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Self has no padding (every byte initialised) and lives
        // as long as the borrow.
        unsafe { std::slice::from_raw_parts(self as *const Self as *const u8, size_of::<Self>()) }
    }
}

impl Pod for u32 {}
impl Pod for u64 {}
impl Pod for TopKey {}
impl Pod for TopValue {}
impl Pod for TopRow {}
impl Pod for TopErrKey {}

impl TopKey {
    /// The comm up to its NUL.
    pub fn comm(&self) -> &[u8] {
        until_nul(&self.comm)
    }
}

impl TopValue {
    /// The comm up to its NUL.
    pub fn comm(&self) -> &[u8] {
        until_nul(&self.comm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(e: &Event) -> [u8; EVENT_SIZE] {
        // SAFETY: Event is EVENT_SIZE bytes of integers, no padding.
        unsafe { std::mem::transmute::<Event, [u8; EVENT_SIZE]>(*e) }
    }

    #[test]
    fn an_entry_is_64_bytes_and_its_padding_is_not_its_result() {
        let e = Event {
            ts_ns: 1000,
            fd: 3,
            ret: 77,
            lat_ns: 5,
            ..Event::default()
        };
        // The kernel pads 64 + 4 (the size word) to 72: what follows the
        // event is not ours.
        let payload = &bytes(&e)[..ENTRY_EVENT_SIZE + 4];
        let decoded = Event::decode(payload).unwrap();
        assert_eq!((decoded.fd, decoded.ret, decoded.lat_ns), (3, 0, 0));
        assert!(!decoded.completed());
        assert_eq!(Event::timestamp(payload), Some(1000));
        assert_eq!(decoded.order_key(), 1000);
        assert_eq!(Event::decode(&bytes(&e)[..ENTRY_EVENT_SIZE - 1]), None);
    }

    #[test]
    fn a_completed_call_is_80_bytes_ordered_by_its_return() {
        let e = Event {
            ts_ns: 1000,
            flags: EVENT_COMPLETED,
            ret: -9,
            lat_ns: 250,
            ..Event::default()
        };
        let b = bytes(&e);
        assert_eq!(Event::decode(&b), Some(e));
        assert_eq!(Event::timestamp(&b), Some(1250));
        assert_eq!(e.order_key(), 1250);
        // Cut short, it is not an event of this probe.
        assert_eq!(Event::decode(&b[..EVENT_SIZE - 8]), None);
    }

    #[test]
    fn a_read_preview_is_only_what_the_read_returned() {
        let mut e = Event {
            flags: EVENT_HAS_PREVIEW | EVENT_COMPLETED,
            count: 100,
            ret: 3,
            preview: *b"abcdefgh",
            ..Event::default()
        };
        assert_eq!(e.preview(), Some(&b"abc"[..]));
        e.ret = -11;
        assert_eq!(e.preview(), Some(&b""[..]));
    }
}
