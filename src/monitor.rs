//! One run of the monitor: load, open the rings, attach, wait for a signal
//! (or the duration, or stdout closing), then detach, drain and count.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, select, tick};

use crate::abi::ProbeConfig;
use crate::attach::{self, Attachment};
use crate::batch::{Batcher, ReaderStats};
use crate::cli::Options;
use crate::loader::Loaded;
use crate::output::{self, ConsoleFormat, LineWriter, Outputs, WriterReport};
use crate::ring::RingSet;
use crate::sys::bpf;
use crate::{cpus, obj, signals};

/// The longest a quiet system's events wait in a ring before being read.
pub const MAX_LATENCY: Duration = Duration::from_millis(100);
/// Batches queued between the reader and the output thread.
const QUEUED_BATCHES: usize = 16;
/// How long the output may take to finish after the rings are drained.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Summary {
    /// Events that reached the outputs.
    pub received: u64,
    /// Events the kernel could not put in a ring (its drop counter, which
    /// includes every sample PERF_RECORD_LOST reports).
    pub kernel_dropped: u64,
    pub reader: ReaderStats,
    /// Events read from the rings that the output side never took.
    pub output_dropped: u64,
    pub console: Option<WriterReport>,
    pub log: Option<WriterReport>,
    pub output_stuck: bool,
}

impl Summary {
    pub fn lost(&self) -> u64 {
        self.kernel_dropped + self.reader.malformed + self.output_dropped
    }
}

fn open_log(path: &std::path::Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| {
            format!(
                "cannot open log {} (it must be a regular file, not a symlink; \
                 use --log PATH or --no-log)",
                path.display()
            )
        })
}

fn log_header(o: &Options, attachment: &Attachment) -> String {
    let realtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let monotonic = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default();
    let offset = realtime.saturating_sub(monotonic).as_nanos();
    format!(
        "# probe {} started pid={} attach={} unix_time={} ts_to_unix_ns=+{} pid_filter={} comm_filter={}\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        attachment.method,
        realtime.as_secs(),
        offset,
        o.pid.map_or("none".into(), |p| p.to_string()),
        o.comm.as_ref().map_or("none".into(), |c| {
            let mut s = Vec::new();
            output::format::push_escaped(&mut s, c, false);
            String::from_utf8_lossy(&s).into_owned()
        }),
    )
}

fn stdout_file() -> Result<File> {
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot use stdout")?;
    Ok(File::from(fd))
}

fn sum_per_cpu(loaded: &Loaded, map: &str, possible: u32) -> Result<u64> {
    let mut values = vec![0u8; possible as usize * 8];
    bpf::map_lookup(loaded.map(map)?, &0u32.to_ne_bytes(), &mut values)
        .with_context(|| format!("cannot read BPF map {map}"))?;
    Ok(values
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
        .sum())
}

