#![deny(missing_docs)]
//! `probe`: a monitor of read(2) and write(2) built on eBPF, and the eBPF
//! loader it is built on, written from scratch (no libbpf, no aya): a
//! library for programs that load a BPF object of their own, and a map for
//! whoever wants to learn how loading works. The layers, from the bytes of
//! the object up:
//!
//! - [`obj`]: the BPF ELF parsed and linked into program and map specs;
//!   pure (no system call), bounded, fuzzed;
//! - [`sys`]: thin typed wrappers over bpf(2), perf_event_open(2), mmap,
//!   epoll and eventfd, each able to tell itself (`--explain`);
//! - [`loader`]: maps created, map fds patched into the programs, programs
//!   loaded, with typed errors and map handles that check every buffer;
//! - [`attach`]: one module per attach method, typed failures, `auto`;
//! - [`ring`]: per-CPU perf rings and the thread that drains them, merged
//!   in time order;
//! - [`queue`]: a memory-budgeted buffer from one producer to consumers
//!   that each go at their own pace;
//! - [`identity`], [`cpus`]: the process as the kernel sees it, CPU lists.
//!
//! `examples/exec_count.rs` is an embedder's whole program. The `probe`
//! binary's own parts are in [`app`], which is public only for the tests.

pub mod attach;
pub mod cpus;
pub mod identity;
pub mod loader;
pub mod obj;
pub mod queue;
pub mod ring;
pub mod sys;

/// The `probe` binary itself: its CLI, the monitor and its outputs, the
/// probe's event layout, `inspect` and `load`. Not a library API: public
/// only so that the tests can reach it.
#[doc(hidden)]
pub mod app {
    pub mod abi;
    pub mod batch;
    pub mod cgroup;
    pub mod cli;
    pub mod compat;
    pub mod inflight;
    pub mod inspect;
    pub mod load;
    pub mod loss;
    pub mod metrics;
    pub mod monitor;
    pub mod output;
    pub mod pid_file;
    pub mod privileges;
    pub mod report;
    pub mod signals;
    pub mod target;
    pub mod top;

    /// The probe compiled by build.rs from bpf/probe.c.
    pub const PROBE_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/probe.bpf.o"));
    /// The same with `-p` matched in the monitor's pid namespace (Linux
    /// 5.7+), for a monitor that is not in the initial one.
    pub const PROBE_PIDNS_OBJECT: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/probe_pidns.bpf.o"));
}
