//! Runs a BPF object written in another style through our library, for
//! the tests and the VM matrix (a test tool, not part of `probe`):
//! parses it, sets global variables by name, creates its maps, attaches
//! its programs, makes N getppid calls from this process, detaches, and
//! prints what the programs left:
//!
//! objrun OBJECT [--set NAME=self|parent|NUMBER]... [--attach METHOD]
//!        [--getppid N] [--btf FILE]
//!
//! Prints, one per line: `note ...` (what loading changed), `global
//! NAME=VALUE` for every global variable (decimal for 4 and 8 bytes, hex
//! otherwise), `map NAME entries=K self=V` for every hash map keyed by a
//! u32 (V: the u64 at this process's id, or `none`), `core ...` for each
//! CO-RE relocation applied. Exit status 0, or 1 with one line on stderr.

use std::process::exit;

use anyhow::{Context, Result, anyhow, bail};
use probe::attach::{self, Method};
use probe::loader::{self, Loaded};
use probe::{cpus, obj};

struct Args {
    object: String,
    sets: Vec<(String, String)>,
    method: Option<Method>,
    getppid: u64,
    btf: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        object: String::new(),
        sets: Vec::new(),
        method: None,
        getppid: 0,
        btf: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().ok_or_else(|| anyhow!("{what} needs a value"));
        match arg.as_str() {
            "--set" => {
                let v = value("--set")?;
                let (name, val) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--set NAME=VALUE, not {v}"))?;
                a.sets.push((name.into(), val.into()));
            }
            "--attach" => {
                let v = value("--attach")?;
                a.method = Some(Method::parse(&v).ok_or_else(|| anyhow!("no method {v}"))?);
            }
            "--getppid" => a.getppid = value("--getppid")?.parse()?,
            "--btf" => a.btf = Some(value("--btf")?),
            _ if a.object.is_empty() && !arg.starts_with('-') => a.object = arg,
            _ => bail!("unknown argument {arg}"),
        }
    }
    if a.object.is_empty() {
        bail!("usage: objrun OBJECT [--set NAME=VALUE]... [--attach METHOD] [--getppid N]");
    }
    Ok(a)
}

/// `self`, `parent` or a number, as the variable's size in bytes.
fn value_bytes(value: &str, size: u64) -> Result<Vec<u8>> {
    let n: u64 = match value {
        // SAFETY: neither call has arguments or can fail.
        "self" => u64::from(unsafe { libc::getpid() } as u32),
        "parent" => u64::from(unsafe { libc::getppid() } as u32),
        v => v.parse().with_context(|| format!("not a number: {v}"))?,
    };
    Ok(match size {
        4 => (n as u32).to_ne_bytes().to_vec(),
        8 => n.to_ne_bytes().to_vec(),
        1 => vec![n as u8],
        s => bail!("a variable of {s} bytes cannot be set from a number"),
    })
}

fn shown(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => u32::from_ne_bytes(bytes.try_into().unwrap_or_default()).to_string(),
        8 => u64::from_ne_bytes(bytes.try_into().unwrap_or_default()).to_string(),
        _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn run(a: Args) -> Result<()> {
    let bytes = std::fs::read(&a.object).with_context(|| format!("cannot read {}", a.object))?;
    let mut spec = obj::parse(&bytes)?;
    for (name, value) in &a.sets {
        let size = spec
            .global(name)
            .ok_or_else(|| anyhow!("no global variable {name}"))?
            .size;
        spec.set_global(name, &value_bytes(value, size)?)?;
    }
    loader::raise_memlock();
    let mut loaded = Loaded::create_maps(spec, cpus::possible_count()?)?;
    if let Some(btf) = &a.btf {
        loaded.set_target_btf(std::path::Path::new(btf));
    }
    for note in loaded.notes() {
        println!("note {note}");
    }
    let attachment = attach::attach(&loaded, a.method)?;
    for line in loaded.core_applied() {
        println!("core {line}");
    }
    for _ in 0..a.getppid {
        // SAFETY: no arguments, cannot fail.
        unsafe { libc::getppid() };
    }
    attachment.detach();
    let me = (unsafe { libc::getpid() } as u32).to_ne_bytes();
    let mut globals: Vec<_> = loaded.spec.globals.clone();
    globals.sort_by(|x, y| x.name.cmp(&y.name));
    for g in &globals {
        println!("global {}={}", g.name, shown(&loaded.global(&g.name)?));
    }
    for m in &loaded.spec.maps {
        // Hashes keyed by a u32 with u64 values.
        if !matches!(m.map_type, 1 | 9) || m.key_size != 4 || m.value_size != 8 {
            continue;
        }
        let map = loaded.map(&m.name)?;
        let entries = map.keys().count();
        let mut value = [0u8; 8];
        let mine = match map.lookup(&me, &mut value) {
            Ok(()) => u64::from_ne_bytes(value).to_string(),
            Err(_) => "none".into(),
        };
        println!("map {} entries={entries} self={mine}", m.name);
    }
    Ok(())
}

fn main() {
    if let Err(e) = args().and_then(run) {
        eprintln!("objrun: {e:#}");
        exit(1);
    }
}
