//! `replay FILE|DIR...`: runs the fuzz check on each file (a directory: on
//! each file in it), without libFuzzer, and says which ones fail.

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            files(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut inputs = Vec::new();
    for arg in std::env::args_os().skip(1) {
        if let Err(e) = files(Path::new(&arg), &mut inputs) {
            eprintln!("replay: {}: {e}", Path::new(&arg).display());
            return ExitCode::from(2);
        }
    }
    if inputs.is_empty() {
        eprintln!("usage: replay FILE|DIR...");
        return ExitCode::from(2);
    }
    let mut failed = 0;
    for path in &inputs {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("replay: {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        if catch_unwind(|| probe_fuzz::parse_one(&data)).is_err() {
            eprintln!("replay: {}: FAILED (see the panic above)", path.display());
            failed += 1;
        }
    }
    println!("replay: {} inputs, {failed} failed", inputs.len());
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
