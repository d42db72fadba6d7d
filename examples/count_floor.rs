//! The benchmark's floor: loads bpf/bench/count_floor.c with the probe's own
//! loader, attaches it to the read and write tracepoints, and counts calls
//! by one comm in the kernel, sending nothing to user space. Stops on
//! SIGINT/SIGTERM and prints `count=N`. With `--exits`, the floor of two
//! hooks per call (`--exit`'s shape): the same on the sys_exit tracepoints
//! too, and `exits=N` after. With `--clock` too, each hook also reads the
//! clock (the least a per-call latency costs). With `--raw`, the same on
//! the raw tracepoints `sys_enter`/`sys_exit` instead. After the counts it
//! prints the runs the kernel skipped (its recursion protection):
//! `misses=N` for the entry hooks, `exit_misses=N` with `--exits` (`-` where
//! the kernel does not count them).
//!
//! With `--lookups`, a second thread makes `bpf(BPF_MAP_LOOKUP_ELEM)` calls
//! on the count map in a loop while attached, and `lookups=N` says how
//! many: user space's map calls, which the kernel brackets with its
//! per-CPU "a BPF program is running" flag, side by side with the load
//! (pin both to one CPU with taskset to see what a preempted one does).
//!
//! cargo run --release --example count_floor -- [--raw] [--exits [--clock]] [--lookups] COMM

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{SigSet, Signal};
use probe::attach::{self, AttachOptions, Method};
use probe::loader::{self, Loaded};
use probe::{cpus, obj};

const FLOOR_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/count_floor.bpf.o"));

fn main() {
    if let Err(e) = run() {
        eprintln!("count_floor: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: count_floor [--raw] [--exits [--clock]] [--lookups] COMM";
    let Some((comm, flags)) = args.split_last() else {
        bail!(usage)
    };
    let has = |f: &str| flags.iter().any(|a| a == f);
    let (raw, exits, clock) = (has("--raw"), has("--exits"), has("--clock"));
    let lookups = has("--lookups");
    if flags
        .iter()
        .any(|f| !["--raw", "--exits", "--clock", "--lookups"].contains(&f.as_str()))
        || (clock && !exits)
    {
        bail!(usage)
    }
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block()?;
    loader::raise_memlock();
    let possible = cpus::possible_count()?;
    let loaded = Loaded::create_maps(obj::parse(FLOOR_OBJECT)?, possible)?;
    // struct filter: comm[16], then the clock switch (a u64).
    let mut filter = [0u8; 24];
    let n = comm.len().min(15);
    filter[..n].copy_from_slice(&comm.as_bytes()[..n]);
    filter[16..].copy_from_slice(&u64::from(clock).to_ne_bytes());
    loaded
        .map("floor_filter")?
        .update(&0u32.to_ne_bytes(), &filter)
        .context("writing the filter")?;
    let entries_only = |p: &obj::ProgramSpec| !attach::is_return_hook(&p.kind);
    let options = AttachOptions {
        only: (!exits).then_some(&entries_only as &dyn Fn(&obj::ProgramSpec) -> bool),
        ..AttachOptions::default()
    };
    let method = if raw {
        Method::RawTracepoint
    } else {
        Method::Tracepoint
    };
    let attachment = attach::attach_with_options(&loaded, Some(method), &options)?;
    eprintln!("count_floor: attached via {}", attachment.method);
    let done = AtomicBool::new(false);
    let looked_up = thread::scope(|s| -> Result<Option<u64>> {
        // Started after the signals were blocked: it inherits the mask.
        let caller = lookups.then(|| s.spawn(|| lookup_loop(&loaded, &done)));
        let waited = stop.wait();
        done.store(true, Ordering::Relaxed);
        let made = caller
            .map(|c| c.join().map_err(|_| anyhow!("the lookup thread failed"))?)
            .transpose()?;
        waited?;
        Ok(made)
    })?;
    let detached = attachment.detach();
    let counts = loaded.map("floor_counts")?;
    println!("count={}", counts.sum_per_cpu_u64(&0u32.to_ne_bytes())?);
    if exits {
        println!("exits={}", counts.sum_per_cpu_u64(&1u32.to_ne_bytes())?);
    }
    // Runs the kernel skipped (its recursion protection), entry and
    // return hooks apart: `-` where this kernel does not count them.
    let said = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    println!("misses={}", said(detached.recursion_misses));
    if exits {
        println!("exit_misses={}", said(detached.return_recursion_misses));
    }
    if let Some(n) = looked_up {
        println!("lookups={n}");
    }
    Ok(())
}

/// `bpf(BPF_MAP_LOOKUP_ELEM)` on the count map until `done`; how many.
fn lookup_loop(loaded: &Loaded, done: &AtomicBool) -> Result<u64> {
    let counts = loaded.map("floor_counts")?;
    let mut value = vec![0u8; counts.lookup_size()];
    let mut n = 0;
    while !done.load(Ordering::Relaxed) {
        counts.lookup(&0u32.to_ne_bytes(), &mut value)?;
        n += 1;
    }
    Ok(n)
}
