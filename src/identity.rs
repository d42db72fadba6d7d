//! Who the monitor is, as the kernel sees it.
//!
//! BPF programs see every task with its ids in the *initial* pid namespace
//! (`bpf_get_current_pid_tgid`), while a monitor in a container knows only
//! the ids of its own namespace (`getpid()` there may be 1). So:
//!
//! - in the initial pid namespace, `getpid()` is the kernel's tgid;
//! - elsewhere, the monitor asks the kernel: it loads a three-instruction
//!   program that returns `bpf_get_current_pid_tgid() >> 32`, and runs it
//!   on its own thread with `BPF_PROG_TEST_RUN` (raw tracepoint programs can
//!   be test-run since Linux 5.10). Older kernels cannot answer, and the
//!   monitor says so rather than report itself.
//!
//! The answer names the monitor's legacy kprobes too: unique on the machine,
//! where two containers may each have a pid 1.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;

use anyhow::{Result, anyhow};

use crate::app::abi::PidNs;
use crate::obj::Insn;
use crate::sys::bpf;

/// The inode numbers of the initial namespaces: fixed by the kernel
/// (PROC_PID_INIT_INO, PROC_USER_INIT_INO in include/linux/proc_ns.h).
const INITIAL_PID_NS_INO: u64 = 0xEFFF_FFFC;
const INITIAL_USER_NS_INO: u64 = 0xEFFF_FFFD;

fn ns(kind: &str) -> io::Result<PidNs> {
    let meta = std::fs::metadata(format!("/proc/self/ns/{kind}"))?;
    Ok(PidNs {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// This process's pid namespace.
pub fn own_pid_ns() -> io::Result<PidNs> {
    ns("pid")
}

/// True in the host's pid namespace (and when it cannot be told: then
/// there is no namespace support to speak of).
pub fn in_initial_pid_ns() -> bool {
    own_pid_ns().map_or(true, |n| n.ino == INITIAL_PID_NS_INO)
}

/// True in the host's user namespace: false in a rootless container, where
/// root's capabilities hold only inside the namespace.
pub fn in_initial_user_ns() -> bool {
    ns("user").map_or(true, |n| n.ino == INITIAL_USER_NS_INO)
}

/// A process of this id exists in this process's pid namespace (kill(2)
/// with signal 0 looks it up there, whatever /proc shows).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The program: `return bpf_get_current_pid_tgid() >> 32;`.
const WHOAMI: [Insn; 3] = [
    // call bpf_get_current_pid_tgid (helper 14)
    Insn {
        code: 0x85,
        regs: 0,
        off: 0,
        imm: 14,
    },
    // r0 >>= 32 (BPF_ALU64 | BPF_RSH | BPF_K)
    Insn {
        code: 0x77,
        regs: 0,
        off: 0,
        imm: 32,
    },
    // exit
    Insn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    },
];

fn ask_the_kernel() -> io::Result<u32> {
    let license = CString::new("GPL").expect("no NUL");
    let prog = bpf::prog_load(
        &bpf::ProgLoad {
            name: "whoami",
            prog_type: bpf::BPF_PROG_TYPE_RAW_TRACEPOINT,
            insns: &WHOAMI,
            license: &license,
            kern_version: 0,
            btf: None,
        },
        None,
    )?;
    bpf::prog_test_run(prog.as_fd())
}

/// The monitor's process id as BPF programs see it (the host's).
pub fn kernel_tgid() -> Result<u32> {
    static TGID: OnceLock<Result<u32, String>> = OnceLock::new();
    TGID.get_or_init(|| {
        if in_initial_pid_ns() {
            return Ok(std::process::id());
        }
        ask_the_kernel().map_err(|e| {
            format!(
                "running in a pid namespace (a container), where only the kernel knows the \
                 probe's own process id, and this kernel cannot say it ({e}; that needs \
                 Linux 5.10): run it in the host's pid namespace (docker run --pid=host)"
            )
        })
    })
    .clone()
    .map_err(|e| anyhow!(e))
}
