//! `probe`: a monitor of read(2) and write(2) built on eBPF, with its own
//! loader. The layers, from the bytes of the BPF object up:
//!
//! - [`obj`]: pure parsing and linking of the BPF ELF (no syscalls);
//! - [`sys`]: thin typed wrappers over bpf(2) and perf_event_open(2);
//! - [`loader`]: maps created, map fds patched in, programs loaded;
//! - [`attach`]: one module per attach method;
//! - [`ring`]: per-CPU perf rings and the thread that drains them, merged
//!   in time order (by a timestamp the sink reads: the ring code knows no
//!   event format);
//! - [`queue`]: the memory-budgeted buffer between the reader and the
//!   outputs, each output taking from it at its own pace;
//! - [`abi`], [`batch`], [`output`]: what the events mean and where they go;
//! - [`monitor`]: the run itself, wiring all of the above.

pub mod abi;
pub mod attach;
pub mod batch;
pub mod cgroup;
pub mod cli;
pub mod cpus;
pub mod identity;
pub mod inspect;
pub mod load;
pub mod loader;
pub mod monitor;
pub mod obj;
pub mod output;
pub mod privileges;
pub mod queue;
pub mod ring;
pub mod signals;
pub mod sys;

/// The probe compiled by build.rs from bpf/probe.c.
pub const PROBE_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o"));
/// The same with `-p` matched in the monitor's pid namespace (Linux 5.7+),
/// for a monitor that is not in the initial one.
pub const PROBE_PIDNS_OBJECT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/probe_pidns.bpf.o"));
