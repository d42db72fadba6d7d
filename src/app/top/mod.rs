//! `probe top`: who does the I/O, how much, how slow, counted in the
//! kernel. One run, in three steps a reader can follow:
//!
//! 1. `start`: load the probe with its table sized, tell it to count
//!    (config.top_by) instead of sending events, attach the entry and exit
//!    hooks of `--syscalls`, drop privileges;
//! 2. `watch`: every `-i` seconds read the table (table.rs) and show what
//!    the interval added (render.rs; a screen on a terminal, screen.rs),
//!    until `-d`, a signal, `q`, or the process of `-p` exiting;
//! 3. `stop`: entries off, returns off, one last read (the last interval),
//!    and what became of the calls in flight.
//!
//! Nothing crosses from the kernel per call: the exit hook adds the call
//! to its row. A row is per key (`--by`) and syscall.

pub mod files;
pub mod render;
pub mod screen;
pub mod table;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use nix::sys::signal::Signal;

use crate::app::abi::{ProbeConfig, Syscall};
use crate::app::cli::TopOptions;
use crate::app::inflight::{self, ExitCounts, Sweeps};
use crate::app::loss::{Cause, Losses, say_lost};
use crate::app::metrics::listener::Listener;
use crate::app::metrics::textfile::TextFile;
use crate::app::metrics::{Published, Registry, exposition};
use crate::app::output::say;
use crate::app::target::Target;
use crate::app::{cgroup, monitor, privileges, report, signals};
use crate::attach::{self, AttachOptions, Attachment, DetachReport, Method};
use crate::loader::Loaded;
use crate::obj::ProgramSpec;
use crate::{cpus, identity};

use files::FileNames;
use render::View;
use screen::{Key, Screen};
use table::{Counts, Interval, Table};

/// What a run of `top` counted, for the report on stderr.
#[derive(Debug, Default)]
pub struct TopSummary {
    /// Calls counted in the table (every row, other rows included).
    pub counted: u64,
    /// Of those, the calls in the other rows (the table was full).
    pub in_other: u64,
    pub intervals: u64,
    /// What became of the calls between entry and exit.
    pub exit: ExitCounts,
    /// Calls the kernel skipped (its recursion protection:
    /// `report::recursion_cause`).
    pub recursion_misses: Option<u64>,
    /// Runs of the return hooks the kernel skipped (each leaves its call's
    /// return unseen, counted in `exit`).
    pub return_recursion_misses: Option<u64>,
    pub method: Option<Method>,
    pub return_maxactive: Option<u32>,
    /// Rows of exited processes removed from the kernel's table.
    pub removed: usize,
    /// -p, -c or --cgroup was given.
    pub filtered: bool,
    /// CPU time spent reading, computing and showing each interval (the
    /// monitor's whole per-interval cost).
    pub interval_cpu: Vec<Duration>,
    /// The most rows the kernel's table held at the end of an interval.
    pub max_rows: usize,
}

impl TopSummary {
    /// Calls never counted: their return was missed, or their record was
    /// evicted, or the kernel skipped the probe.
    pub fn lost(&self) -> u64 {
        self.losses().total()
    }

    /// The same by cause.
    pub fn losses(&self) -> Losses {
        top_losses(
            self.method,
            self.exit.missed_returns,
            self.exit.evicted,
            self.recursion_misses,
            self.return_recursion_misses,
        )
    }
}

/// `top`'s losses by cause from the counts that make them: the returns
/// never seen (whose cause depends on the method and on the exit runs the
/// kernel skipped), the records evicted, the entries the kernel skipped.
fn top_losses(
    method: Option<Method>,
    missed_returns: u64,
    evicted: u64,
    recursion_misses: Option<u64>,
    return_recursion_misses: Option<u64>,
) -> Losses {
    let mut l = Losses::default();
    l.add(Cause::KernelSkipped, recursion_misses.unwrap_or(0));
    l.add_missed_returns(method, missed_returns, return_recursion_misses);
    l.add(Cause::Evicted, evicted);
    l
}

