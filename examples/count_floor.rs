//! The benchmark's floor: loads bpf/bench/count_floor.c with the probe's own
//! loader, attaches it to the read and write tracepoints, and counts calls
//! by one comm in the kernel, sending nothing to user space. Stops on
//! SIGINT/SIGTERM and prints `count=N`.
//!
//! cargo run --release --example count_floor -- COMM

use anyhow::{Context, Result, bail};
use nix::sys::signal::{SigSet, Signal};
use probe::attach::{self, Method};
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
    let Some(comm) = std::env::args().nth(1) else {
        bail!("usage: count_floor COMM");
    };
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block()?;
    loader::raise_memlock();
    let possible = cpus::possible_count()?;
    let loaded = Loaded::create_maps(obj::parse(FLOOR_OBJECT)?, possible)?;
    let mut filter = [0u8; 16];
    let n = comm.len().min(15);
    filter[..n].copy_from_slice(&comm.as_bytes()[..n]);
    loaded
        .map("floor_filter")?
        .update(&0u32.to_ne_bytes(), &filter)
        .context("writing the filter")?;
    let attachment = attach::attach(&loaded, Some(Method::Tracepoint))?;
    eprintln!("count_floor: attached via {}", attachment.method);
    stop.wait()?;
    attachment.detach();
    let count = loaded.sum_per_cpu("floor_counts")?;
    println!("count={count}");
    Ok(())
}
