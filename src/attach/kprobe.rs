//! Attaching a kprobe through the kprobe PMU (perf_event_open, kernel
//! 4.17+). The probe exists only while its fd does: nothing to clean up,
//! even after SIGKILL.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use super::AttachError;
use crate::sys::{Fd, file, perf};

const PMU_TYPE: &str = "/sys/bus/event_source/devices/kprobe/type";
/// "config:N": the bit of perf_event_attr.config that asks for a return
/// probe.
const RETPROBE_FORMAT: &str = "/sys/bus/event_source/devices/kprobe/format/retprobe";

/// The kprobe PMU's perf type, which the kernel numbers at boot.
pub fn pmu_type() -> Result<u32, AttachError> {
    file::read_text(Path::new(PMU_TYPE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            AttachError::Unsupported(format!(
                "this kernel has no kprobe PMU ({PMU_TYPE} missing: CONFIG_KPROBES off, or older than 4.17)"
            ))
        })
}

/// The config bit for a return probe, from the PMU's own description.
fn retprobe_bit() -> Result<u32, AttachError> {
    file::read_text(Path::new(RETPROBE_FORMAT))
        .ok()
        .and_then(|f| f.trim().strip_prefix("config:")?.parse().ok())
        .filter(|&bit| bit < 64)
        .ok_or_else(|| {
            AttachError::Unsupported(format!(
                "this kernel's kprobe PMU makes no return probes ({RETPROBE_FORMAT} missing or not config:N)"
            ))
        })
}

/// How many calls at once a return probe made through the PMU follows
/// (its `maxactive`): the kernel's default, since perf_event_attr has no
/// field to choose it. Returns beyond it are missed (the probe counts
/// them). The default is max(10, 2 × possible CPUs) since Linux 6.2
/// (commit 3b7ddab8a19a) and on preemptible kernels before it; on other
/// kernels before 6.2 the number of possible CPUs, unless their stable
/// series took that commit (some did): then this says less than the
/// kernel holds, never more.
pub fn pmu_maxactive() -> u32 {
    let cpus = crate::cpus::possible_count().unwrap_or(1).max(1);
    let preemptible = nix::sys::utsname::uname()
        .map(|u| u.version().to_string_lossy().contains("PREEMPT"))
        .unwrap_or(false);
    if preemptible || crate::loader::kernel_at_least(6, 2) {
        (2 * cpus).max(10)
    } else {
        cpus
    }
}

/// A kprobe on `function`, or with `on_return` a kretprobe (one that runs
/// when `function` returns).
pub fn attach(
    prog: BorrowedFd,
    pmu_type: u32,
    function: &str,
    on_return: bool,
) -> Result<Fd, AttachError> {
    let name = CString::new(function)
        .map_err(|_| AttachError::Failed(format!("bad function name {function:?}")))?;
    let retprobe = on_return.then(retprobe_bit).transpose()?;
    let event = perf::open_kprobe(pmu_type, &name, retprobe).map_err(|e| {
        AttachError::from_io(format_args!("could not create a kprobe on {function}"), &e)
    })?;
    super::set_program_and_enable(event.as_fd(), prog)?;
    Ok(event)
}
