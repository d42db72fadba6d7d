//! The kernel half of loading: create the maps an `ObjectSpec` describes,
//! point each program's map loads at their fds, and load programs, showing
//! the verifier's log when one is rejected.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use probe::loader::{self, Loaded};
//! let bytes = std::fs::read("counter.bpf.o")?;
//! loader::raise_memlock();
//! let loaded = Loaded::create_maps(probe::obj::parse(&bytes)?, probe::cpus::possible_count()?)?;
//! let program = loaded.load("count_execs")?;
//! let counts = loaded.map("counts")?;
//! let mut value = [0u8; 8];
//! counts.lookup(&0u32.to_ne_bytes(), &mut value)?;
//! # Ok(()) }
//! ```

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use anyhow::{Context, Result, anyhow};

mod btf;
mod core;

use crate::obj::{MapSpec, ObjectSpec, ProgramKind, ProgramSpec};
use crate::sys::Fd;
use crate::sys::bpf::{self, BPF_MAP_TYPE_PERF_EVENT_ARRAY, ProgInfo};
use crate::sys::explain;

/// Verifier log sizes tried in turn when a program is rejected.
const LOG_SIZES: [usize; 4] = [64 << 10, 1 << 20, 16 << 20, 256 << 20];
/// Lines of the verifier log shown in an error: the end is where it failed.
const LOG_TAIL_LINES: usize = 20;

/// Kernels before 5.11 charge BPF maps and programs to RLIMIT_MEMLOCK; a
/// low limit makes loads fail with EPERM and an empty verifier log. Call
/// this once before loading anything.
pub fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
    // Best effort: without CAP_SYS_RESOURCE the limit stays, which matters
    // only before 5.11, where a load then fails with EPERM and says so.
    let r = if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    };
    explain::tell(
        || "setrlimit(RLIMIT_MEMLOCK, {rlim_cur=RLIM_INFINITY, rlim_max=RLIM_INFINITY})".into(),
        || explain::status(&r),
    );
}

/// Why a program could not be loaded: the cases a caller must tell apart.
#[derive(Debug)]
pub enum LoadError {
    /// No program of that name in the object.
    NoSuchProgram(String),
    /// The program names a map this object does not have: its spec came
    /// from another object.
    ForeignSpec(String),
    /// The kernel said EPERM: not root (or CAP_BPF and CAP_PERFMON), a
    /// lockdown or LSM policy, or before 5.11 the memlock limit.
    NotPermitted {
        /// The program.
        program: String,
    },
    /// Its CO-RE relocations could not be applied: no BTF of the running
    /// kernel to resolve them against, or a malformed record.
    Core {
        /// The program.
        program: String,
        /// Why, in one line.
        why: String,
    },
    /// The verifier rejected it; `log` is the end of its log.
    Rejected {
        /// The program.
        program: String,
        /// What the kernel returned.
        error: io::Error,
        /// The end of the verifier's log (empty if it never fit).
        log: String,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NoSuchProgram(name) => {
                write!(f, "the BPF object has no program named {name}")
            }
            LoadError::ForeignSpec(name) => write!(
                f,
                "BPF program {name} uses maps this object does not have: it was parsed from \
                 another object"
            ),
            LoadError::NotPermitted { program } => write!(
                f,
                "the kernel refused to load BPF program {program} (EPERM): run as root, \
                 or with CAP_BPF and CAP_PERFMON"
            ),
            LoadError::Core { program, why } => {
                write!(
                    f,
                    "BPF program {program}: CO-RE relocations not applied: {why}"
                )
            }
            LoadError::Rejected {
                program,
                error,
                log,
            } if log.is_empty() => write!(
                f,
                "the verifier rejected BPF program {program} ({error}); its log did not fit in {} MiB",
                LOG_SIZES[LOG_SIZES.len() - 1] >> 20
            ),
            LoadError::Rejected {
                program,
                error,
                log,
            } => write!(
                f,
                "the verifier rejected BPF program {program} ({error}); the end of its log:\n{log}"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Why a map operation failed.
#[derive(Debug)]
pub enum MapError {
    /// No map of that name in the object.
    NoSuchMap(String),
    /// A key or value buffer of the wrong size: refused before the kernel
    /// could read or write past it.
    WrongSize {
        /// The map.
        map: String,
        /// `key` or `value`.
        what: &'static str,
        /// The size the map has.
        expected: usize,
        /// The size given.
        given: usize,
    },
    /// The kernel refused the operation.
    Kernel {
        /// The map.
        map: String,
        /// What was asked (`update`, `read`, ...).
        op: &'static str,
        /// What the kernel returned.
        error: io::Error,
    },
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::NoSuchMap(name) => write!(f, "the BPF object has no map named {name}"),
            MapError::WrongSize {
                map,
                what,
                expected,
                given,
            } => write!(
                f,
                "map {map}: a {what} of {given} bytes where the map has {expected}"
            ),
            MapError::Kernel { map, op, error } => write!(f, "cannot {op} map {map}: {error}"),
        }
    }
}

impl std::error::Error for MapError {}

/// A loaded program: its fd keeps it in the kernel.
pub struct Program {
    name: String,
    kind: ProgramKind,
    fd: Fd,
}

impl Program {
    /// Its name in the object.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it attaches.
    pub fn kind(&self) -> &ProgramKind {
        &self.kind
    }