/// Everything a running `top` holds.
struct Running {
    loaded: Loaded,
    /// None once detached.
    attachment: RefCell<Option<Attachment>>,
    method: Method,
    return_maxactive: Option<u32>,
    sweeps: Cell<Sweeps>,
    /// A lower bound of the records evicted so far (found at sweeps).
    evicted: Cell<u64>,
    /// `-p`: the process, whose exit ends the run.
    target: Option<Target>,
    /// The run ended because it exited (said once the screen is gone).
    target_exited: Cell<bool>,
}

impl Running {
    /// What the run has lost so far, by cause, from what the kernel has
    /// counted by now: every interval, so a loss shows as it happens.
    /// Each count only grows, and the stop's own account is never below
    /// it (it finds, besides, the last returns missed, and every
    /// eviction).
    fn losses_so_far(&self) -> Losses {
        let missed = inflight::missed_returns_so_far(&self.loaded).unwrap_or(0)
            + self.sweeps.get().swept.missed;
        let attachment = self.attachment.borrow();
        let skipped = attachment.as_ref().and_then(Attachment::recursion_misses);
        let exit_skipped = attachment
            .as_ref()
            .and_then(Attachment::return_recursion_misses);
        top_losses(
            Some(self.method),
            missed,
            self.evicted.get(),
            skipped,
            exit_skipped,
        )
    }
}

/// The whole run. None when a signal came before anything was attached.
pub fn run(o: &TopOptions) -> Result<Option<TopSummary>> {
    let Some((running, mut metrics)) = start(o)? else {
        return Ok(None);
    };
    // An interval of 10,000 changed rows allocates a few MB and frees
    // them: kept by the allocator rather than given back and faulted in
    // again each interval.
    // SAFETY: mallopt only sets tunables.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
    }
    let started = Instant::now();
    let mut out = Out::new(o)?;
    let keep_rows = o.cumulative || matches!(out, Out::Screen { .. });
    let mut table = Table::new(&running.loaded, o.by, keep_rows)?;
    let watched = watch(&running, &mut table, &mut out, &mut metrics, o);
    // Stopping comes first whatever happened: nothing stays attached.
    let stopped = stop_hooks(&running);
    let (intervals, mut last, mut cost) = watched?;
    let (exit, detached) = stopped?;
    let recursion_misses = detached.recursion_misses;
    let cpu = thread_cpu();
    let final_interval = table.interval(o.cumulative)?;
    let live_rows = final_interval.live_rows;
    let lost = top_losses(
        Some(running.method),
        exit.missed_returns,
        exit.evicted,
        recursion_misses,
        detached.return_recursion_misses,
    )
    .max(last.lost_so_far);
    if let Some(m) = &mut metrics {
        m.update(final_interval.deltas(), lost);
    }
    out.show(final_interval, lost, &mut last, o, "last interval")?;
    cost.add(thread_cpu().saturating_sub(cpu), live_rows);
    if let Some(m) = metrics {
        m.stop();
    }
    let totals = table.totals();
    let total = table.run_total().clone();
    let in_other = table.other_calls();
    out.finish(totals, &total, started.elapsed(), o)?;
    if let Some(t) = running
        .target
        .as_ref()
        .filter(|_| running.target_exited.get())
    {
        say(&t.exit_line());
    }
    Ok(Some(TopSummary {
        counted: total.calls,
        in_other,
        intervals: intervals + 1,
        exit,
        recursion_misses,
        return_recursion_misses: detached.return_recursion_misses,
        method: Some(running.method),
        return_maxactive: running.return_maxactive,
        removed: table.removed(),
        filtered: o.pid.is_some() || o.comm.is_some() || o.cgroup.is_some(),
        interval_cpu: cost.each,
        max_rows: cost.max_rows,
    }))
}

