//! `--cgroup PATH`: the cgroup v2 directory whose tasks (and those of the
//! cgroups below it) are the only ones reported, the way operators select
//! one container. The probe tests it in the kernel with
//! `bpf_current_task_under_cgroup`, against the directory's fd stored in a
//! cgroup array map (the map keeps the cgroup; the fd can be closed).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Result, anyhow};

use crate::app::output::format;

/// statfs f_type of cgroup2 (include/uapi/linux/magic.h).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Opens `path` as a cgroup v2 directory, or says why it is not one.
pub fn open(path: &Path) -> Result<OwnedFd> {
    let shown = format::path(path);
    let dir: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| anyhow!("--cgroup {shown}: {e}"))?;
    // SAFETY: a zeroed statfs for fstatfs to fill, on the fd just opened.
    let kind = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(dir.as_raw_fd(), &mut st) != 0 {
            return Err(anyhow!(
                "--cgroup {shown}: {}",
                std::io::Error::last_os_error()
            ));
        }
        st.f_type as i64
    };
    if kind != CGROUP2_SUPER_MAGIC {
        return Err(anyhow!(
            "--cgroup {shown}: not a cgroup v2 directory (give one under the cgroup2 \
             mount, e.g. /sys/fs/cgroup/system.slice/docker-ID.scope)"
        ));
    }
    Ok(OwnedFd::from(dir))
}
