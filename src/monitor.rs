//! One run of the monitor: load, open the rings, attach, wait for a signal
//! (or the duration, or stdout closing), then detach, drain and count.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{bounded, select, tick};

use crate::abi::ProbeConfig;
use crate::attach;
use crate::batch::{Batcher, ReaderStats};
use crate::cli::Options;
use crate::loader::Loaded;
use crate::output::{
    self, ConsoleFormat, LineWriter, Outputs, Progress, WriterReport, format, log_file,
};
use crate::ring::RingSet;
use crate::sys::bpf;
use crate::{cpus, obj, privileges, signals};

/// The longest a quiet system's events wait in a ring before being read.
pub const MAX_LATENCY: Duration = Duration::from_millis(100);
/// Batches queued between the reader and the output thread.
const QUEUED_BATCHES: usize = 16;
/// How long the output may take to finish after the rings are drained.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// How long it may take once a second signal told it to hurry: it no longer
/// waits on stdout, but may still have a few MiB of log to write.
const HURRIED_GRACE: Duration = Duration::from_millis(400);

#[derive(Debug, Default)]
pub struct Summary {
    /// False when SIGINT, SIGTERM or SIGHUP came during start-up: the
    /// monitor stopped before attaching anything, and all counts are 0.
    pub attached: bool,
    /// Events read from the rings and handed to the outputs. An output
    /// that could not write some of their lines counts them in its report
    /// (`failed`), and the report says so: `lines == written + failed`.
    pub received: u64,
    /// Events the kernel could not put in a ring (its drop counter, which
    /// includes every sample PERF_RECORD_LOST reports).
    pub kernel_dropped: u64,
    pub reader: ReaderStats,
    /// Events read from the rings that the output side never took.
    pub output_dropped: u64,
    pub console: Option<WriterReport>,
    pub log: Option<WriterReport>,
    /// The output thread was still blocked in a write at exit (to a socket
    /// that does not read, say): the reports count every line not known to
    /// be written as failed, though part of the last one may have gone out.
    pub output_stuck: bool,
    /// The capabilities the monitor kept after attaching.
    pub capabilities_kept: u64,
}

impl Summary {
    pub fn lost(&self) -> u64 {
        self.kernel_dropped + self.reader.malformed + self.output_dropped
    }
}

fn stdout_file() -> Result<File> {
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot use stdout")?;
    Ok(File::from(fd))
}

/// True when the reader at the other end of a pipe or socket on stdout has
/// gone away (or a terminal hung up), found without writing anything: a
/// `probe | head -5` whose head has exited must stop even if no event
/// comes to fail a write.
fn stdout_gone() -> bool {
    let mut pfd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd; timeout 0.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// A writer's report built from its live counts, for an output thread
/// that never returned: of the `received` events, each line not known
/// written counts as not written.
fn stuck_report(name: &str, progress: &Progress, received: u64) -> WriterReport {
    let written = progress.written.load(Ordering::Relaxed);
    WriterReport {
        name: name.to_string(),
        lines: received,
        written,
        failed: received.saturating_sub(written),
        first_error: Some(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "still blocked in a write at exit",
        )),
        closed: false,
    }
}