/// Step 1. None when a signal came before anything was attached.
fn start(o: &TopOptions) -> Result<Option<(Running, Option<Metrics>)>> {
    if monitor::interrupted() {
        return Ok(None);
    }
    let self_tgid = identity::kernel_tgid()?;
    let pid_ns = monitor::pid_namespace_for(o.pid)?;
    let target = o.pid.map(Target::open).transpose()?;
    let identity = target.as_ref().and_then(|t| t.identity(&|_| {}));
    let cgroup = o.cgroup.as_deref().map(cgroup::open).transpose()?;
    let mut spec = monitor::probe_spec(pid_ns)?;
    // The probe's table has room for --keys rows (and as many errnos);
    // the ring's map is not used: no event is sent.
    for (name, entries) in [
        ("top_index", o.keys),
        ("top_rows", o.keys),
        ("top_free", o.keys),
        ("top_errors", o.keys),
    ] {
        if let Some(i) = spec.map_index(name) {
            spec.maps[i].max_entries = entries;
        }
    }
    let loaded = Loaded::create_maps(spec, cpus::possible_count()?)?;
    table::free_all_slots(&loaded).context("cannot fill the probe's table of free rows")?;
    let config = ProbeConfig {
        verbose: 0,
        filter_tgid: o.pid,
        target: identity,
        pid_ns,
        self_tgid,
        filter_comm: o.comm.clone(),
        filter_cgroup: cgroup.is_some(),
        exit_mode: true,
        top_by: Some(o.by),
        syscalls: o.syscalls.clone(),
        compat_status_off: monitor::compat_status_off(o.attach),
        ring_slots: 0,
    };
    monitor::configure(&loaded, cgroup.as_ref(), &config)?;
    if monitor::interrupted() {
        return Ok(None);
    }
    let wanted = |p: &ProgramSpec| Syscall::needed(&p.kind, &o.syscalls);
    let options = AttachOptions {
        only: Some(&wanted),
        legacy_maxactive: o.maxactive,
    };
    let attachment = attach::attach_with_options(&loaded, o.attach, &options)?;
    // Bound and first written with every privilege (a port below 1024, a
    // directory of root's), then kept writable through the drop below.
    let metrics = Metrics::start(o, attachment.method)?;
    let kprobe_events = attachment.kprobe_events();
    let shutdown_works = || {
        // A lookup stands for every map operation on fds we hold (the
        // kernel checks them alike).
        loaded.sum_per_cpu("drops").is_ok()
            && kprobe_events
                .as_ref()
                .is_none_or(|path| crate::sys::file::open_append(path).is_ok())
            && metrics.as_ref().is_none_or(Metrics::file_writable)
    };
    // --by file reads other users' /proc/PID/fd links.
    let also = match o.by {
        crate::app::abi::TopBy::File => 1 << privileges::CAP_SYS_PTRACE,
        _ => 0,
    };
    privileges::drop_capabilities_keeping(also, &shutdown_works)?;
    // A method this kernel lacks is not said (top has no -v); a refusal
    // is.
    for fallback in attachment.fallbacks.iter().filter(|f| !f.absent()) {
        say(&format!("not attached via {fallback}"));
    }
    for note in &attachment.notes {
        say(note);
    }
    say(&format!(
        "attached via {} to {} on {} CPUs: counting by {} every {} s",
        attachment.method,
        monitor::syscall_list(&o.syscalls),
        cpus::online()?.len(),
        o.by.name(),
        o.interval.as_secs_f64()
    ));
    Ok(Some((
        Running {
            loaded,
            method: attachment.method,
            return_maxactive: attachment.return_maxactive,
            attachment: RefCell::new(Some(attachment)),
            sweeps: Cell::new(Sweeps::default()),
            evicted: Cell::new(0),
            target,
            target_exited: Cell::new(false),
        },
        metrics,
    )))
}

/// `--metrics-listen` and `--metrics-file`: the run's totals, rendered at
/// every interval for both.
pub struct Metrics {
    registry: Registry,
    published: Published,
    listener: Option<Listener>,
    file: Option<TextFile>,
    /// Intervals in a row the file could not be written.
    file_failing: u64,
}

