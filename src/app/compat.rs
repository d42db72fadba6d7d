//! ia32 system calls on a 64-bit kernel. A 32-bit program's calls have
//! their own numbers (ia32 3 is `read`, 4 `write`; ia32 0, 1, 17-20 are
//! other calls entirely), and the raw `sys_enter`/`sys_exit` tracepoints
//! pass them with no word of which table they come from. The kernel knows:
//! while a 32-bit call runs, TS_COMPAT is set in the task's
//! `thread_info.status` (what in_ia32_syscall() tests, and what the
//! `syscalls:*` tracepoints skip compat calls by). The raw tracepoint
//! programs read that word, at an offset in task_struct that differs
//! between kernels: this finds it.

use crate::loader;
use crate::obj::btf::Btf;

/// Where `thread_info.status` is from the start of the task_struct, and
/// how that was found (for -v).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusOffset {
    pub offset: u32,
    pub source: String,
}

/// From the kernel version: x86-64's thread_info is the first member of
/// task_struct (since 4.9, THREAD_INFO_IN_TASK) and is { flags; status }
/// before 5.11 and { flags; syscall_work; status; ... } since. Reading
/// the kernel's BTF would say the same for 6 MB of reading and parsing at
/// every start (+8 ms and +6 MiB of peak memory, measured): the tests and
/// the VM matrix check that it does, through `PROBE_BTF=FILE`, which takes
/// the offset from that BTF file instead (/sys/kernel/btf/vmlinux, or
/// another kernel's) for a kernel whose layout the rule would not know.
pub fn status_offset() -> StatusOffset {
    match std::env::var_os("PROBE_BTF") {
        Some(path) => from_btf(std::path::Path::new(&path)),
        None => StatusOffset {
            offset: by_version(),
            source: "for this kernel version".into(),
        },
    }
}

fn by_version() -> u32 {
    if loader::kernel_at_least(5, 11) {
        16
    } else {
        8
    }
}

/// The offset in the BTF file at `path`; the version rule when it cannot
/// be read or does not say (and `source` says why).
fn from_btf(path: &std::path::Path) -> StatusOffset {
    let found = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|data| {
            let btf = Btf::parse(&data)?;
            btf.member_offset("task_struct", &["thread_info", "status"])
                .ok_or_else(|| "no task_struct.thread_info.status in it".to_string())
        });
    match found {
        Ok(offset) => StatusOffset {
            offset,
            source: format!("from {}", path.display()),
        },
        Err(why) => StatusOffset {
            offset: by_version(),
            source: format!("for this kernel version ({}: {why})", path.display()),
        },
    }
}
