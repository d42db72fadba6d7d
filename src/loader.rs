//! The kernel half of loading: create the maps an `ObjectSpec` describes,
//! point each program's map loads at their fds, and load programs, showing
//! the verifier's log when one is rejected.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{Context, Result, anyhow, bail};

use crate::obj::{ObjectSpec, ProgramKind, ProgramSpec};
use crate::sys::bpf::{self, BPF_MAP_TYPE_PERF_EVENT_ARRAY};

/// Verifier log sizes tried in turn when a program is rejected.
const LOG_SIZES: [usize; 4] = [64 << 10, 1 << 20, 16 << 20, 256 << 20];
/// Lines of the verifier log shown in an error: the end is where it failed.
const LOG_TAIL_LINES: usize = 20;

pub struct Loaded {
    pub spec: ObjectSpec,
    maps: Vec<OwnedFd>,
    possible_cpus: u32,
    license: CString,
    kern_version: u32,
}

impl Loaded {
    /// Creates every map. A perf event array declared with 0 entries gets
    /// one per possible CPU, the index `BPF_F_CURRENT_CPU` writes to.
    pub fn create_maps(spec: ObjectSpec, possible_cpus: u32) -> Result<Loaded> {
        let mut maps = Vec::with_capacity(spec.maps.len());
        for m in &spec.maps {
            let max_entries = if m.map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.max_entries == 0 {
                possible_cpus
            } else {
                m.max_entries
            };
            let def = bpf::MapDef {
                name: &m.name,
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries,
                flags: m.flags,
            };
            let fd = bpf::map_create(&def)
                .with_context(|| format!("could not create BPF map {}", m.name))?;
            maps.push(fd);
        }
        let license = CString::new(spec.license.clone())
            .map_err(|_| anyhow!("the object's license contains a NUL byte"))?;
        Ok(Loaded {
            spec,
            maps,
            possible_cpus,
            license,
            kern_version: kernel_version_code(),
        })
    }

    pub fn map(&self, name: &str) -> Result<BorrowedFd<'_>> {
        let index = self
            .spec
            .map_index(name)
            .ok_or_else(|| anyhow!("the BPF object has no map named {name}"))?;
        Ok(self.maps[index].as_fd())
    }

    /// Slot 0 of a per-CPU array of u64 counters, summed over every
    /// possible CPU (the kernel returns one 8-byte value per CPU).
    pub fn sum_per_cpu(&self, map: &str) -> Result<u64> {
        let mut values = vec![0u8; self.possible_cpus as usize * 8];
        bpf::map_lookup(self.map(map)?, &0u32.to_ne_bytes(), &mut values)
            .with_context(|| format!("cannot read BPF map {map}"))?;
        Ok(values
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .sum())
    }

    pub fn program(&self, name: &str) -> Result<&ProgramSpec> {
        self.spec
            .program(name)
            .ok_or_else(|| anyhow!("the BPF object has no program named {name}"))
    }

    /// Loads one program. Loading without a log first is cheaper; only on
    /// failure is it loaded again with a log, grown until the log fits.
    pub fn load_program(&self, spec: &ProgramSpec) -> Result<OwnedFd> {
        let fds: Vec<i32> = self.maps.iter().map(|m| m.as_raw_fd()).collect();
        let insns = spec.insns_with_map_fds(&fds);
        let load = bpf::ProgLoad {
            name: &spec.name,
            prog_type: match spec.kind {
                ProgramKind::Kprobe { .. } => bpf::BPF_PROG_TYPE_KPROBE,
                ProgramKind::Tracepoint { .. } => bpf::BPF_PROG_TYPE_TRACEPOINT,
            },
            insns: &insns,
            license: &self.license,
            kern_version: self.kern_version,
        };
        let first = match bpf::prog_load(&load, None) {
            Ok(fd) => return Ok(fd),
            Err(e) => e,
        };
        if first.raw_os_error() == Some(libc::EPERM) {
            bail!(
                "the kernel refused to load BPF program {} (EPERM): run as root, \
                 or with CAP_BPF and CAP_PERFMON",
                spec.name
            );
        }
        for size in LOG_SIZES {
            let mut log = vec![0u8; size];
            match bpf::prog_load(&load, Some(&mut log)) {
                // Rejected once, accepted now: a flaky kernel, but loaded.
                Ok(fd) => return Ok(fd),
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => continue,
                Err(e) => bail!(
                    "the verifier rejected BPF program {} ({e}); the end of its log:\n{}",
                    spec.name,
                    log_tail(&log)
                ),
            }
        }
        bail!(
            "the verifier rejected BPF program {} ({first}); its log did not fit in {} MiB",
            spec.name,
            LOG_SIZES[LOG_SIZES.len() - 1] >> 20
        )
    }
}

fn log_tail(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// LINUX_VERSION_CODE of the running kernel, from uname. Kernels before 5.0
/// refuse a kprobe program whose kern_version does not match.
fn kernel_version_code() -> u32 {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    (a << 16) | (b.min(255) << 8) | c.min(255)
}