impl Metrics {
    /// None without the flags.
    fn start(o: &TopOptions, method: Method) -> Result<Option<Metrics>> {
        if o.metrics_listen.is_none() && o.metrics_file.is_none() {
            return Ok(None);
        }
        let registry = Registry::new(o.metrics_comms, &o.metrics_pins, o.interval, method.name());
        let published = Published::default();
        published.set(exposition::render(&registry, SystemTime::now()));
        let listener = match o.metrics_listen {
            Some(addr) => {
                let l = Listener::start(addr, published.clone())
                    .with_context(|| format!("--metrics-listen {addr}: cannot listen there"))?;
                if !addr.ip().is_loopback() {
                    say(&format!(
                        "metrics on http://{}/metrics are open to other machines: they show \
                         the names of this machine's processes (bind 127.0.0.1 unless you mean it)",
                        l.addr
                    ));
                }
                say(&format!("serving metrics on http://{}/metrics", l.addr));
                Some(l)
            }
            None => None,
        };
        let file = o
            .metrics_file
            .as_deref()
            .map(|p| TextFile::create(p, &published.get()))
            .transpose()?;
        Ok(Some(Metrics {
            registry,
            published,
            listener,
            file,
            file_failing: 0,
        }))
    }

    /// The file can still be written (for the privilege drop's check).
    fn file_writable(&self) -> bool {
        self.file
            .as_ref()
            .is_none_or(|f| f.write(&self.published.get()).is_ok())
    }

    /// An interval's rows into the totals, and out to both.
    fn update(&mut self, rows: &[table::Row], lost: Losses) {
        self.registry.add(rows);
        self.registry.set_lost(lost);
        let text = exposition::render(&self.registry, SystemTime::now());
        if let Some(f) = &self.file {
            write_file(f, &text, &mut self.file_failing);
        }
        self.published.set(text);
    }

    fn stop(self) {
        if let Some(l) = self.listener {
            l.stop();
        }
    }
}

/// The file, rewritten. A failure is said at every interval it lasts, not
/// once: each is an interval more that the file is stale (its
/// probe_last_update_timestamp_seconds says since when); the recovery
/// once. `failing`: the intervals in a row not written.
fn write_file(f: &TextFile, text: &[u8], failing: &mut u64) {
    let shown = crate::app::output::format::path(f.path());
    let intervals = |n: u64| match n {
        1 => "1 interval".to_string(),
        n => format!("{n} intervals"),
    };
    match f.write(text) {
        Ok(()) if *failing > 0 => {
            say(&format!(
                "the metrics are written to {shown} again, after {} not written",
                intervals(*failing)
            ));
            *failing = 0;
        }
        Ok(()) => {}
        Err(e) => {
            *failing += 1;
            say(&format!(
                "cannot write the metrics to {shown} ({e}): {} not written now; trying again \
                 every interval",
                intervals(*failing)
            ));
        }
    }
}

/// Where the intervals go: a screen, plain tables, JSON lines, or (-q)
/// nowhere.
enum Out {
    Quiet,
    Screen {
        screen: Screen,
        files: FileNames,
    },
    Plain {
        json: bool,
        files: FileNames,
        out: std::io::Stdout,
    },
}

/// The last interval shown, for a redraw after a resize.
#[derive(Default)]
struct Shown {
    rows: Vec<table::Row>,
    total: Counts,
    time: Option<SystemTime>,
    length: Duration,
    title: String,
    /// The run's losses as of this interval, by cause.
    lost_so_far: Losses,
    /// What `--json` shows of them: the interval's (`--cumulative`: the
    /// run's so far).
    lost: Losses,
}

impl Out {
    fn new(o: &TopOptions) -> Result<Out> {
        if o.quiet {
            return Ok(Out::Quiet);
        }
        if screen::stdout_is_terminal() && !o.json {
            signals::block_resize();
            let screen = Screen::open().context("cannot set up the terminal")?;
            return Ok(Out::Screen {
                screen,
                files: FileNames::default(),
            });
        }
        Ok(Out::Plain {
            json: o.json,
            files: FileNames::default(),
            out: std::io::stdout(),
        })
    }

    /// Rows shown: `-n`, else what fits the screen (or 20; JSON: all).
    fn limit(&self, o: &TopOptions) -> usize {
        match (o.rows, self) {
            (Some(n), _) => n,
            (None, Out::Screen { screen, .. }) => screen.size().0.saturating_sub(6).max(1),
            (None, Out::Plain { json: true, .. }) => usize::MAX,
            (None, Out::Plain { .. }) => 20,
            (None, Out::Quiet) => 0,
        }
    }