pub fn run(o: &Options) -> Result<Summary> {
    let say = output::say;
    let debug = |line: &str| {
        if o.verbose >= 2 {
            say(&format!("[loader] {line}"))
        }
    };
    // A signal during start-up stops it before anything is attached.
    let interrupted = || {
        let sig = signals::wait(Duration::ZERO);
        if let Some(sig) = sig {
            say(&format!(
                "{sig} before attaching: stopped, nothing was monitored"
            ));
        }
        sig.is_some()
    };
    let not_attached = Summary::default;
    if interrupted() {
        return Ok(not_attached());
    }

    let spec = obj::parse(crate::PROBE_OBJECT).context("the embedded BPF object is broken")?;
    debug(&format!(
        "object: {} programs, {} maps, license {}",
        spec.programs.len(),
        spec.maps.len(),
        spec.license
    ));
    let log_file = o.log.as_deref().map(log_file::open).transpose()?;
    if interrupted() {
        return Ok(not_attached());
    }

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
    if interrupted() {
        return Ok(not_attached());
    }

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
    let console_file = if o.quiet { None } else { Some(stdout_file()?) };
    if interrupted() {
        return Ok(not_attached());
    }

    // From here on a signal is taken by the main loop, after the threads
    // are running, and ends the run the usual way.
    let attachment = attach::attach(&loaded, o.attach)?;

    // Attached: the rest of the run needs almost no privilege. Dropped
    // before the threads start, since capabilities are per thread.
    let kprobe_events = attachment.kprobe_events();
    let shutdown_works = || {
        loaded.sum_per_cpu("drops").is_ok()
            && kprobe_events.as_ref().is_none_or(|path| {
                // Opening for append is the permission check a legacy
                // kprobe's removal makes, with no effect of its own.
                OpenOptions::new().append(true).open(path).is_ok()
            })
    };
    let capabilities_kept = privileges::drop_capabilities(&shutdown_works)?;
    debug(&format!(
        "capabilities kept: {}; no_new_privs set",
        privileges::cap_names(capabilities_kept)
    ));

    if let Some(mut file) = log_file.as_ref() {
        let header = log_file::header(o, attachment.method);
        if let Err(e) = file.write_all(header.as_bytes()) {
            say(&format!("cannot write the log header: {e}"));
        }
    }

    // Reader → output, and emptied batches back.
    let (batch_tx, batch_rx) = bounded(QUEUED_BATCHES);
    let (spare_tx, spare_rx) = bounded(QUEUED_BATCHES + 2);
    let console_closed = Arc::new(AtomicBool::new(false));
    let processed = Arc::new(AtomicU64::new(0));
    let hurry = Arc::new(AtomicBool::new(false));

    let console = console_file.map(|file| {
        let format = if o.json {
            ConsoleFormat::Json
        } else {
            ConsoleFormat::Hello
        };
        let mut w = LineWriter::new("stdout", file);
        w.set_hurry(hurry.clone());
        (format, w)
    });
    let log_name = o.log.as_deref().map(format::path);
    let log = log_file.map(|f| {
        let mut w = LineWriter::new(log_name.clone().unwrap_or_default(), f);
        w.set_hurry(hurry.clone());
        w
    });
    let console_progress = console.as_ref().map(|(_, w)| w.progress());
    let log_progress = log.as_ref().map(|w| w.progress());
    let outputs = Outputs {
        console,
        log,
        verbose: o.verbose > 0,
    };

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
    let stop = rings.stop_handle();
    let reader = thread::Builder::new()
        .name("ring-reader".into())
        .spawn(move || {
            let mut batcher = Batcher::new(batch_tx, spare_rx);
            rings.run(&mut batcher, MAX_LATENCY);
            batcher.stats
        })
        .context("cannot start the reader thread")?;

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

    let watch_stdout = console_progress.is_some();
    let deadline = o.duration.map(|d| Instant::now() + d);
    loop {
        if signals::wait(Duration::from_millis(50)).is_some()
            || console_closed.load(Ordering::Relaxed)
            || (watch_stdout && stdout_gone())
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
        .map_err(|_| anyhow!("the reader thread failed"))?;

    // The output finishes in bounded time (a reader of stdout that makes
    // no room costs it at most PATIENCE). A second signal tells it to stop
    // waiting on stdout at all; if it is still blocked in a write after
    // that (a socket that does not read), the run ends without it and
    // its unwritten lines are counted from its live counts.
    let grace = tick(Duration::from_millis(10));
    let mut give_up = Instant::now() + OUTPUT_GRACE;
    let report = loop {
        select! {
            recv(done_rx) -> r => break r.ok(),
            recv(grace) -> _ => {
                if !hurry.load(Ordering::Relaxed) && signals::wait(Duration::ZERO).is_some() {
                    hurry.store(true, Ordering::Relaxed);
                    give_up = give_up.min(Instant::now() + HURRIED_GRACE);
                }
                if Instant::now() >= give_up {
                    break None;
                }
            }
        }
    };
    let processed = processed.load(Ordering::Relaxed);
    let kernel_dropped = loaded.sum_per_cpu("drops")?;
    let (console, log, output_stuck) = match report {
        Some(r) => (r.console, r.log, false),
        None => (
            console_progress.map(|p| stuck_report("stdout", &p, processed)),
            log_progress.map(|p| stuck_report(&log_name.unwrap_or_default(), &p, processed)),
            true,
        ),
    };
    Ok(Summary {
        attached: true,
        received: processed,
        kernel_dropped,
        output_dropped: reader_stats.decoded - processed,
        reader: reader_stats,
        console,
        log,
        output_stuck,
        capabilities_kept,
    })
}
