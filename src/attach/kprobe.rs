//! Attaching a kprobe through the kprobe PMU (perf_event_open, kernel
//! 4.17+). The probe exists only while its fd does: nothing to clean up,
//! even after SIGKILL.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result, anyhow};

use crate::sys::perf;

const PMU_TYPE: &str = "/sys/bus/event_source/devices/kprobe/type";

pub fn attach(prog: BorrowedFd, function: &str) -> Result<OwnedFd> {
    let pmu_type: u32 = fs::read_to_string(PMU_TYPE)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| anyhow!("this kernel has no kprobe PMU ({PMU_TYPE} missing: CONFIG_KPROBES off, or older than 4.17)"))?;
    let name = CString::new(function).map_err(|_| anyhow!("bad function name {function:?}"))?;
    let event = perf::open_kprobe(pmu_type, &name)
        .with_context(|| format!("could not create a kprobe on {function}"))?;
    super::set_program_and_enable(event.as_fd(), prog)?;
    Ok(event)
}
