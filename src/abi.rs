//! The two structs shared with the C probe, mirroring `bpf/event.h` byte for
//! byte: the event it sends and the configuration we write into its map.

pub const COMM_LEN: usize = 16;
pub const PREVIEW_LEN: usize = 8;
pub const EVENT_SIZE: usize = 64;
pub const CONFIG_SIZE: usize = 32;

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

/// `struct config`, slot 0 of the probe's config map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeConfig {
    pub verbose: u32,
    /// Only this process (tgid); None for all.
    pub filter_tgid: Option<u32>,
    pub self_tgid: u32,
    /// Only processes whose comm is exactly this (at most 15 bytes).
    pub filter_comm: Option<Vec<u8>>,
}

impl ProbeConfig {
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        b[0..4].copy_from_slice(&self.verbose.to_le_bytes());
        b[4..8].copy_from_slice(&self.filter_tgid.unwrap_or(0).to_le_bytes());
        b[8..12].copy_from_slice(&self.self_tgid.to_le_bytes());
        if let Some(comm) = &self.filter_comm {
            b[12..16].copy_from_slice(&1u32.to_le_bytes());
            let n = comm.len().min(COMM_LEN - 1);
            b[16..16 + n].copy_from_slice(&comm[..n]);
        }
        b
    }
}
