//! An embedder's program, start to end: it loads its *own* BPF object
//! (bpf/examples/exec_count.c, which counts execve calls per process name
//! in a hash map) through probe's library, and prints the counts on Ctrl+C.
//!
//! sudo cargo run --release --example exec_count

use anyhow::Result;
use probe::attach::{self, Attachment, Method};
use probe::loader::{self, Loaded};
use probe::{cpus, obj};

const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec_count.bpf.o"));

/// Parse, create the maps, load and attach: counting runs from here on.
fn start() -> Result<(Loaded, Attachment)> {
    loader::raise_memlock();
    let loaded = Loaded::create_maps(obj::parse(OBJECT)?, cpus::possible_count()?)?;
    let attachment = attach::attach(&loaded, Some(Method::Tracepoint))?;
    Ok((loaded, attachment))
}

/// Every (process name, execs) the kernel counted, most first.
fn counts(loaded: &Loaded) -> Result<Vec<(String, u64)>> {
    let map = loaded.map("exec_counts")?;
    let mut counts = Vec::new();
    for key in map.keys() {
        let key = key?;
        let mut value = [0u8; 8];
        map.lookup(&key, &mut value)?;
        let name = key.split(|&b| b == 0).next().unwrap_or_default();
        counts.push((
            String::from_utf8_lossy(name).into_owned(),
            u64::from_ne_bytes(value),
        ));
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    Ok(counts)
}

fn main() -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut ctrl_c = SigSet::empty();
    ctrl_c.add(Signal::SIGINT);
    ctrl_c.thread_block()?;
    let (loaded, attachment) = start()?;
    eprintln!("counting execve calls per process name; Ctrl+C prints them");
    ctrl_c.wait()?;
    attachment.detach();
    for (name, n) in counts(&loaded)? {
        println!("{n:8} {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// cargo test runs this: seven execs from a thread of a known name
    /// (by full path: a bare name is one execve per PATH entry tried).
    #[test]
    fn counts_the_execs_of_a_named_thread() {
        if unsafe { libc::geteuid() } != 0 {
            assert!(
                std::env::var_os("PROBE_TESTS_NEED_ROOT").is_none(),
                "needs root"
            );
            return eprintln!("skipped: loading BPF needs root (sudo cargo test)");
        }
        let (loaded, attachment) = super::start().unwrap();
        let runner = std::thread::Builder::new().name("exec-counted".into());
        let status = runner.spawn(|| {
            (0..7).all(|_| {
                std::process::Command::new("/bin/true")
                    .status()
                    .is_ok_and(|s| s.success())
            })
        });
        assert!(status.unwrap().join().unwrap());
        attachment.detach();
        let counts = super::counts(&loaded).unwrap();
        assert!(
            counts.contains(&("exec-counted".to_string(), 7)),
            "{counts:?}"
        );
    }
}
