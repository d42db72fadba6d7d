//! The `probe` command: parses flags, checks privileges, runs the monitor
//! and reports. Exit codes: 0 done, 1 error, 2 bad usage, 3 `probe
//! inspect`: loadable in part, 4 done but events were lost.

use std::io::Write;
use std::process::ExitCode;

use probe::app::cli::{self, Command, Options, RingKind};
use probe::app::loss::{Cause, say_lost};
use probe::app::monitor::{self, Cutoff, Summary};
use probe::app::output::say;
use probe::app::{privileges, signals};

fn main() -> ExitCode {
    // First of all, so that a Ctrl+C at any later moment of a run waits
    // for the monitor to take it (see signals.rs), before or after
    // attaching. Only a signal before this line kills it, when it has
    // done nothing yet.
    signals::block();
    let command = cli::parse(std::env::args_os().skip(1));
    if !matches!(command, Ok(Command::Run(_) | Command::Top(_))) {
        // The rest may block on a file (inspect): Ctrl+C as usual.
        signals::unblock();
    }
    // Written with errors ignored: `probe --help | head -1` is no error.
    match command {
        Err(cli::UsageError { message, usage }) => {
            // It quotes the user's bytes: one line whatever they are.
            say(&probe::app::output::format::printable(message.as_bytes()));
            let _ = writeln!(std::io::stderr(), "{usage}");
            ExitCode::from(2)
        }
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout(), "probe {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Inspect(path)) => match probe::app::inspect::check(&path) {
            Ok(verdict) => ExitCode::from(verdict.exit_code()),
            Err(e) => finish(Err(e)),
        },
        Ok(Command::Load(path)) => load(&path),
        Ok(Command::TopHelp) => {
            let _ = writeln!(std::io::stdout(), "{}", cli::TOP_USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Top(options)) => top(&options),
        Ok(Command::Run(options)) => match run(&options) {
            // Not an error (no line more), but not all there either: a
            // script or a service manager can tell.
            Ok(summary) if summary.fell_short() => ExitCode::from(4),
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => finish(Err(e)),
        },
    }
}

/// `probe load FILE`: the verdicts on stdout; 0 only if every program
/// loaded.
fn load(path: &std::path::Path) -> ExitCode {
    let verdicts = privileges::check().and_then(|()| {
        probe::loader::raise_memlock();
        probe::app::load::run(path)
    });
    match verdicts {
        Ok(v) => {
            let _ = write!(std::io::stdout(), "{}", v.text);
            ExitCode::from(if v.all_loaded { 0 } else { 1 })
        }
        Err(e) => finish(Err(e)),
    }
}

/// `probe top`: the intervals on stdout, the account on stderr. A reader
/// of stdout that went away (`probe top | head`) ends it without an error.
fn top(options: &cli::TopOptions) -> ExitCode {
    if options.explain {
        probe::sys::explain::set_sink(|call| say(&format!("[sys] {call}")));
    }
    let result = privileges::check().and_then(|()| {
        probe::loader::raise_memlock();
        probe::app::top::run(options)
    });
    match result {
        Ok(Some(summary)) => {
            probe::app::top::report(&summary);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<probe::app::top::StdoutGone>().is_some() => ExitCode::SUCCESS,
        Err(e) => finish(Err(e)),
    }
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// A streaming run: its summary, reported on stderr.
fn run(options: &Options) -> anyhow::Result<Summary> {
    if options.explain {
        probe::sys::explain::set_sink(|call| say(&format!("[sys] {call}")));
    }
    privileges::check()?;
    probe::loader::raise_memlock();
    let summary = monitor::run(options)?;
    report(&summary, options);
    match &summary.reader_error {
        Some(e) => Err(anyhow::anyhow!(
            "the ring reader stopped early: {e}; events after that were not read"
        )),
        None => Ok(summary),
    }
}

/// A size in the units `--buffer` takes.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b => format!("{}M", b >> 20),
    }
}

