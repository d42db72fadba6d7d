//! The `probe` command: parses flags, checks privileges, runs the monitor
//! and reports. Exit codes: 0 done, 1 error, 2 bad usage.

use std::io::Write;
use std::process::ExitCode;

use probe::cli::{self, Command, Options};
use probe::monitor::{self, Summary};
use probe::output::say;
use probe::{privileges, signals};

fn main() -> ExitCode {
    // First of all, so that a Ctrl+C at any later moment of a run waits
    // for the monitor to take it (see signals.rs), before or after
    // attaching. Only a signal before this line kills it, when it has
    // done nothing yet.
    signals::block();
    let command = cli::parse(std::env::args_os().skip(1));
    if !matches!(command, Ok(Command::Run(_))) {
        // The rest may block on a file (inspect): Ctrl+C as usual.
        signals::unblock();
    }
    // Written with errors ignored: `probe --help | head -1` is no error.
    match command {
        Err(cli::UsageError(message)) => {
            // It quotes the user's bytes: one line whatever they are.
            say(&probe::output::format::printable(message.as_bytes()));
            let _ = writeln!(std::io::stderr(), "{}", cli::USAGE);
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
        Ok(Command::Inspect(path)) => finish(probe::inspect::run(&path)),
        Ok(Command::Run(options)) => finish(run(&options)),
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

fn run(options: &Options) -> anyhow::Result<()> {
    privileges::check()?;
    privileges::raise_memlock();
    let summary = monitor::run(options)?;
    report(&summary);
    Ok(())
}

fn report(s: &Summary) {
    if s.lost() > 0 {
        say(&format!(
            "lost {} events: {} the kernel could not put in a ring (rings full; \
             perf reported {}), {} read too fast for the output, {} malformed; \
             try a larger --pages, -q, or --no-log",
            s.lost(),
            s.kernel_dropped,
            s.reader.ring_lost,
            s.output_dropped,
            s.reader.malformed
        ));
    }
    if s.output_stuck {
        say(
            "the output was still blocked in a write at exit (stdout not read?); \
             its unwritten lines are counted below",
        );
    }
    // A reader of stdout that went away (`probe | head`) is not an error.
    for w in s.console.iter().chain(s.log.iter()) {
        if w.failed > 0 && !w.closed {
            let why = w
                .first_error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            say(&format!(
                "{}: {} lines could not be written ({why})",
                w.name, w.failed
            ));
        }
    }
    say(&format!("received={} lost={}", s.received, s.lost()));
}
