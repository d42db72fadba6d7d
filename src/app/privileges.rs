//! What the monitor needs of the system before it touches the kernel.

use std::fs;

use anyhow::{Result, bail};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

fn effective_caps() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Root, or the capabilities that stand for it here; in the host's user
/// namespace, since capabilities held only inside another one (a rootless
/// container) do not allow tracing the kernel.
pub fn check() -> Result<()> {
    if !crate::identity::in_initial_user_ns() {
        bail!(
            "running in a user namespace (a rootless container?), where capabilities \
             cannot load tracing programs: run it as root on the host, or in a container \
             with the host's root (docker run --privileged)"
        );
    }
    let caps = effective_caps();
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    bail!("this needs root (or the capabilities CAP_BPF and CAP_PERFMON): run it with sudo")
}

// Capability numbers from linux/capability.h.
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_SETPCAP: u32 = 8;
/// Reading another user's /proc/PID/fd links.
pub const CAP_SYS_PTRACE: u32 = 19;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// (effective, permitted) of the calling thread.
fn capget() -> std::io::Result<(u64, u64)> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: a v3 header and the two data structs v3 wants.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| (hi as u64) << 32 | lo as u64;
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

/// Sets the calling thread's effective and permitted sets to `caps` and
/// empties its inheritable set. Capabilities are per thread.
fn capset(caps: u64) -> std::io::Result<()> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| {
        let v = (caps >> shift) as u32;
        CapData {
            effective: v,
            permitted: v,
            inheritable: 0,
        }
    };
    let data = [half(0), half(32)];
    // SAFETY: a v3 header and the two data structs v3 wants.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
        .min(63)
}

/// Names for the capabilities the monitor may keep.
pub fn cap_names(caps: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|c| caps & (1 << c) != 0)
        .map(|c| match c {
            CAP_DAC_OVERRIDE => "CAP_DAC_OVERRIDE".to_string(),
            CAP_SYS_ADMIN => "CAP_SYS_ADMIN".to_string(),
            CAP_SYS_PTRACE => "CAP_SYS_PTRACE".to_string(),
            CAP_BPF => "CAP_BPF".to_string(),
            other => format!("capability {other}"),
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// True when the calling thread, with the capabilities it has now, may
/// create, rename and remove files in the directory of `file` (or when
/// no capability would help: a read-only or missing directory).
pub fn may_write_beside(file: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let Ok(dir) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // AT_EACCESS: the thread's own effective ids and capabilities.
    // SAFETY: a valid C string; no other pointer.
    let r = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            dir.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    r == 0
        || !matches!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EACCES | libc::EPERM)
        )
}

/// What the shutdown may need, smallest first: nothing (closing fds needs
/// no privilege, nor does a map lookup on an fd we hold since Linux 6.5),
/// CAP_BPF or else CAP_SYS_ADMIN for that lookup on older kernels when
/// unprivileged BPF is disabled, and CAP_DAC_OVERRIDE to remove a legacy
/// kprobe through a kprobe_events file we do not own.
fn candidates(permitted: u64, also: u64) -> Vec<u64> {
    let bpf = if last_cap() >= CAP_BPF {
        1 << CAP_BPF
    } else {
        1 << CAP_SYS_ADMIN
    };
    let dac = 1u64 << CAP_DAC_OVERRIDE;
    let admin = 1u64 << CAP_SYS_ADMIN;
    let mut list: Vec<u64> = [0, dac, bpf, bpf | dac, admin, admin | dac]
        .into_iter()
        .map(|c| (c | also) & permitted)
        .collect();
    list.dedup();
    list
}

/// The smallest set of capabilities under which `shutdown_works` holds,
/// tried on short-lived threads (capabilities are per thread, so the
/// calling thread keeps all of its own).
fn smallest_sufficient(
    permitted: u64,
    also: u64,
    shutdown_works: &(dyn Fn() -> bool + Sync),
) -> Option<u64> {
    candidates(permitted, also).into_iter().find(|&caps| {
        std::thread::scope(|s| {
            s.spawn(|| capset(caps).is_ok() && shutdown_works())
                .join()
                .unwrap_or(false)
        })
    })
}

/// Drops from the calling thread every capability but the smallest set
/// under which `shutdown_works` still holds: from the effective, permitted,
/// inheritable, ambient and bounding sets; and sets no_new_privs. Threads
/// spawned afterwards inherit all of it, so call this before spawning any
/// that should run unprivileged. Returns the capabilities kept.
pub fn drop_capabilities(shutdown_works: &(dyn Fn() -> bool + Sync)) -> Result<u64> {
    drop_capabilities_keeping(0, shutdown_works)
}

/// `drop_capabilities`, keeping `also` as well (if held): `probe top --by
/// file` keeps CAP_SYS_PTRACE to read other users' /proc/PID/fd links.
pub fn drop_capabilities_keeping(
    also: u64,
    shutdown_works: &(dyn Fn() -> bool + Sync),
) -> Result<u64> {
    let (effective, permitted) =
        capget().map_err(|e| anyhow::anyhow!("cannot read this process's capabilities: {e}"))?;
    let keep = smallest_sufficient(permitted, also, shutdown_works).unwrap_or(permitted);
    // SAFETY: prctl calls with integer arguments only.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            bail!(
                "cannot set no_new_privs: {}",
                std::io::Error::last_os_error()
            );
        }
        // The bounding set needs CAP_SETPCAP, so it goes first.
        if effective & (1 << CAP_SETPCAP) != 0 {
            for cap in 0..=last_cap() {
                if keep & (1 << cap) == 0
                    && libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) == 1
                    && libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                {
                    bail!(
                        "cannot drop capability {cap} from the bounding set: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
        // Absent before Linux 4.3 (EINVAL): then there is nothing to clear.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    capset(keep).map_err(|e| anyhow::anyhow!("cannot drop capabilities: {e}"))?;
    Ok(keep)
}
