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

/// `struct event`.
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

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

impl Event {
    /// Decodes a sample payload. The kernel pads payloads to 8 bytes, so
    /// only the first `EVENT_SIZE` bytes are ours; a shorter one is not an
    /// event of this probe.
    pub fn decode(b: &[u8]) -> Option<Event> {
        let b = b.get(..EVENT_SIZE)?;
        let mut comm = [0; COMM_LEN];
        comm.copy_from_slice(&b[40..56]);
        let mut preview = [0; PREVIEW_LEN];
        preview.copy_from_slice(&b[56..64]);
        Some(Event {
            ts_ns: u64_at(b, 0),
            count: u64_at(b, 8),
            fd: u32_at(b, 16) as i32,
            pid: u32_at(b, 20),
            tgid: u32_at(b, 24),
            uid: u32_at(b, 28),
            cpu: u32_at(b, 32),
            syscall: u16::from_le_bytes([b[36], b[37]]),
            flags: u16::from_le_bytes([b[38], b[39]]),
            comm,
            preview,
        })
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