    /// Its fd, for attaching.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What the kernel says about it, and how much of `ProgInfo` it knew.
    pub fn info(&self) -> io::Result<(ProgInfo, u32)> {
        bpf::prog_info(self.fd())
    }

    /// Runs of this program the kernel skipped (its recursion protection).
    /// A kprobe or perf-tracepoint program is skipped on a CPU whose
    /// "a BPF program is running" flag is up: raised by every kprobe,
    /// tracepoint and perf-event program run, and by bpf(2)'s map
    /// operations; a raw tracepoint program only when it would run inside
    /// a run of itself on that CPU (one that was preempted). None where
    /// the kernel cannot say: before 5.12 there is no such count, and
    /// kprobe, perf-tracepoint and raw-tracepoint programs are counted only
    /// since 6.7 (on 5.12-6.6 their count stays 0).
    pub fn recursion_misses(&self) -> Option<u64> {
        let (info, len) = self.info().ok()?;
        let counted = len >= bpf::PROG_INFO_RECURSION_MISSES_END
            && (!matches!(
                self.kind,
                ProgramKind::Kprobe { .. }
                    | ProgramKind::Kretprobe { .. }
                    | ProgramKind::Tracepoint { .. }
                    | ProgramKind::RawTracepoint { .. }
            ) || kernel_at_least(6, 7));
        counted.then_some(info.recursion_misses)
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Program({}, {:?})", self.name, self.fd)
    }
}

/// A created map, with what is needed to use it safely: every buffer is
/// checked against the map's key and value sizes before the kernel sees it.
pub struct Map<'a> {
    spec: &'a MapSpec,
    fd: BorrowedFd<'a>,
    possible_cpus: u32,
}

/// Map types whose lookups return one value per possible CPU.
fn per_cpu(map_type: u32) -> bool {
    // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE.
    matches!(map_type, 5 | 6 | 10 | 21)
}

