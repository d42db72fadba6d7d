//! One run of the monitor, in three steps a reader can follow:
//!
//! 1. `start`: load, open the rings, attach, drop privileges, start the
//!    threads (the ring reader, and one per output);
//! 2. `wait`: for a signal, the duration, the reader of stdout going
//!    away, or the process of `-p` exiting, saying meanwhile when stdout
//!    is too slow to show everything;
//! 3. `stop`: detach, drain the rings, let the outputs write what is
//!    buffered (for a bounded time), and count.
//!
//! The threads: the reader drains the rings in time order into a queue
//! with a memory budget (queue.rs); each output takes from it at its own
//! pace (output/). Files get every event; a stream that falls behind is
//! skipped, never waited for.

use std::cell::Cell;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{Receiver, Sender, bounded};

use crate::app::abi::{Event, PidNs, ProbeConfig, Syscall, TargetIdentity};
use crate::app::batch::{Batcher, ReaderStats};
use crate::app::cli::{MAP_RING_SLOTS_PER_PAGE, Options, RingKind};
use crate::app::inflight::{self, ExitCounts};
use crate::app::loss::{Cause, Losses};
use crate::app::output::{
    self, Control, Format, LineWriter, Output, OutputReport, Progress, format, log_file,
};
use crate::app::pid_file::PidFile;
use crate::app::target::Target;
use crate::app::{cgroup, privileges, signals};
use crate::attach::{self, AttachOptions, Attachment};
use crate::loader::Loaded;
use crate::obj::ProgramSpec;
use crate::queue::{Producer, QueueStats};
use crate::ring::{MapRings, RingSet, StopHandle};
use crate::sys;
use crate::{cpus, identity, obj};

/// The longest a quiet system's events wait in a ring before being read.
pub const MAX_LATENCY: Duration = Duration::from_millis(100);
/// How long after its timestamp an event may still reach its ring; the
/// reader holds younger events back to merge the CPUs in time order.
pub const ORDER_WINDOW: Duration = Duration::from_millis(5);
/// The ring reader's nice value relative to the user's: ahead of an
/// ordinary load on a busy machine.
const READER_NICE: i32 = -5;
/// After the stop, how long the files may take to write what is buffered.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(3);
/// A drain that takes longer than this is said on stderr.
const DRAIN_NOTICE: Duration = Duration::from_millis(500);
/// How long an output thread may take to notice a cutoff before the run
/// ends without it (a write blocked on a hung disk, say).
const CUTOFF_GRACE: Duration = Duration::from_millis(400);
/// How often a stdout that is too slow is said on stderr, at most.
const SKIP_NOTICE_EVERY: Duration = Duration::from_secs(1);

/// Why events still buffered at the end were not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cutoff {
    /// The files took longer than `DRAIN_LIMIT` after the stop.
    Deadline,
    /// A second signal said: stop now.
    SecondSignal,
}

/// One output's account: `written + skipped + failed == received`.
#[derive(Debug)]
pub struct OutputSummary {
    pub name: String,
    /// A pipe, a terminal or a socket (may skip); else a regular file.
    pub stream: bool,
    pub written: u64,
    /// Not shown because the stream was too slow.
    pub skipped: u64,
    /// Not written because of an error, the cutoff, or a reader gone.
    pub failed: u64,
    pub first_error: Option<String>,
    /// The reader of the stream went away (`probe | head`).
    pub closed: bool,
}

#[derive(Debug, Default)]
pub struct Summary {
    /// False when SIGINT, SIGTERM or SIGHUP came during start-up: the
    /// monitor stopped before attaching anything, and all counts are 0.
    pub attached: bool,
    /// Events read from the rings that at least one output took.
    pub received: u64,
    /// Events the kernel could not put in a ring (its drop counter, which
    /// includes every sample PERF_RECORD_LOST reports).
    pub kernel_dropped: u64,
    pub reader: ReaderStats,
    pub queue: QueueStats,
    /// The queue's memory budget, bytes.
    pub buffer: usize,
    /// Events still queued that no output took before the cutoff.
    pub cut: u64,
    pub cutoff: Option<Cutoff>,
    pub outputs: Vec<OutputSummary>,
    /// An output thread was still blocked in a write at exit: its counts
    /// are what it had reported, the rest counted failed.
    pub output_stuck: bool,
    /// The capabilities the monitor kept after attaching.
    pub capabilities_kept: u64,
    /// Calls on which the kernel skipped the probe (its recursion
    /// protection: `report::recursion_cause`); None where this kernel does
    /// not count them.
    pub recursion_misses: Option<u64>,
    /// `--exit`: runs of the return hooks the kernel skipped (each leaves
    /// its call's return unseen, counted in `exit`).
    pub return_recursion_misses: Option<u64>,
    /// The reader stopped on an error of its own (epoll failed).
    pub reader_error: Option<String>,
    /// `--exit`: what became of the calls between entry and exit.
    pub exit: Option<ExitCounts>,
    /// The method that attached (None if nothing was).
    pub method: Option<attach::Method>,
    /// `--exit`: how many calls at once each return hook followed (None:
    /// every call, on tracepoints).
    pub return_maxactive: Option<u32>,
}