/// The exit report on stderr: each cause of loss with what to do about
/// it, each output that fell short, then the summary line.
fn report(s: &Summary, o: &Options) {
    if s.kernel_dropped > 0 {
        let which = match o.ring {
            RingKind::Perf => format!("the rings full (perf reported {})", s.reader.ring_lost),
            RingKind::Map => "the map rings full".to_string(),
        };
        say_lost(
            s.kernel_dropped,
            "events",
            Cause::RingFull,
            &format!(
                "the kernel found {which}; try a larger --pages (now {}), or filter with -c or -p",
                o.pages
            ),
        );
    }
    if s.queue.dropped > 0 {
        say_lost(
            s.queue.dropped,
            "events",
            Cause::BufferFull,
            &format!(
                "the outputs fell more than --buffer ({}) behind; try a larger --buffer, a \
                 faster disk for the log, -q, or --no-log",
                size(s.buffer)
            ),
        );
    }
    if s.cut > 0 {
        let when = match s.cutoff {
            Some(Cutoff::SecondSignal) => "when a second signal said stop now".to_string(),
            _ => format!(
                "{} s after the stop; a faster disk for the log, or -q",
                monitor::DRAIN_LIMIT.as_secs()
            ),
        };
        say_lost(
            s.cut,
            "events",
            Cause::CutAtStop,
            &format!("still buffered, not written {when}"),
        );
    }
    if let Some(e) = &s.exit {
        probe::app::report::exit_losses(
            e,
            s.method,
            s.return_maxactive,
            s.return_recursion_misses,
            "written as unfinished",
            "not reported",
        );
    }
    if let Some(n @ 1..) = s.recursion_misses {
        let filtered = o.pid.is_some() || o.comm.is_some() || o.cgroup.is_some();
        say_lost(
            n,
            "events",
            Cause::KernelSkipped,
            &probe::app::report::entry_skips(s.method, filtered),
        );
    }
    if let (Some(e), 2..) = (&s.exit, o.verbose) {
        say(&format!(
            "[exit] stored={} matched={} missed_returns={} evicted={} unfinished={} no_entry={} \
             swept={}",
            e.stored, e.matched, e.missed_returns, e.evicted, e.unfinished, e.no_entry, e.swept
        ));
    }
    if o.verbose >= 2 {
        say(&match s.recursion_misses {
            Some(n) => format!("[loader] recursion misses: {n} (counted by this kernel)"),
            None => "[loader] recursion misses: not counted by this kernel (kprobe and \
                     tracepoint programs are counted since Linux 6.7)"
                .to_string(),
        });
        if let Some(n) = s.return_recursion_misses {
            say(&format!(
                "[loader] recursion misses of the return hooks: {n} (counted by this kernel)"
            ));
        }
    }
    if s.reader.malformed > 0 {
        say_lost(
            s.reader.malformed,
            "events",
            Cause::Malformed,
            "malformed records in the rings (a bug: please report it)",
        );
    }
    if s.output_stuck {
        say(
            "an output was still blocked in a write at exit (a hung disk or socket?); \
             its unwritten lines are counted below",
        );
    }
    // A reader of stdout that went away (`probe | head`) is not an error.
    for out in s.outputs.iter().filter(|w| !w.closed) {
        let mut parts = Vec::new();
        if out.skipped > 0 {
            parts.push(format!("{} skipped (too slow)", out.skipped));
        }
        if out.failed > 0 {
            let why = out.first_error.as_deref().unwrap_or("write error");
            parts.push(format!("{} failed ({why})", out.failed));
        }
        if !parts.is_empty() {
            say(&format!(
                "{}: {} of {} written, {}",
                out.name,
                out.written,
                s.received,
                parts.join(", ")
            ));
        }
    }
    if s.reader.out_of_order > 0 {
        say(&format!(
            "{} events reached their ring more than {} ms after they happened \
             and were written out of time order",
            s.reader.out_of_order,
            monitor::ORDER_WINDOW.as_millis()
        ));
    }
    say(&format!("received={} lost={}", s.received, s.lost()));
}