    /// Shows one interval, and the run's losses as of its end (remembered
    /// in `last` for a redraw).
    fn show(
        &mut self,
        i: Interval,
        lost_so_far: Losses,
        last: &mut Shown,
        o: &TopOptions,
        title: &str,
    ) -> Result<()> {
        let now = SystemTime::now();
        let length = match last.time {
            Some(t) => now.duration_since(t).unwrap_or_default(),
            None => o.interval,
        };
        let lost = match o.cumulative {
            true => lost_so_far,
            false => lost_so_far.since(last.lost_so_far),
        };
        *last = Shown {
            rows: i.rows,
            total: i.total,
            time: Some(now),
            length,
            title: title.to_string(),
            lost_so_far,
            lost,
        };
        self.draw(last, o)
    }

    fn draw(&mut self, s: &Shown, o: &TopOptions) -> Result<()> {
        let limit = self.limit(o);
        let order = render::sorted(&s.rows, o.sort);
        let view = View {
            time: s.time.unwrap_or_else(SystemTime::now),
            length: s.length,
            by: o.by,
            sort: o.sort,
            rows: &order,
            limit,
            total: &s.total,
            cumulative: o.cumulative,
            hist: o.hist,
            title: &s.title,
        };
        match self {
            Out::Quiet => {}
            Out::Screen { screen, files } => {
                files.next_interval();
                let mut lines = render::table(&view, files);
                lines.push(String::new());
                lines.push("q or Ctrl+C: quit".into());
                screen.draw(&lines).context("cannot draw on the terminal")?;
            }
            Out::Plain { json, files, out } => {
                files.next_interval();
                let lines = if *json {
                    let mut l = render::json(&view, files);
                    l.extend(render::json_lost(&view, &s.lost));
                    l
                } else {
                    let mut l = render::table(&view, files);
                    l.push(String::new());
                    l
                };
                let mut text = lines.join("\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| anyhow!(StdoutGone(e)))?;
            }
        }
        Ok(())
    }

    /// After the last interval: on a terminal, the screen goes and the
    /// run's totals (over `length`, the whole run) are printed.
    fn finish(
        self,
        totals: Vec<table::Row>,
        total: &Counts,
        length: Duration,
        o: &TopOptions,
    ) -> Result<()> {
        let Out::Screen { screen, mut files } = self else {
            return Ok(());
        };
        drop(screen);
        let order = render::sorted(&totals, o.sort);
        let view = View {
            time: SystemTime::now(),
            length,
            by: o.by,
            sort: o.sort,
            rows: &order,
            limit: o.rows.unwrap_or(20),
            total,
            cumulative: true,
            hist: o.hist,
            title: "totals of the run",
        };
        let mut text = render::table(&view, &mut files).join("\n");
        text.push('\n');
        let _ = std::io::stdout().write_all(text.as_bytes());
        Ok(())
    }
}

/// stdout's reader went away (`probe top | head`): the run ends quietly.
#[derive(Debug)]
pub struct StdoutGone(std::io::Error);

impl std::fmt::Display for StdoutGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to stdout: {}", self.0)
    }
}

impl std::error::Error for StdoutGone {}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// What the intervals cost the monitor.
#[derive(Default)]
struct Cost {
    each: Vec<Duration>,
    max_rows: usize,
}

impl Cost {
    fn add(&mut self, cpu: Duration, rows: usize) {
        self.each.push(cpu);
        self.max_rows = self.max_rows.max(rows);
    }
}

/// How often the loop looks at signals, keys and the clock.
const TICK: Duration = Duration::from_millis(50);