impl Map<'_> {
    /// Its name in the object.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd
    }

    /// Bytes per key.
    pub fn key_size(&self) -> usize {
        self.spec.key_size as usize
    }

    /// Bytes a lookup fills: the value size, or for a per-CPU map one
    /// value per possible CPU, each rounded up to 8 bytes.
    pub fn lookup_size(&self) -> usize {
        let value = self.spec.value_size as usize;
        if per_cpu(self.spec.map_type) {
            value.next_multiple_of(8) * self.possible_cpus as usize
        } else {
            value
        }
    }

    fn check(&self, what: &'static str, expected: usize, given: usize) -> Result<(), MapError> {
        if expected == given {
            return Ok(());
        }
        Err(MapError::WrongSize {
            map: self.spec.name.clone(),
            what,
            expected,
            given,
        })
    }

    /// Writes `value` at `key`.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), MapError> {
        self.check("key", self.key_size(), key.len())?;
        self.check("value", self.lookup_size(), value.len())?;
        // SAFETY: both buffers were just checked to be exactly the sizes
        // the kernel reads.
        unsafe { bpf::map_update(self.fd, key, value) }.map_err(|error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "update",
            error,
        })
    }

    /// Reads the value at `key` into `value` (`lookup_size()` bytes).
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<(), MapError> {
        self.check("key", self.key_size(), key.len())?;
        self.check("value", self.lookup_size(), value.len())?;
        // SAFETY: both buffers were just checked to be exactly the sizes
        // the kernel reads and writes.
        unsafe { bpf::map_lookup(self.fd, key, value) }.map_err(|error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "read",
            error,
        })
    }

    /// Removes the element at `key` (hash maps). A key that is not there
    /// is an error (ENOENT), which the caller may ignore.
    pub fn delete(&self, key: &[u8]) -> Result<(), MapError> {
        self.check("key", self.key_size(), key.len())?;
        // SAFETY: the key was just checked to be exactly the size the
        // kernel reads.
        unsafe { bpf::map_delete(self.fd, key) }.map_err(|error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "delete",
            error,
        })
    }

    /// Every key, in the kernel's order: for hash maps, where the keys are
    /// not known in advance. A key deleted while iterating may end it early
    /// or restart it (the kernel's rule for BPF_MAP_GET_NEXT_KEY).
    pub fn keys(&self) -> Keys<'_, '_> {
        Keys {
            map: self,
            last: None,
            done: false,
        }
    }

    /// Pushes `value` into a queue (or stack) map.
    pub fn push(&self, value: &[u8]) -> Result<(), MapError> {
        self.check("value", self.spec.value_size as usize, value.len())?;
        // SAFETY: the value was just checked to be exactly the size the
        // kernel reads; a queue takes no key.
        unsafe { bpf::map_push(self.fd, value) }.map_err(|error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "push into",
            error,
        })
    }

    /// Maps an array created with `BPF_F_MMAPABLE` (Linux 5.5+) into this
    /// process: element `i` is at byte `i * stride()`, where stride is the
    /// value size rounded up to 8. Reads then need no system call.
    pub fn mmap(&self) -> Result<crate::sys::mem::SharedMapping, MapError> {
        let kernel = |error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "mmap",
            error,
        };
        if self.spec.map_type != bpf::BPF_MAP_TYPE_ARRAY
            || self.spec.flags & bpf::BPF_F_MMAPABLE == 0
        {
            return Err(kernel(std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let len = self.stride() * self.spec.max_entries as usize;
        let page = crate::sys::perf::page_size();
        crate::sys::mem::SharedMapping::new(self.fd, len.next_multiple_of(page)).map_err(kernel)
    }

    /// How many elements it holds.
    pub fn max_entries(&self) -> u32 {
        self.spec.max_entries
    }

    /// Bytes from one element of a mapped array to the next.
    pub fn stride(&self) -> usize {
        (self.spec.value_size as usize).next_multiple_of(8)
    }

    /// Every element, read into `keys` and `values` (resized to fit; each
    /// `key_size()` and `lookup_size()` bytes apart); returns how many.
    /// Batched (BPF_MAP_LOOKUP_BATCH) where the kernel has it, 5.6+;
    /// element by element before. Either way concurrent updates may land
    /// before or after an element is read: each element is read whole
    /// (hash maps copy it under their bucket lock), not the map at once.
    pub fn read_all(&self, keys: &mut Vec<u8>, values: &mut Vec<u8>) -> Result<usize, MapError> {
        let (ks, vs) = (self.key_size(), self.lookup_size());
        let max = self.spec.max_entries as usize;
        keys.resize(max * ks, 0);
        values.resize(max * vs, 0);
        let kernel = |error| MapError::Kernel {
            map: self.spec.name.clone(),
            op: "read",
            error,
        };
        let mut start = [0u8; bpf::BATCH_TOKEN_SIZE];
        let mut next = [0u8; bpf::BATCH_TOKEN_SIZE];
        let mut n = 0;
        let mut first = true;
        if ks > bpf::BATCH_TOKEN_SIZE {
            return self.read_all_by_key(keys, values);
        }
        while n < max {
            let left = max - n;
            // SAFETY: `keys` and `values` have room for `left` elements
            // from `n` on (resized above); the tokens are
            // BATCH_TOKEN_SIZE >= the key size (checked above).
            let r = unsafe {
                bpf::map_lookup_batch(
                    self.fd,
                    (!first).then_some(&start[..]),
                    &mut next,
                    &mut keys[n * ks..],
                    &mut values[n * vs..],
                    left as u32,
                )
            };
            match r {
                Ok(read) => {
                    n += read.count as usize;
                    if read.done {
                        break;
                    }
                }
                Err(e) if first && matches!(e.raw_os_error(), Some(libc::EINVAL | 524)) => {
                    return self.read_all_by_key(keys, values);
                }
                Err(e) => return Err(kernel(e)),
            }
            first = false;
            start = next;
        }
        Ok(n)
    }

    /// `read_all` for kernels without batch reads: key after key. A key
    /// deleted between its listing and its read is left out.
    fn read_all_by_key(&self, keys: &mut Vec<u8>, values: &mut Vec<u8>) -> Result<usize, MapError> {
        let (ks, vs) = (self.key_size(), self.lookup_size());
        let listed: Vec<Vec<u8>> = self.keys().collect::<Result<_, _>>()?;
        keys.resize(listed.len() * ks, 0);
        values.resize(listed.len() * vs, 0);
        let mut n = 0;
        for key in listed {
            match self.lookup(&key, &mut values[n * vs..(n + 1) * vs]) {
                Ok(()) => {
                    keys[n * ks..(n + 1) * ks].copy_from_slice(&key);
                    n += 1;
                }
                Err(MapError::Kernel { ref error, .. })
                    if error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// A per-CPU map of u64 counters: the value at `key` summed over every
    /// possible CPU.
    pub fn sum_per_cpu_u64(&self, key: &[u8]) -> Result<u64, MapError> {
        let mut values = vec![0u8; self.lookup_size()];
        self.lookup(key, &mut values)?;
        let stride = (self.spec.value_size as usize).next_multiple_of(8);
        Ok(values
            .chunks_exact(stride)
            .map(|c| u64::from_ne_bytes(c[..8].try_into().unwrap_or_default()))
            .sum())
    }
}

/// The keys of a map, each as the map's key size in bytes.
pub struct Keys<'m, 'a> {
    map: &'m Map<'a>,
    last: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_, '_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0u8; self.map.key_size()];
        // SAFETY: `last` came from this map, so it is its key size; `next`
        // was just made that size.
        let r = unsafe { bpf::map_next_key(self.map.fd, self.last.as_deref(), &mut next) };
        match r {
            Ok(()) => {
                self.last = Some(next.clone());
                Some(Ok(next))
            }
            Err(e) => {
                self.done = true;
                (e.raw_os_error() != Some(libc::ENOENT)).then(|| {
                    Err(MapError::Kernel {
                        map: self.map.spec.name.clone(),
                        op: "list the keys of",
                        error: e,
                    })
                })
            }
        }
    }
}

/// An object's maps, created; its programs are loaded from here, each
/// when asked for.
pub struct Loaded {
    /// What was parsed: programs, maps, license.
    pub spec: ObjectSpec,
    maps: Vec<Fd>,
    possible_cpus: u32,
    license: CString,
    kern_version: u32,
    /// The object's BTF in the kernel, when it has one the kernel took.
    btf: Option<Fd>,
    /// What loading changed or left out, one line each.
    notes: Vec<String>,
    /// The BTF CO-RE relocations are resolved against: the running
    /// kernel's by default.
    target_btf: std::path::PathBuf,
    /// Each CO-RE relocation applied so far, one line each.
    core_applied: std::sync::Mutex<Vec<String>>,
    /// The target BTF's bytes, read on the first program with CO-RE.
    target: std::sync::OnceLock<Result<Vec<u8>, String>>,
}

/// Where the running kernel publishes its BTF (CONFIG_DEBUG_INFO_BTF).
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Map types whose kernel side refuses key/value BTF (their values are fds
/// or they have no key): created without it, as libbpf does.
fn takes_btf(map_type: u32) -> bool {
    // PERF_EVENT_ARRAY, STACK_TRACE, CGROUP_ARRAY, ARRAY_OF_MAPS,
    // HASH_OF_MAPS, DEVMAP, SOCKMAP, CPUMAP, XSKMAP, SOCKHASH, QUEUE,
    // STACK, DEVMAP_HASH, RINGBUF, USER_RINGBUF.
    !matches!(
        map_type,
        4 | 7 | 8 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 22 | 23 | 25 | 27 | 31
    )
}

impl Loaded {
    /// Creates every map. A perf event array declared with 0 entries gets
    /// one per possible CPU, the index `BPF_F_CURRENT_CPU` writes to.
    pub fn create_maps(spec: ObjectSpec, possible_cpus: u32) -> Result<Loaded> {
        let (btf, mut notes) = match &spec.btf {
            Some(blob) => {
                let loaded = btf::load(blob);
                (loaded.fd, loaded.notes)
            }
            None => (None, Vec::new()),
        };
        let mut maps = Vec::with_capacity(spec.maps.len());
        for m in &spec.maps {
            let fd = create_map(m, possible_cpus, btf.as_ref(), &mut notes)?;
            fill_map(m, fd.as_fd())?;
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
            btf,
            notes,
            target_btf: KERNEL_BTF.into(),
            core_applied: std::sync::Mutex::new(Vec::new()),
            target: std::sync::OnceLock::new(),
        })
    }

    /// What loading changed or left out (BTF rewritten for an older
    /// kernel, or not loaded, and why), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The bytes of global variable `name` as the programs see them now
    /// (read from its section's map).
    pub fn global(&self, name: &str) -> Result<Vec<u8>, MapError> {
        let var = self
            .spec
            .global(name)
            .ok_or_else(|| MapError::NoSuchMap(name.to_string()))?;
        let map = &self.spec.maps[var.map_index];
        let mut value = vec![0u8; map.value_size as usize];
        self.map(&map.name)?
            .lookup(&0u32.to_ne_bytes(), &mut value)?;
        // In bounds: parse checked offset + size <= the section's size.
        let (start, end) = (var.offset as usize, (var.offset + var.size) as usize);
        Ok(value[start..end].to_vec())
    }

    /// Resolves CO-RE relocations against the BTF in `path` instead of
    /// the running kernel's (another kernel's, or a test's).
    pub fn set_target_btf(&mut self, path: &std::path::Path) {
        self.target_btf = path.to_path_buf();
        self.target = std::sync::OnceLock::new();
    }

    /// Each CO-RE relocation applied so far, one line each:
    /// `parent_tgid insn 1: byte_off task_struct.real_parent = 2480 (object: 8)`.
    pub fn core_applied(&self) -> Vec<String> {
        self.core_applied
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// Whether the object's BTF is in the kernel.
    pub fn has_btf(&self) -> bool {
        self.btf.is_some()
    }

    /// A typed handle on the map called `name`.
    pub fn map(&self, name: &str) -> Result<Map<'_>, MapError> {
        let index = self
            .spec
            .map_index(name)
            .ok_or_else(|| MapError::NoSuchMap(name.to_string()))?;
        Ok(Map {
            spec: &self.spec.maps[index],
            fd: self.maps[index].as_fd(),
            possible_cpus: self.possible_cpus,
        })
    }

    /// Slot 0 of a per-CPU array of u64 counters, summed over every
    /// possible CPU.
    pub fn sum_per_cpu(&self, map: &str) -> Result<u64, MapError> {
        self.map(map)?.sum_per_cpu_u64(&0u32.to_ne_bytes())
    }

    /// The spec of the program called `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.spec.program(name)
    }

    /// Loads the program called `name`.
    pub fn load(&self, name: &str) -> Result<Program, LoadError> {
        let spec = self
            .program(name)
            .ok_or_else(|| LoadError::NoSuchProgram(name.to_string()))?;
        self.load_spec(spec)
    }

    /// Loads one program. Loading without a log first is cheaper; only on
    /// failure is it loaded again with a log, grown until the log fits.
    pub fn load_spec(&self, spec: &ProgramSpec) -> Result<Program, LoadError> {
        let fds: Vec<i32> = self.maps.iter().map(|m| m.as_raw_fd()).collect();
        let mut insns = spec
            .insns_with_map_fds(&fds)
            .ok_or_else(|| LoadError::ForeignSpec(spec.name.clone()))?;
        self.apply_core(spec, &mut insns)?;
        let btf = self
            .btf
            .as_ref()
            .filter(|_| !spec.func_info.is_empty())
            .map(|fd| bpf::ProgBtf {
                fd: fd.as_fd(),
                func_info: &spec.func_info,
                line_info: &spec.line_info,
            });
        let mut load = bpf::ProgLoad {
            name: &spec.name,
            prog_type: match spec.kind {
                ProgramKind::Kprobe { .. } | ProgramKind::Kretprobe { .. } => {
                    bpf::BPF_PROG_TYPE_KPROBE
                }
                ProgramKind::Tracepoint { .. } => bpf::BPF_PROG_TYPE_TRACEPOINT,
                ProgramKind::RawTracepoint { .. } => bpf::BPF_PROG_TYPE_RAW_TRACEPOINT,
            },
            insns: &insns,
            license: &self.license,
            kern_version: self.kern_version,
            btf,
        };
        let loaded = |fd| Program {
            name: spec.name.clone(),
            kind: spec.kind.clone(),
            fd,
        };
        let first = match bpf::prog_load(&load, None) {
            Ok(fd) => return Ok(loaded(fd)),
            Err(e) => e,
        };
        if first.raw_os_error() == Some(libc::EPERM) {
            return Err(LoadError::NotPermitted {
                program: spec.name.clone(),
            });
        }
        if btf.is_some() && first.raw_os_error() == Some(libc::EINVAL) {
            // A kernel that refuses the function or line info (an older
            // verifier's stricter checks: EINVAL, where a rejection of the
            // code is EACCES) loads the program without it.
            load.btf = None;
            if let Ok(fd) = bpf::prog_load(&load, None) {
                return Ok(loaded(fd));
            }
            // Rejected anyway: the log with the source lines.
            load.btf = btf;
        }
        for size in LOG_SIZES {
            let mut log = vec![0u8; size];
            match bpf::prog_load(&load, Some(&mut log)) {
                // Rejected once, accepted now: a flaky kernel, but loaded.
                Ok(fd) => return Ok(loaded(fd)),
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => continue,
                Err(error) => {
                    return Err(LoadError::Rejected {
                        program: spec.name.clone(),
                        error,
                        log: log_tail(&log),
                    });
                }
            }
        }
        Err(LoadError::Rejected {
            program: spec.name.clone(),
            error: first,
            log: String::new(),
        })
    }
}

/// Creates one map, with its key and value types when the object's BTF is
/// loaded and the map type takes them; a kernel that refuses them gets
/// the map without (said in `notes`). A perf event array declared with 0
/// entries gets one per possible CPU, the index `BPF_F_CURRENT_CPU`
/// writes to.
fn create_map(
    m: &MapSpec,
    possible_cpus: u32,
    btf: Option<&Fd>,
    notes: &mut Vec<String>,
) -> Result<Fd> {
    let max_entries = if m.map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.max_entries == 0 {
        possible_cpus
    } else {
        m.max_entries
    };
    let typed = btf
        .filter(|_| takes_btf(m.map_type) && m.btf_value_type_id != 0)
        .map(|fd| bpf::MapBtf {
            fd: fd.as_fd(),
            key_type_id: m.btf_key_type_id,
            value_type_id: m.btf_value_type_id,
        });
    let mut def = bpf::MapDef {
        name: &m.name,
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries,
        flags: m.flags,
        btf: typed,
    };
    match bpf::map_create(&def) {
        Ok(fd) => return Ok(fd),
        Err(e) if typed.is_some() => {
            notes.push(format!(
                "map {}: created without its BTF types (the kernel refused them: {e})",
                m.name
            ));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("could not create BPF map {}", m.name));
        }
    }
    def.btf = None;
    bpf::map_create(&def).with_context(|| format!("could not create BPF map {}", m.name))
}

/// Global data: the value's first contents written, and `.rodata` frozen
/// (user space cannot change it after; the verifier then treats its
/// values as constants).
fn fill_map(m: &MapSpec, fd: BorrowedFd) -> Result<()> {
    if let Some(initial) = &m.initial {
        let key = 0u32.to_ne_bytes();
        if initial.len() != m.value_size as usize {
            return Err(anyhow!(
                "map {}: initial contents of the wrong size",
                m.name
            ));
        }
        // SAFETY: the key is 4 bytes (a global data map's key size) and
        // the value exactly the map's value size, just checked.
        unsafe { bpf::map_update(fd, &key, initial) }
            .with_context(|| format!("could not write the initial values of {}", m.name))?;
    }
    if m.freeze {
        bpf::map_freeze(fd).with_context(|| format!("could not freeze map {}", m.name))?;
    }
    Ok(())
}

impl Loaded {
    /// Patches the program's CO-RE relocations for the running kernel
    /// (see `core`), noting each in `core_applied`.
    fn apply_core(
        &self,
        spec: &ProgramSpec,
        insns: &mut [crate::obj::Insn],
    ) -> Result<(), LoadError> {
        if spec.core.is_empty() {
            return Ok(());
        }
        let refused = |why: String| LoadError::Core {
            program: spec.name.clone(),
            why,
        };
        let target = self
            .target
            .get_or_init(|| core::read_target(&self.target_btf))
            .as_ref()
            .map_err(|e| refused(e.clone()))?;
        let lines = core::apply(spec, self.spec.btf.as_deref(), target, insns).map_err(refused)?;
        if let Ok(mut applied) = self.core_applied.lock() {
            applied.extend(lines);
        }
        Ok(())
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

/// (major, minor, patch) of the running kernel, from uname.
pub fn kernel_release() -> (u32, u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// True on Linux `major.minor` or newer.
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let (a, b, _) = kernel_release();
    (a, b) >= (major, minor)
}

/// LINUX_VERSION_CODE of the running kernel, from uname. Kernels before 5.0
/// refuse a kprobe program whose kern_version does not match.
fn kernel_version_code() -> u32 {
    let (a, b, c) = kernel_release();
    (a << 16) | (b.min(255) << 8) | c.min(255)
}
