//! perf_event_open(2), the ioctls that enable an event and attach a BPF
//! program to it, and the mmap of a perf ring (mem.rs makes it).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::explain::{self, Fd};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// perf_event_attr flag bits (the C bitfield, from bit 0 up).
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_WATERMARK: u64 = 1 << 14;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// `struct perf_event_attr` up to PERF_ATTR_SIZE_VER5 (112 bytes), which
/// every kernel this tool supports accepts.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    _reserved: u16,
}

/// perf_event_open(attr, pid, cpu, -1, FD_CLOEXEC); `shown` is the attr as
/// the narration tells it, `label` what the fd is.
fn open(
    attr: &mut PerfEventAttr,
    pid: i32,
    cpu: i32,
    shown: impl FnOnce() -> String,
    label: impl FnOnce() -> String,
) -> io::Result<Fd> {
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // SAFETY: attr is a complete perf_event_attr of the size it declares.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *mut PerfEventAttr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    // SAFETY: a fresh fd from the kernel, owned by nobody else.
    let r = super::check(ret).map(|fd| unsafe { Fd::from_raw(fd as i32, label) });
    explain::tell(
        || {
            format!(
                "perf_event_open({{{}}}, pid={pid}, cpu={cpu}, group_fd=-1, flags=PERF_FLAG_FD_CLOEXEC)",
                shown()
            )
        },
        || Fd::told(&r),
    );
    r
}

/// The event whose ring `bpf_perf_event_output` writes to on `cpu`. The
/// reader is woken once `watermark` bytes are waiting, not per record.
pub fn open_bpf_output(cpu: u32, watermark: u32) -> io::Result<Fd> {
    let mut attr = PerfEventAttr {
        type_: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_BPF_OUTPUT,
        sample_period: 1,
        sample_type: PERF_SAMPLE_RAW,
        flags: FLAG_WATERMARK,
        wakeup: watermark.max(1),
        ..Default::default()
    };
    let wakeup = attr.wakeup;
    open(
        &mut attr,
        -1,
        cpu as i32,
        || {
            format!(
                "type=PERF_TYPE_SOFTWARE, config=PERF_COUNT_SW_BPF_OUTPUT, sample_period=1, \
                 sample_type=PERF_SAMPLE_RAW, watermark=1, wakeup_watermark={wakeup}"
            )
        },
        || format!("perf:bpf-output/cpu{cpu}"),
    )
}

/// A tracepoint (or a tracefs-made kprobe, which is one) by its tracefs id;
/// `name` (category/event) labels it in the narration. Opened on CPU 0
/// for all processes: an attached BPF program still runs on every CPU,
/// since it hangs off the tracepoint itself.
pub fn open_tracepoint(id: u64, name: &str) -> io::Result<Fd> {
    let mut attr = PerfEventAttr {
        type_: PERF_TYPE_TRACEPOINT,
        config: id,
        sample_period: 1,
        flags: FLAG_DISABLED,
        ..Default::default()
    };
    open(
        &mut attr,
        -1,
        0,
        || format!("type=PERF_TYPE_TRACEPOINT, config={id}, sample_period=1, disabled=1"),
        || format!("perf:{name}"),
    )
}

/// A kprobe made through the kprobe PMU (kernel 4.17+): it lives exactly as
/// long as the returned fd, so a killed monitor leaves nothing behind.
/// With `retprobe` (the bit of `config` the PMU's format/retprobe names),
/// a return probe.
pub fn open_kprobe(
    pmu_type: u32,
    function: &std::ffi::CStr,
    retprobe: Option<u32>,
) -> io::Result<Fd> {
    let config = retprobe.map_or(0, |bit| 1u64 << bit);
    let mut attr = PerfEventAttr {
        type_: pmu_type,
        config,
        sample_period: 1,
        flags: FLAG_DISABLED,
        config1: function.as_ptr() as u64,
        ..Default::default()
    };
    let kind = if retprobe.is_some() {
        "kretprobe"
    } else {
        "kprobe"
    };
    open(
        &mut attr,
        -1,
        0,
        || {
            format!(
                "type={pmu_type} ({kind}), config={config:#x}, config1={function:?}, \
                 sample_period=1, disabled=1"
            )
        },
        || format!("perf:{kind}/{}", function.to_string_lossy()),
    )
}

fn ioctl(
    fd: BorrowedFd,
    request: libc::c_ulong,
    arg: libc::c_ulong,
    shown: impl FnOnce() -> String,
) -> io::Result<()> {
    // SAFETY: these perf ioctls take an integer argument, not a pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    let r = super::check(ret as libc::c_long).map(drop);
    explain::tell(
        || format!("ioctl({}, {})", explain::borrowed(fd), shown()),
        || explain::status(&r),
    );
    r
}

/// Attaches a loaded program to a tracepoint or kprobe perf event.
pub fn set_bpf(event: BorrowedFd, prog: BorrowedFd) -> io::Result<()> {
    ioctl(
        event,
        PERF_EVENT_IOC_SET_BPF,
        prog.as_raw_fd() as libc::c_ulong,
        || format!("PERF_EVENT_IOC_SET_BPF, {}", explain::borrowed(prog)),
    )
}

/// Starts the event: its program runs, or its ring fills.
pub fn enable(event: BorrowedFd) -> io::Result<()> {
    ioctl(event, PERF_EVENT_IOC_ENABLE, 0, || {
        "PERF_EVENT_IOC_ENABLE, 0".into()
    })
}

/// Stops the event counting and recording. Not its BPF program: on a
/// tracepoint or kprobe event the program keeps running on every hit until
/// the event is closed (attach::Attachment closes to stop one).
pub fn disable(event: BorrowedFd) -> io::Result<()> {
    ioctl(event, PERF_EVENT_IOC_DISABLE, 0, || {
        "PERF_EVENT_IOC_DISABLE, 0".into()
    })
}

/// A shared read-write mapping of a perf event's ring; unmapped on drop.
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; who reads it is decided by
// the owner of the Mapping, not by the thread that made it.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the event's ring (1 + 2^n pages).
    pub fn new(event: BorrowedFd, len: usize) -> io::Result<Mapping> {
        let ptr = super::mem::map_shared(event, len)?;
        Ok(Mapping { ptr, len })
    }

    /// Where it starts.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a mapping of no bytes (never made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are the mapping made in new(); the ring that
        // read it is dropped with it.
        unsafe { super::mem::unmap(self.ptr, self.len) };
    }
}

/// The system's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}
