//! The `probe` command: parses flags, checks privileges, runs the monitor
//! and reports. Exit codes: 0 done, 1 error, 2 bad usage.

use std::process::ExitCode;

use probe::cli::{self, Command, Options};
use probe::monitor::{self, Summary};
use probe::{privileges, signals};

fn main() -> ExitCode {
    match cli::parse(std::env::args_os().skip(1)) {
        Err(cli::UsageError(message)) => {
            eprintln!("probe: {message}\n{}", cli::USAGE);
            ExitCode::from(2)
        }
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("probe {}", env!("CARGO_PKG_VERSION"));
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
            eprintln!("probe: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(options: &Options) -> anyhow::Result<()> {
    privileges::check()?;
    // Before any thread exists, so that every thread inherits the mask.
    signals::block();
    privileges::raise_memlock();
    let summary = monitor::run(options)?;
    report(&summary);
    Ok(())
}

fn report(s: &Summary) {
    if s.lost() > 0 {
        eprintln!(
            "probe: lost {} events: {} the kernel could not put in a ring (rings full; \
             perf reported {}), {} read too fast for the output, {} malformed; \
             try a larger --pages, -q, or --no-log",
            s.lost(),
            s.kernel_dropped,
            s.reader.ring_lost,
            s.output_dropped,
            s.reader.malformed
        );
    }
    if s.output_stuck {
        eprintln!(
            "probe: the output did not finish in time (stdout blocked?): its last lines are lost"
        );
    }
    for w in s.console.iter().chain(s.log.iter()) {
        if w.failed > 0 && !w.closed {
            let why = w
                .first_error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
            eprintln!(
                "probe: {}: {} lines could not be written ({why})",
                w.name, w.failed
            );
        }
    }
    eprintln!("probe: received={} lost={}", s.received, s.lost());
}
