//! The two structs shared with the C probe, mirroring `bpf/event.h` byte for
//! byte: the event it sends and the configuration we write into its map.

pub const COMM_LEN: usize = 16;
pub const PREVIEW_LEN: usize = 8;
pub const EVENT_SIZE: usize = 64;
pub const CONFIG_SIZE: usize = 56;

const EVENT_HAS_PREVIEW: u16 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    Read,
    Write,
}

impl Syscall {
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Read => "read",
            Syscall::Write => "write",
        }
    }
}

/// `struct event` of bpf/event.h, field for field: 64 bytes, no padding.
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
};

impl Event {
    /// Decodes a sample payload. The kernel pads payloads to 8 bytes, so
    /// only the first `EVENT_SIZE` bytes are ours; a shorter one is not an
    /// event of this probe. (The BPF side runs on this machine: its byte
    /// order is ours.)
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Event> {
        let b = b.get(..EVENT_SIZE)?;
        // SAFETY: b holds EVENT_SIZE = size_of::<Event>() bytes; Event is
        // plain integers and byte arrays, valid for any bit pattern; the
        // read makes no assumption about alignment.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const Event) })
    }

    /// The `ts_ns` of a payload, without decoding the rest.
    #[inline]
    pub fn timestamp(b: &[u8]) -> Option<u64> {
        if b.len() < EVENT_SIZE {
            return None;
        }
        Some(u64::from_ne_bytes(b[..8].try_into().ok()?))
    }

    pub fn syscall(&self) -> Syscall {
        if self.syscall == 0 {
            Syscall::Read
        } else {
            Syscall::Write
        }
    }

    /// The comm up to its NUL: raw bytes, which any process may set.
    pub fn comm(&self) -> &[u8] {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        &self.comm[..end]
    }

    /// The first bytes written, when the kernel side copied them (`-v`).
    pub fn preview(&self) -> Option<&[u8]> {
        if self.flags & EVENT_HAS_PREVIEW == 0 {
            return None;
        }
        let len = (self.count as usize).min(PREVIEW_LEN);
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
    pub pad: u32,
    pub pidns_dev: u64,
    pub pidns_ino: u64,
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
};

/// A pid namespace, as `bpf_get_ns_current_pid_tgid` names it: the
/// `st_dev` and `st_ino` of its /proc/PID/ns/pid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PidNs {
    pub dev: u64,
    pub ino: u64,
}

/// What the monitor tells the probe, before it becomes a `RawConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    pub verbose: u32,
    /// Only this process (tgid); None for all. A host tgid, or, with
    /// `pid_ns`, the tgid in that namespace (the probe_pidns build).
    pub filter_tgid: Option<u32>,
    pub pid_ns: Option<PidNs>,
    /// The monitor's own tgid as the kernel sees it (the host's).
    pub self_tgid: u32,
    /// Only processes whose comm is exactly this (at most 15 bytes).
    pub filter_comm: Option<Vec<u8>>,
    /// Only tasks under the cgroup in the probe's `cgroup_filter` map.
    pub filter_cgroup: bool,
}

impl ProbeConfig {
    pub fn raw(&self) -> RawConfig {
        let mut raw = RawConfig {
            verbose: self.verbose,
            filter_tgid: self.filter_tgid.unwrap_or(0),
            self_tgid: self.self_tgid,
            filter_cgroup: self.filter_cgroup as u32,
            pidns_dev: self.pid_ns.map_or(0, |n| n.dev),
            pidns_ino: self.pid_ns.map_or(0, |n| n.ino),
            ..RawConfig::default()
        };
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