pub fn run(o: &Options) -> Result<Summary> {
    let say = |line: &str| eprintln!("probe: {line}");
    let debug = |line: &str| {
        if o.verbose >= 2 {
            eprintln!("probe: [loader] {line}")
        }
    };

    let spec = obj::parse(crate::PROBE_OBJECT).context("the embedded BPF object is broken")?;
    debug(&format!(
        "object: {} programs, {} maps, license {}",
        spec.programs.len(),
        spec.maps.len(),
        spec.license
    ));
    let log_file = o.log.as_deref().map(open_log).transpose()?;

    let possible = cpus::possible_count()?;
    let online = cpus::online()?;
    let loaded = Loaded::create_maps(spec, possible)?;
    debug(&format!(
        "maps created; perf event array sized for {possible} CPUs"
    ));

    let config = ProbeConfig {
        verbose: o.verbose,
        filter_tgid: o.pid,
        self_tgid: std::process::id(),
        filter_comm: o.comm.clone(),
    };
    bpf::map_update(
        loaded.map("config_map")?,
        &0u32.to_ne_bytes(),
        &config.to_bytes(),
    )
    .context("cannot write the probe's configuration map")?;

    let rings = RingSet::open(&online, o.pages)
        .with_context(|| format!("cannot open a perf ring of {} pages per CPU", o.pages))?;
    let events_map = loaded.map("events")?;
    for ring in rings.rings() {
        let fd = ring.as_fd();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd) as u32;
        bpf::map_update(events_map, &ring.cpu().to_ne_bytes(), &raw.to_ne_bytes())
            .with_context(|| format!("cannot register the ring of CPU {}", ring.cpu()))?;
    }
    debug(&format!(
        "{} rings of {} KiB, reader woken at half full or every {} ms",
        online.len(),
        rings.rings()[0].data_size() >> 10,
        MAX_LATENCY.as_millis()
    ));

    // Reader → output, and emptied batches back.
    let (batch_tx, batch_rx) = bounded(QUEUED_BATCHES);
    let (spare_tx, spare_rx) = bounded(QUEUED_BATCHES + 2);
    let console_closed = Arc::new(AtomicBool::new(false));
    let processed = Arc::new(AtomicU64::new(0));

    let console = if o.quiet {
        None
    } else {
        let format = if o.json {
            ConsoleFormat::Json
        } else {
            ConsoleFormat::Hello
        };
        Some((format, LineWriter::new("stdout", stdout_file()?)))
    };
    let log_name = o.log.as_ref().map(|p| p.display().to_string());
    let outputs = Outputs {
        console,
        log: log_file.map(|f| LineWriter::new(log_name.clone().unwrap_or_default(), f)),
        verbose: o.verbose > 0,
    };

    let stop = rings.stop_handle();
    let reader = thread::Builder::new()
        .name("ring-reader".into())
        .spawn(move || {
            let mut batcher = Batcher::new(batch_tx, spare_rx);
            rings.run(&mut batcher, MAX_LATENCY);
            batcher.stats
        })
        .context("cannot start the reader thread")?;
    let (done_tx, done_rx) = bounded(1);
    {
        let closed = console_closed.clone();
        let processed = processed.clone();
        thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                let report = output::run(outputs, batch_rx, spare_tx, closed, processed);
                let _ = done_tx.send(report);
            })
            .context("cannot start the output thread")?;
    }

    let attachment = attach::attach(&loaded, o.attach)?;
    for reason in &attachment.fallbacks {
        say(&format!("not attached via {reason}"));
    }
    for note in &attachment.notes {
        say(note);
    }
    say(&format!(
        "attached via {} to read and write on {} CPUs",
        attachment.method,
        online.len()
    ));
    if let Some(log) = &o.log {
        let header = log_header(o, &attachment);
        if let Err(e) = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(log)
            .and_then(|mut f| f.write_all(header.as_bytes()))
        {
            say(&format!("cannot write the log header: {e}"));
        }
    }

    let deadline = o.duration.map(|d| Instant::now() + d);
    loop {
        if signals::wait(Duration::from_millis(50)).is_some()
            || console_closed.load(Ordering::Relaxed)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
    }

    // Detach first, so that the last drain sees every event there will be.
    attachment.detach();
    stop.stop();
    let reader_stats = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread failed"))?;

    // The output may be stuck on a stdout nobody reads: wait a little,
    // give up on a second signal, and count what it never took as lost.
    let grace = tick(Duration::from_millis(20));
    let give_up = Instant::now() + OUTPUT_GRACE;
    let report = loop {
        select! {
            recv(done_rx) -> r => break r.ok(),
            recv(grace) -> _ => {
                if Instant::now() >= give_up || signals::wait(Duration::ZERO).is_some() {
                    break None;
                }
            }
        }
    };
    let processed = processed.load(Ordering::Relaxed);
    let kernel_dropped = sum_per_cpu(&loaded, "drops", possible)?;
    let (console, log, output_stuck) = match report {
        Some(r) => (r.console, r.log, false),
        None => (None, None, true),
    };
    Ok(Summary {
        received: processed,
        kernel_dropped,
        output_dropped: reader_stats.decoded - processed,
        reader: reader_stats,
        console,
        log,
        output_stuck,
    })
}
