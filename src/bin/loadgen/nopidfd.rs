//! `--no-pidfd-open PROGRAM ARGS...`: runs PROGRAM with pidfd_open(2)
//! failing with EPERM, as a container's seccomp profile that does not know
//! the call makes it fail (the probe then watches /proc instead).

use std::ffi::CString;

/// seccomp's classic BPF: `struct sock_filter`.
const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_ABS_W: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// Installs the filter, then execs `argv`; returns only on failure.
pub fn exec(argv: &[String]) -> String {
    // seccomp_data: nr at 0, arch at 4.
    let filter = [
        insn(LD_ABS_W, 0, 0, 4),
        insn(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        insn(LD_ABS_W, 0, 0, 0),
        insn(JEQ_K, 0, 1, libc::SYS_pidfd_open as u32),
        insn(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        insn(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let Ok(args) = argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return "an argument holds a NUL byte".into();
    };
    let Some(program) = args.first() else {
        return "--no-pidfd-open needs a program to run".into();
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: prctl reads `prog` (alive across the call); execvp takes
    // NUL-terminated strings and a NULL-terminated array, both alive.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
        {
            return format!("seccomp: {}", std::io::Error::last_os_error());
        }
        libc::execvp(program.as_ptr(), ptrs.as_ptr());
    }
    format!("exec {}: {}", argv[0], std::io::Error::last_os_error())
}