impl Summary {
    /// The run lost events, or a file (or a stream with a reader) failed
    /// to write some: exit status 4. Lines a slow stream skipped are not
    /// a loss (the log has them), nor those of a reader that went away.
    pub fn fell_short(&self) -> bool {
        self.lost() > 0 || self.outputs.iter().any(|o| !o.closed && o.failed > 0)
    }

    pub fn lost(&self) -> u64 {
        self.losses().total()
    }

    /// The events lost, by cause (the stderr lines' `[cause]`).
    pub fn losses(&self) -> Losses {
        let mut l = Losses::default();
        l.add(Cause::RingFull, self.kernel_dropped);
        l.add(Cause::Malformed, self.reader.malformed);
        l.add(Cause::BufferFull, self.queue.dropped);
        l.add(Cause::CutAtStop, self.cut);
        l.add(Cause::KernelSkipped, self.recursion_misses.unwrap_or(0));
        if let Some(e) = self.exit {
            l.add_missed_returns(self.method, e.missed_returns, self.return_recursion_misses);
            l.add(Cause::Evicted, e.evicted);
        }
        l
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

/// An output thread, seen from the monitor.
struct OutputThread {
    name: String,
    stream: bool,
    done: Receiver<OutputReport>,
    progress: Arc<Progress>,
    position: Arc<AtomicU64>,
    /// The queue's live count of events skipped for it.
    skipped: Arc<AtomicU64>,
}

/// Everything a running monitor holds.
struct Running {
    loaded: Loaded,
    attachment: Attachment,
    stop: StopHandle,
    reader: JoinHandle<(ReaderStats, QueueStats, Option<std::io::Error>)>,
    outputs: Vec<OutputThread>,
    control: Arc<Control>,
    /// Set by an output whose reader went away.
    closed: Arc<AtomicBool>,
    /// The log's name, if there is one: where skipped lines still are.
    log_name: Option<String>,
    buffer: usize,
    capabilities_kept: u64,
    /// `--exit`: where the calls still in flight at the stop go, to be
    /// written after everything else.
    unfinished: Option<Sender<Vec<Event>>>,
    /// `--exit`: the sweeps of dead threads' records so far.
    sweeps: Cell<inflight::Sweeps>,
    /// Tells the log's thread to reopen it (SIGUSR1).
    reopen: Option<Sender<()>>,
    /// `--pid-file`: removed when the run ends (dropped).
    _pid_file: Option<PidFile>,
    /// `-p`: the process, whose exit ends the run.
    target: Option<Target>,
}

/// How often `wait` looks whether a sweep is due.
pub const SWEEP_CHECK_EVERY: Duration = Duration::from_secs(1);

pub fn run(o: &Options) -> Result<Summary> {
    let Some(running) = start(o)? else {
        return Ok(Summary::default());
    };
    wait(&running, o);
    stop(running)
}

/// True (said on stderr) when a signal came: start-up stops before
/// anything is attached.
pub fn interrupted() -> bool {
    let sig = signals::wait(Duration::ZERO);
    if let Some(sig) = sig {
        output::say(&format!(
            "{sig} before attaching: stopped, nothing was monitored"
        ));
    }
    sig.is_some()
}

fn debug(o: &Options, line: &str) {
    if o.verbose >= 2 {
        output::say(&format!("[loader] {line}"))
    }
}

/// Step 1. None when a signal came before anything was attached.
fn start(o: &Options) -> Result<Option<Running>> {
    if interrupted() {
        return Ok(None);
    }
    // The kernel's view of the monitor: its tgid, and where -p looks.
    let self_tgid = identity::kernel_tgid()?;
    let pid_ns = pid_filter_namespace(o)?;
    let target = o.pid.map(Target::open).transpose()?;
    let identity = target.as_ref().and_then(|t| t.identity(&|l| debug(o, l)));
    let cgroup = o.cgroup.as_deref().map(cgroup::open).transpose()?;
    let spec = probe_spec(pid_ns)?;
    debug(
        o,
        &format!(
            "object: {} programs, {} maps, license {}",
            spec.programs.len(),
            spec.maps.len(),
            spec.license
        ),
    );
    let log_file = o.log.as_deref().map(log_file::open).transpose()?;
    let pid_file = o.pid_file.as_deref().map(PidFile::write).transpose()?;
    if interrupted() {
        return Ok(None);
    }

    let loaded = create_maps(o, spec, self_tgid, (pid_ns, identity), cgroup)?;
    if interrupted() {
        return Ok(None);
    }
    let online = cpus::online()?;
    let rings = open_rings(o, &loaded, &online)?;
    let console_file = if o.quiet { None } else { Some(stdout_file()?) };
    if interrupted() {
        return Ok(None);
    }

    // From here on a signal is taken by `wait`, after the threads are
    // running, and ends the run the usual way.
    // The calls of --syscalls; without --exit, their entry hooks only:
    // one hook per call.
    let wanted = |p: &ProgramSpec| {
        Syscall::needed(&p.kind, &o.syscalls) && (o.exit || !attach::is_return_hook(&p.kind))
    };
    let options = AttachOptions {
        only: Some(&wanted),
        legacy_maxactive: o.maxactive,
    };
    let attachment = attach::attach_with_options(&loaded, o.attach, &options)?;
    // The threads made from here on inherit this: the ring reader keeps
    // it (a reader that waits for a CPU lets the rings fill, and the
    // kernel drops events), the outputs give it up again (output/).
    // Raising priority needs CAP_SYS_NICE, gone after the next step.
    sys::renice_this_thread(READER_NICE);
    let capabilities_kept = drop_privileges(o, &loaded, &attachment)?;
    let header = log_file
        .as_ref()
        .map(|file| write_header(o, file, &attachment, self_tgid));

    // The threads start after the privileges are dropped (capabilities
    // are per thread): outputs first, then the reader that feeds them.
    let mut queue = Producer::<Event>::new(o.buffer);
    let buffer = queue.max_bytes();
    let control = Arc::new(Control::default());
    let closed = Arc::new(AtomicBool::new(false));
    let log_name = o.log.as_deref().map(format::path);
    let log = log_file.zip(header);
    let (outputs, reopen) = spawn_outputs(o, &mut queue, console_file, log, &control, &closed)?;
    let stop = rings.stop_handle();
    let (unfinished, unfinished_rx) = bounded::<Vec<Event>>(1);
    let reader = thread::Builder::new()
        .name("ring-reader".into())
        .spawn(move || {
            let mut batcher = Batcher::new(queue);
            let error = rings.run(&mut batcher, MAX_LATENCY).err();
            // Sent before the stop that ended `run`, if there are any.
            if let Ok(events) = unfinished_rx.try_recv() {
                batcher.push_unfinished(&events);
            }
            let (stats, queue) = batcher.finish();
            (stats, queue, error)
        })
        .context("cannot start the reader thread")?;

    // A method this kernel lacks is said with -v (it is so on every run
    // here); a refusal always. Asked for by name, a method that fails is
    // the run's error, said in full.
    for fallback in &attachment.fallbacks {
        if !fallback.absent() || o.verbose >= 1 {
            output::say(&format!("not attached via {fallback}"));
        }
    }
    for note in &attachment.notes {
        output::say(note);
    }
    output::say(&format!(
        "attached via {} to {} on {} CPUs",
        attachment.method,
        syscall_list(&o.syscalls),
        online.len()
    ));
    Ok(Some(Running {
        loaded,
        attachment,
        stop,
        reader,
        outputs,
        control,
        closed,
        log_name,
        buffer,
        capabilities_kept,
        unfinished: o.exit.then_some(unfinished),
        sweeps: Cell::new(inflight::Sweeps::default()),
        reopen,
        _pid_file: pid_file,
        target,
    }))
}

/// The run's header line, written at the top of its part of the log;
/// returned, to be repeated at the top of each new file.
fn write_header(o: &Options, mut file: &File, attachment: &Attachment, self_tgid: u32) -> String {
    let syscalls: Vec<&str> = o.syscalls.iter().map(|s| s.name()).collect();
    let header = log_file::header(&log_file::Header {
        method: attachment.method.name(),
        kernel_pid: self_tgid,
        pid_filter: o.pid,
        comm_filter: o.comm.as_deref(),
        cgroup_filter: o.cgroup.as_deref(),
        syscalls: &syscalls,
        exit: o.exit,
    });
    if let Err(e) = file.write_all(header.as_bytes()) {
        output::say(&format!("cannot write the log header: {e}"));
    }
    header
}

/// The output threads: stdout's, and the log's (with its header, and
/// the sender that tells it to reopen the log).
fn spawn_outputs(
    o: &Options,
    queue: &mut Producer<Event>,
    console_file: Option<File>,
    log: Option<(File, String)>,
    control: &Arc<Control>,
    closed: &Arc<AtomicBool>,
) -> Result<(Vec<OutputThread>, Option<Sender<()>>)> {
    let mut outputs = Vec::new();
    if let Some(file) = console_file {
        let format = if o.json {
            Format::Json
        } else {
            Format::Hello {
                verbose: o.verbose > 0,
            }
        };
        let writer = LineWriter::new("stdout", file, control.clone());
        let spec = ("out-stdout", format, writer, None);
        outputs.push(spawn_output(queue, spec, control, closed)?);
    }
    let mut reopen = None;
    if let (Some((file, header)), Some(path)) = (log, &o.log) {
        let mut writer = LineWriter::new(format::path(path), file, control.clone());
        writer.set_lifecycle(log_file::Lifecycle {
            path: path.clone(),
            header,
            max: o.log_max,
            keep: o.log_keep,
        });
        let (tx, rx) = bounded(1);
        reopen = Some(tx);
        let spec = ("out-log", Format::Log, writer, Some(rx));
        outputs.push(spawn_output(queue, spec, control, closed)?);
    }
    Ok((outputs, reopen))
}

/// `read and write`, `read, pread64 and preadv`: the calls followed.
pub fn syscall_list(calls: &[Syscall]) -> String {
    let names: Vec<&str> = calls.iter().map(|s| s.name()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `-p PID` is the pid the user sees, in the monitor's pid namespace: it
/// must exist there. Outside the initial namespace the probe compares it
/// in the kernel, in that namespace (probe_pidns); returns which one then.
fn pid_filter_namespace(o: &Options) -> Result<Option<PidNs>> {
    pid_namespace_for(o.pid)
}

/// `pid_filter_namespace` for the pid of `-p` (None: no filter).
pub fn pid_namespace_for(pid: Option<u32>) -> Result<Option<PidNs>> {
    let Some(pid) = pid else { return Ok(None) };
    if !identity::process_exists(pid) {
        return Err(anyhow!(
            "-p {pid}: there is no process {pid} in this pid namespace"
        ));
    }
    if identity::in_initial_pid_ns() {
        return Ok(None);
    }
    let ns = identity::own_pid_ns().context("cannot read /proc/self/ns/pid")?;
    Ok(Some(ns))
}

/// The maps, and the probe's configuration written into its config map
/// (`-p`: where its pid is matched, and the process's identity).
fn create_maps(
    o: &Options,
    spec: obj::ObjectSpec,
    self_tgid: u32,
    (pid_ns, target): (Option<PidNs>, Option<TargetIdentity>),
    cgroup: Option<std::os::fd::OwnedFd>,
) -> Result<Loaded> {
    let possible = cpus::possible_count()?;
    let mut spec = spec;
    // The in-flight table is preallocated (an LRU hash always is): only
    // --exit gets the full size, the entry-only probe never uses it.
    if !o.exit
        && let Some(i) = spec.map_index("inflight")
    {
        spec.maps[i].max_entries = 1;
    }
    // The map rings (--ring map): one ring_pos and `slots` events per
    // possible CPU; 1 entry each otherwise.
    let slots = ring_slots(o);
    if slots > 0 {
        for (name, entries) in [("ring_pos", possible), ("ring_events", possible * slots)] {
            if let Some(i) = spec.map_index(name) {
                spec.maps[i].max_entries = entries;
            }
        }
        // Without --exit only entry programs write the ring, 64 bytes per
        // event: slots of 64 bytes are one cache line each, and the ring
        // as big in memory as a perf ring of the same --pages. (The value
        // is then no longer a struct event: no BTF type for it.)
        if !o.exit
            && let Some(i) = spec.map_index("ring_events")
        {
            let m = &mut spec.maps[i];
            m.value_size = crate::app::abi::ENTRY_EVENT_SIZE as u32;
            m.btf_key_type_id = 0;
            m.btf_value_type_id = 0;
        }
    }
    // `probe top`'s tables: not used by the streaming monitor.
    for name in [
        "top_index",
        "top_rows",
        "top_free",
        "top_errors",
        "top_errors_other",
    ] {
        if let Some(i) = spec.map_index(name) {
            spec.maps[i].max_entries = 1;
        }
    }
    let loaded = Loaded::create_maps(spec, possible)?;
    debug(
        o,
        &format!("maps created; perf event array sized for {possible} CPUs"),
    );
    let config = ProbeConfig {
        verbose: o.verbose,
        filter_tgid: o.pid,
        target,
        pid_ns,
        self_tgid,
        filter_comm: o.comm.clone(),
        filter_cgroup: cgroup.is_some(),
        exit_mode: o.exit,
        top_by: None,
        syscalls: o.syscalls.clone(),
        compat_status_off: compat_status_off(o.attach),
        ring_slots: slots,
    };
    configure(&loaded, cgroup.as_ref(), &config)?;
    Ok(loaded)
}

/// Events per CPU of a map ring (`--ring map`); 0 for the perf rings.
fn ring_slots(o: &Options) -> u32 {
    match o.ring {
        RingKind::Map => (o.pages * MAP_RING_SLOTS_PER_PAGE).min(1 << 30) as u32,
        RingKind::Perf => 0,
    }
}

/// Where thread_info.status is, for the raw tracepoint programs (0 when
/// they will not be attached).
pub fn compat_status_off(method: Option<attach::Method>) -> u32 {
    match method {
        None | Some(attach::Method::RawTracepoint) => crate::app::compat::status_offset().offset,
        Some(_) => 0,
    }
}

/// The embedded probe, parsed: the build that matches -p in `pid_ns`
/// when there is one. Nothing of it may be left out without a word.
pub fn probe_spec(pid_ns: Option<PidNs>) -> Result<obj::ObjectSpec> {
    let object = if pid_ns.is_some() {
        crate::app::PROBE_PIDNS_OBJECT
    } else {
        crate::app::PROBE_OBJECT
    };
    let spec = obj::parse(object).context("the embedded BPF object is broken")?;
    if let Some(s) = spec.skipped.first() {
        return Err(anyhow!(
            "the embedded BPF object is broken: {} {} was skipped: {}",
            s.kind.label(),
            s.name,
            s.reason
        ));
    }
    Ok(spec)
}

/// Tells the probe what to do: the --cgroup directory into its cgroup
/// array, `config` into its config map.
pub fn configure(
    loaded: &Loaded,
    cgroup: Option<&std::os::fd::OwnedFd>,
    config: &ProbeConfig,
) -> Result<()> {
    if let Some(dir) = cgroup {
        let fd = dir.as_raw_fd() as u32;
        loaded
            .map("cgroup_filter")?
            .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes())
            .context("cannot store the --cgroup directory in the probe's map")?;
    }
    loaded
        .map("config_map")?
        .update(&0u32.to_ne_bytes(), &config.to_bytes())
        .context("cannot write the probe's configuration map")?;
    Ok(())
}

/// One ring per online CPU, each registered in the perf event array at
/// its CPU's index, where `bpf_perf_event_output(BPF_F_CURRENT_CPU)`
/// writes.
fn open_rings(o: &Options, loaded: &Loaded, online: &[u32]) -> Result<RingSet> {
    if o.ring == RingKind::Map {
        return open_map_rings(o, loaded, online);
    }
    let mut rings = RingSet::open(online, o.pages)
        .with_context(|| format!("cannot open a perf ring of {} pages per CPU", o.pages))?;
    rings.set_order_window(ORDER_WINDOW);
    let events_map = loaded.map("events")?;
    for ring in rings.perf_rings() {
        let raw = ring.as_fd().as_raw_fd() as u32;
        events_map
            .update(&ring.cpu().to_ne_bytes(), &raw.to_ne_bytes())
            .with_context(|| format!("cannot register the ring of CPU {}", ring.cpu()))?;
    }
    debug(
        o,
        &format!(
            "{} rings of {} KiB, reader woken at a quarter full or every {} ms",
            online.len(),
            rings.perf_rings().next().map_or(0, |r| r.data_size() >> 10),
            MAX_LATENCY.as_millis()
        ),
    );
    Ok(rings)
}

/// `--ring map`: the probe's two ring arrays mapped into our memory, a
/// ring per online CPU read from them.
fn open_map_rings(o: &Options, loaded: &Loaded, online: &[u32]) -> Result<RingSet> {
    let mapped = |name: &str| -> Result<_> {
        let map = loaded.map(name)?;
        let stride = map.stride();
        Ok((
            map.mmap()
                .with_context(|| format!("cannot map the probe's {name} array"))?,
            stride,
        ))
    };
    let (positions, _) = mapped("ring_pos")?;
    let (events, slot_size) = mapped("ring_events")?;
    let slots = ring_slots(o);
    let maps = Arc::new(MapRings {
        positions,
        events,
        slots: u64::from(slots),
        slot_size,
    });
    let mut rings = RingSet::open_map(online, maps).context("cannot set up the map rings")?;
    rings.set_order_window(ORDER_WINDOW);
    debug(
        o,
        &format!("{} map rings of {slots} events, polled", online.len()),
    );
    Ok(rings)
}

/// Attached: the rest of the run needs almost no privilege.
fn drop_privileges(o: &Options, loaded: &Loaded, attachment: &Attachment) -> Result<u64> {
    let kprobe_events = attachment.kprobe_events();
    // The log's rotation (--log-max, or SIGUSR1 when --pid-file says
    // logrotate will send it) renames and creates files beside the log,
    // and the pid file is removed at exit: in directories that root may
    // not write without CAP_DAC_OVERRIDE (a user's home, under sudo).
    let rotated = o.log_max.is_some() || o.pid_file.is_some();
    let dirs: Vec<&std::path::Path> = [o.log.as_deref().filter(|_| rotated), o.pid_file.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let shutdown_works = || {
        loaded.sum_per_cpu("drops").is_ok()
            && kprobe_events.as_ref().is_none_or(|path| {
                // Opening for append is the permission check a legacy
                // kprobe's removal makes, with no effect of its own.
                crate::sys::file::open_append(path).is_ok()
            })
            && dirs.iter().all(|file| privileges::may_write_beside(file))
    };
    let kept = privileges::drop_capabilities(&shutdown_works)?;
    debug(
        o,
        &format!(
            "capabilities kept: {}; no_new_privs set",
            privileges::cap_names(kept)
        ),
    );
    Ok(kept)
}

/// An output thread to start: its name, format, writer, and (the log)
/// where it is told to reopen.
type OutputSpec = (&'static str, Format, LineWriter, Option<Receiver<()>>);

fn spawn_output(
    queue: &mut Producer<Event>,
    (thread_name, format, writer, reopen): OutputSpec,
    control: &Arc<Control>,
    closed: &Arc<AtomicBool>,
) -> Result<OutputThread> {
    let name = writer.name().to_string();
    let stream = writer.is_stream();
    let progress = writer.progress();
    let (segments, skipped) = queue.add_consumer(stream);
    let position = Arc::new(AtomicU64::new(0));
    let (done_tx, done) = bounded(1);
    let (control, closed, at) = (control.clone(), closed.clone(), position.clone());
    thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let output = Output {
                format,
                writer,
                reopen,
            };
            let _ = done_tx.send(output::run(output, segments, control, at, closed));
        })
        .with_context(|| format!("cannot start the thread writing {name}"))?;
    Ok(OutputThread {
        name,
        stream,
        done,
        progress,
        position,
        skipped,
    })
}

/// Says, at most once a second, how many events stdout skipped lately.
struct SkipNotices {
    reported: u64,
    last: Option<Instant>,
}

impl SkipNotices {
    fn check(&mut self, r: &Running) {
        let Some(out) = r.outputs.iter().find(|t| t.stream) else {
            return;
        };
        let skipped = out.skipped.load(Ordering::Relaxed);
        if skipped == self.reported || self.last.is_some_and(|t| t.elapsed() < SKIP_NOTICE_EVERY) {
            return;
        }
        let log_failed = r
            .outputs
            .iter()
            .any(|t| !t.stream && t.progress.failed.load(Ordering::Relaxed) > 0);
        let where_ = match &r.log_name {
            Some(log) if !log_failed => format!("; all are in {log}"),
            Some(_) => String::new(),
            None => " (no log)".to_string(),
        };
        output::say(&format!(
            "{} too slow: {} events not shown{where_}",
            out.name,
            skipped - self.reported
        ));
        self.reported = skipped;
        self.last = Some(Instant::now());
    }
}

/// Step 2: until a signal, the duration, stdout's reader going away, or
/// the process of `-p` exiting (said).
fn wait(r: &Running, o: &Options) {
    let watch_stdout = r.outputs.iter().any(|t| t.name == "stdout");
    let deadline = o.duration.map(|d| Instant::now() + d);
    let mut notices = SkipNotices {
        reported: 0,
        last: None,
    };
    let mut sweep_checked = Instant::now();
    loop {
        let stop = signals::wait(Duration::from_millis(50)).is_some()
            || r.closed.load(Ordering::Relaxed)
            || r.reader.is_finished()
            || (watch_stdout && stdout_gone())
            || deadline.is_some_and(|d| Instant::now() >= d);
        if stop {
            return;
        }
        if let Some(t) = &r.target
            && t.exited()
        {
            output::say(&t.exit_line());
            return;
        }
        notices.check(r);
        if signals::take_reopen()
            && let Some(tx) = &r.reopen
        {
            // One pending is enough: the log is reopened once for all.
            let _ = tx.try_send(());
        }
        if o.exit && sweep_checked.elapsed() >= SWEEP_CHECK_EVERY {
            sweep_checked = Instant::now();
            let mut sweeps = r.sweeps.get();
            sweeps.sweep_if_due(&r.loaded);
            r.sweeps.set(sweeps);
        }
    }
}

/// Step 3: detach, drain, let the outputs finish, count.
fn stop(mut r: Running) -> Result<Summary> {
    // Detach first, so that the last drain sees every event there will be:
    // with --exit, the entry hooks first, and before the return hooks go,
    // a look at which calls left in flight have in fact returned unseen.
    let returned_unseen = match &r.unfinished {
        Some(_) => {
            r.attachment.disable_entries();
            Some(inflight::returned_unseen(&r.loaded)?)
        }
        None => None,
    };
    let (method, return_maxactive) = (r.attachment.method, r.attachment.return_maxactive);
    let detached = r.attachment.detach();
    // With the hooks gone, the calls left in the in-flight table are the
    // unfinished ones: to the reader, to follow everything else.
    let exit = match (&r.unfinished, returned_unseen) {
        (Some(tx), Some(unseen)) => {
            let swept = r.sweeps.get().swept;
            let (counts, events) = inflight::calls_in_flight(&r.loaded, &unseen, swept)?;
            let _ = tx.try_send(events);
            Some(counts)
        }
        _ => None,
    };
    r.stop.stop();
    let (reader, queue, reader_error) = r
        .reader
        .join()
        .map_err(|_| anyhow!("the reader thread failed"))?;
    r.control.finishing.store(true, Ordering::Relaxed);
    let (reports, cutoff, stuck) = finish_outputs(&r.outputs, &r.control, queue.pushed);
    let kernel_dropped = r.loaded.sum_per_cpu("drops")?;

    // Who took what. An output that took everything sent to it stands at
    // the end of the queue (a stream's trailing runs were skipped for it);
    // the events no output took before a cutoff are lost.
    let positions: Vec<u64> = r
        .outputs
        .iter()
        .zip(&reports)
        .map(|(t, report)| match report {
            Some(rep) if rep.finished => queue.pushed,
            Some(rep) => rep.position,
            None => t.position.load(Ordering::Relaxed),
        })
        .collect();
    let received = positions.iter().copied().max().unwrap_or(queue.pushed);
    let outputs = r
        .outputs
        .iter()
        .zip(reports)
        .map(|(t, report)| {
            let at = report
                .as_ref()
                .map_or_else(|| t.position.load(Ordering::Relaxed), |r| r.position);
            account(t, report, at, received)
        })
        .collect();
    Ok(Summary {
        attached: true,
        received,
        kernel_dropped,
        reader,
        queue,
        buffer: r.buffer,
        cut: queue.pushed - received,
        cutoff,
        outputs,
        output_stuck: stuck,
        capabilities_kept: r.capabilities_kept,
        recursion_misses: detached.recursion_misses,
        return_recursion_misses: detached.return_recursion_misses,
        exit,
        method: Some(method),
        return_maxactive,
        reader_error: reader_error.map(|e| e.to_string()),
    })
}

/// Waits for the outputs to write what is buffered: at most `DRAIN_LIMIT`
/// (said after `DRAIN_NOTICE`), less if a second signal says stop now.
/// Returns each output's report (None: it never returned), whether and
/// why they were cut off, and whether one was stuck.
fn finish_outputs(
    outputs: &[OutputThread],
    control: &Control,
    queued: u64,
) -> (Vec<Option<OutputReport>>, Option<Cutoff>, bool) {
    let started = Instant::now();
    let mut reports: Vec<Option<OutputReport>> = outputs.iter().map(|_| None).collect();
    let mut cutoff = None;
    let mut cut_at = None;
    let mut said = false;
    loop {
        for (t, report) in outputs.iter().zip(reports.iter_mut()) {
            if report.is_none() {
                *report = t.done.try_recv().ok();
            }
        }
        if reports.iter().all(Option::is_some) {
            return (reports, cutoff, false);
        }
        if let Some(at) = cut_at {
            if Instant::now() >= at {
                return (reports, cutoff, true);
            }
        } else {
            let why = if signals::wait(Duration::ZERO).is_some() {
                Some(Cutoff::SecondSignal)
            } else if started.elapsed() >= DRAIN_LIMIT {
                Some(Cutoff::Deadline)
            } else {
                None
            };
            if let Some(why) = why {
                control.cutoff.store(true, Ordering::Relaxed);
                cutoff = Some(why);
                cut_at = Some(Instant::now() + CUTOFF_GRACE);
            } else if !said && started.elapsed() >= DRAIN_NOTICE {
                said = true;
                if let Some(slowest) = outputs
                    .iter()
                    .zip(&reports)
                    .filter(|(t, r)| r.is_none() && !t.stream)
                    .min_by_key(|(t, _)| t.position.load(Ordering::Relaxed))
                {
                    let left = queued.saturating_sub(slowest.0.position.load(Ordering::Relaxed));
                    output::say(&format!(
                        "writing the last {left} buffered events to {} (at most {} s; \
                         Ctrl+C again to stop now)",
                        slowest.0.name,
                        DRAIN_LIMIT.as_secs()
                    ));
                }
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// One output's final account, from its report (or its live counts if it
/// never returned): what it did not reach of `received` is skipped for a
/// stream, failed for a file.
fn account(
    t: &OutputThread,
    report: Option<OutputReport>,
    at: u64,
    received: u64,
) -> OutputSummary {
    let rest = received - at.min(received);
    let mut s = match report {
        Some(rep) => OutputSummary {
            name: rep.writer.name,
            stream: rep.writer.stream,
            written: rep.writer.written,
            skipped: rep.writer.skipped,
            failed: rep.writer.failed,
            first_error: rep.writer.first_error.map(|e| e.to_string()),
            closed: rep.writer.closed,
        },
        None => {
            // Still blocked in a write: whatever it took and did not
            // report written is counted failed.
            let written = t.progress.written.load(Ordering::Relaxed);
            let skipped = t.progress.skipped.load(Ordering::Relaxed);
            OutputSummary {
                name: t.name.clone(),
                stream: t.stream,
                written,
                skipped,
                failed: at.saturating_sub(written + skipped),
                first_error: Some("still blocked in a write at exit".into()),
                closed: false,
            }
        }
    };
    if s.stream && !s.closed {
        s.skipped += rest;
    } else {
        s.failed += rest;
        if rest > 0 && s.first_error.is_none() {
            s.first_error = Some("not written before the stop".into());
        }
    }
    s
}