/// Step 2: an interval every `-i` until `-d`, a signal, `q`, or the
/// process of `-p` exiting (said). Returns
/// how many intervals were shown, the last (for the final one's length),
/// and what they cost.
fn watch(
    r: &Running,
    table: &mut Table,
    out: &mut Out,
    metrics: &mut Option<Metrics>,
    o: &TopOptions,
) -> Result<(u64, Shown, Cost)> {
    let started = Instant::now();
    let mut cost = Cost::default();
    let mut last = Shown {
        time: Some(SystemTime::now()),
        ..Shown::default()
    };
    let mut next = started + o.interval;
    let mut intervals = 0;
    let mut sweep_checked = Instant::now();
    loop {
        let now = Instant::now();
        if o.duration.is_some_and(|d| now >= started + d) {
            return Ok((intervals, last, cost));
        }
        let wait = next.saturating_duration_since(now).min(TICK);
        match signals::wait_or_resize(wait) {
            Some(Signal::SIGWINCH) => out.draw(&last, o)?,
            Some(_) => return Ok((intervals, last, cost)),
            None => {}
        }
        if let Out::Screen { screen, .. } = out
            && screen.keys().contains(&Key::Quit)
        {
            return Ok((intervals, last, cost));
        }
        if r.target.as_ref().is_some_and(Target::exited) {
            r.target_exited.set(true);
            return Ok((intervals, last, cost));
        }
        if Instant::now() >= next {
            let cpu = thread_cpu();
            let i = table.interval(o.cumulative)?;
            let live_rows = i.live_rows;
            // Read only for those who show it: each read is a system call
            // on the kernel's maps.
            let lost = match metrics.is_some() || o.json {
                true => r.losses_so_far().max(last.lost_so_far),
                false => Losses::default(),
            };
            if let Some(m) = metrics {
                m.update(i.deltas(), lost);
            }
            out.show(i, lost, &mut last, o, "")?;
            cost.add(thread_cpu().saturating_sub(cpu), live_rows);
            intervals += 1;
            next += o.interval;
            // A slow machine does not catch up with a burst of intervals.
            if next < Instant::now() {
                next = Instant::now() + o.interval;
            }
        }
        if sweep_checked.elapsed() >= monitor::SWEEP_CHECK_EVERY {
            sweep_checked = Instant::now();
            let mut sweeps = r.sweeps.get();
            if sweeps.sweep_if_due(&r.loaded)
                && let Ok(n) = inflight::evicted_so_far(&r.loaded, sweeps.swept)
            {
                r.evicted.set(r.evicted.get().max(n));
            }
            r.sweeps.set(sweeps);
        }
    }
}

/// Step 3: entries off, then (after a look at which calls returned
/// unseen) the returns; what is still in flight is counted, not shown.
fn stop_hooks(r: &Running) -> Result<(ExitCounts, DetachReport)> {
    let Some(mut attachment) = r.attachment.borrow_mut().take() else {
        return Err(anyhow!("the hooks were already detached"));
    };
    attachment.disable_entries();
    let unseen = inflight::returned_unseen(&r.loaded);
    let detached = attachment.detach();
    let (exit, _unfinished) = inflight::calls_in_flight(&r.loaded, &unseen?, r.sweeps.get().swept)?;
    Ok((exit, detached))
}

/// The report on stderr: each cause of loss, then the count line (the
/// streaming monitor's: calls counted, calls lost).
pub fn report(s: &TopSummary) {
    report::exit_losses(
        &s.exit,
        s.method,
        s.return_maxactive,
        s.return_recursion_misses,
        "not counted (no result yet)",
        "not counted",
    );
    if let Some(n @ 1..) = s.recursion_misses {
        say_lost(
            n,
            "calls",
            Cause::KernelSkipped,
            &report::entry_skips(s.method, s.filtered),
        );
    }
    if s.in_other > 0 {
        say(&format!(
            "{} calls are counted in the (other) rows: the table was full (more keys than \
             --keys); try a larger --keys",
            s.in_other
        ));
    }
    let mut cpu = s.interval_cpu.clone();
    cpu.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let mean = cpu.iter().sum::<Duration>().as_secs_f64() * 1e3 / cpu.len().max(1) as f64;
    say(&format!(
        "top: {} intervals, {:.2} ms of CPU each (median; mean {mean:.2}, at most {:.2}; at \
         most {} rows in the kernel's table); {} rows of exited processes removed from it",
        s.intervals,
        ms(cpu.get(cpu.len() / 2)),
        ms(cpu.last()),
        s.max_rows,
        s.removed
    ));
    say(&format!("received={} lost={}", s.counted, s.lost()));
}
