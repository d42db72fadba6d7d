//! Compiles the C probe in `bpf/` to a BPF ELF object with clang, into
//! OUT_DIR, where `include_bytes!` embeds it in the binary. Also compiles the
//! loader's test fixtures in `bpf/tests/`, the benchmark's floor program in
//! `bpf/bench/` and the embedder's example in `bpf/examples/`, which are
//! never shipped in the probe.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

/// (source, object, extra clang flags).
const OBJECTS: &[(&str, &str, &[&str])] = &[
    ("bpf/probe.c", "probe.bpf.o", &[]),
    ("bpf/probe.c", "probe_pidns.bpf.o", &["-DPIDNS_FILTER"]),
    ("bpf/tests/subprog.c", "subprog.bpf.o", &[]),
    ("bpf/tests/ring_writer.c", "ring_writer.bpf.o", &[]),
    ("bpf/tests/rejected.c", "rejected.bpf.o", &[]),
    ("bpf/bench/count_floor.c", "count_floor.bpf.o", &[]),
    ("bpf/examples/exec_count.c", "exec_count.bpf.o", &[]),
];

fn main() {
    println!("cargo:rerun-if-changed=bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = find_clang().unwrap_or_else(|| {
        fail(
            "clang not found (looked at $CLANG, clang, clang-20 .. clang-11): \
             install it with `sudo apt-get install clang`, or set CLANG=/path/to/clang",
        )
    });
    // DWARF is for debuggers; the loader reads BTF (.BTF, .BTF.ext), which
    // stays. Without llvm-strip the objects keep their DWARF: larger, the
    // same to the loader.
    let strip = find_tool("LLVM_STRIP", "llvm-strip");
    for (source, object, flags) in OBJECTS {
        let object = out_dir.join(object);
        compile(&clang, Path::new(source), &object, flags);
        if let Some(strip) = &strip {
            let stripped = Command::new(strip)
                .arg("--strip-debug")
                .arg(&object)
                .status()
                .is_ok_and(|s| s.success());
            if !stripped {
                fail(&format!(
                    "{strip} --strip-debug {} failed",
                    object.display()
                ));
            }
        }
    }
}

/// $VAR, NAME, or NAME-20 .. NAME-11: the first that runs.
fn find_tool(var: &str, name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={var}");
    let mut candidates: Vec<String> = env::var(var).ok().into_iter().collect();
    candidates.push(name.into());
    candidates.extend((11..=20).rev().map(|v| format!("{name}-{v}")));
    candidates.into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn find_clang() -> Option<String> {
    find_tool("CLANG", "clang")
}

fn compile(clang: &str, source: &Path, object: &Path, flags: &[&str]) {
    let status = Command::new(clang)
        .args(["-target", "bpf", "-O2", "-g", "-Wall", "-c"])
        .args(flags)
        .arg(source)
        .arg("-o")
        .arg(object)
        .status()
        .unwrap_or_else(|e| fail(&format!("could not run {clang}: {e}")));
    if !status.success() {
        fail(&format!(
            "{clang} failed to compile {}: see its messages above",
            source.display()
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1)
}
