//! The C↔Rust layouts, checked against BTF (`bpftool btf dump`, a
//! test-only tool): `struct event`, `struct inflight` and `struct config`
//! as the compiled probe declares them (bpf/probe.c keeps them in its BTF),
//! and the perf ring's structs as the running kernel declares them
//! (/sys/kernel/btf/vmlinux).
//! The Rust side's `offset_of!` assertions hold the code to its own
//! numbers; this holds those numbers to the C.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;

use probe::app::abi::{Event, Inflight, RawConfig, TopErrKey, TopKey, TopRow, TopValue};
use probe::ring::{MMAP_PAGE_RING_AT, MmapPageRing, PerfEventHeader, PerfRecordLost, RingPos};

/// A struct in BTF: its size, and each member's byte offset.
struct BtfStruct {
    size: usize,
    members: HashMap<String, usize>,
}

/// Every struct named `name` in the BTF of `file`, from `bpftool btf dump
/// file FILE format raw`: `[N] STRUCT 'name' size=S vlen=V` and then one
/// `'member' type_id=T bits_offset=B` line per member.
fn btf_struct(file: &str, name: &str) -> BtfStruct {
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", file, "format", "raw"])
        .output()
        .unwrap_or_else(|e| {
            panic!("bpftool is needed: apt-get install bpftool (scripts/test installs it): {e}")
        });
    assert!(out.status.success(), "bpftool on {file}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let head = format!("STRUCT '{name}' size=");
    let line = lines
        .find(|l| l.contains(&head))
        .unwrap_or_else(|| panic!("no struct {name} in the BTF of {file}"));
    let size = line
        .split(&head)
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let members = lines
        .take_while(|l| l.starts_with('\t'))
        .map(|l| {
            let member = l.trim().split('\'').nth(1).unwrap().to_string();
            let bits: usize = l.rsplit("bits_offset=").next().unwrap().parse().unwrap();
            assert_eq!(bits % 8, 0, "{member} is a bitfield");
            (member, bits / 8)
        })
        .collect();
    BtfStruct { size, members }
}

fn object(name: &str) -> String {
    format!("{}/{name}", env!("OUT_DIR"))
}

macro_rules! same_layout {
    ($btf:expr, $ty:ty, $($field:ident $(as $c:literal)?),+) => {{
        let btf = $btf;
        assert_eq!(btf.size, size_of::<$ty>(), "size of {}", stringify!($ty));
        let mut checked = 0;
        $(
            let c_name = same_layout!(@name $field $(as $c)?);
            assert_eq!(
                btf.members.get(c_name).copied(),
                Some(offset_of!($ty, $field)),
                "{}.{}",
                stringify!($ty),
                c_name
            );
            checked += 1;
        )+
        // Every C member has its Rust twin.
        assert_eq!(checked, btf.members.len(), "members of {}: {:?}", stringify!($ty), btf.members);
    }};
    (@name $field:ident as $c:literal) => { $c };
    (@name $field:ident) => { stringify!($field) };
}

#[test]
fn event_inflight_config_and_top_match_the_compiled_probe() {
    for file in ["probe.bpf.o", "probe_pidns.bpf.o"] {
        same_layout!(
            btf_struct(&object(file), "event"),
            Event,
            ts_ns,
            count,
            fd,
            pid,
            tgid,
            uid,
            cpu,
            syscall,
            flags,
            comm,
            preview,
            ret,
            lat_ns
        );
        same_layout!(
            btf_struct(&object(file), "inflight"),
            Inflight,
            event as "ev",
            buf,
            slots
        );
        same_layout!(
            btf_struct(&object(file), "config"),
            RawConfig,
            verbose,
            filter_tgid,
            self_tgid,
            filter_comm_set,
            filter_comm,
            filter_cgroup,
            exit_mode,
            pidns_dev,
            pidns_ino,
            top_by,
            syscalls,
            compat_status_off,
            ring_slots,
            target_leader_off,
            target_start_off,
            target_start_lo,
            target_start_hi
        );
        same_layout!(
            btf_struct(&object(file), "ring_pos"),
            RingPos,
            head,
            pad1,
            tail,
            pad2
        );
        same_layout!(
            btf_struct(&object(file), "top_key"),
            TopKey,
            tgid,
            tid,
            fd,
            syscall,
            pad,
            comm
        );
        same_layout!(
            btf_struct(&object(file), "top_value"),
            TopValue,
            bytes_req,
            bytes_xfer,
            lat_ns,
            comm,
            lat_hist,
            size_hist
        );
        same_layout!(btf_struct(&object(file), "top_row"), TopRow, v, key);
        same_layout!(
            btf_struct(&object(file), "top_err_key"),
            TopErrKey,
            key,
            err,
            pad
        );
    }
}

#[test]
fn the_perf_ring_structs_match_the_running_kernel() {
    let vmlinux = "/sys/kernel/btf/vmlinux";
    if !std::path::Path::new(vmlinux).exists() {
        eprintln!("skipped: this kernel has no BTF ({vmlinux})");
        return;
    }
    same_layout!(
        btf_struct(vmlinux, "perf_event_header"),
        PerfEventHeader,
        type_ as "type", misc, size
    );
    let page = btf_struct(vmlinux, "perf_event_mmap_page");
    for (field, at) in [
        ("data_head", offset_of!(MmapPageRing, data_head)),
        ("data_tail", offset_of!(MmapPageRing, data_tail)),
        ("data_offset", offset_of!(MmapPageRing, data_offset)),
        ("data_size", offset_of!(MmapPageRing, data_size)),
    ] {
        assert_eq!(
            page.members.get(field).copied(),
            Some(MMAP_PAGE_RING_AT + at),
            "{field}"
        );
    }
    // PERF_RECORD_LOST has no struct in the kernel (its layout is a
    // comment in perf_event.h): the count after the header and the id.
    assert_eq!(
        offset_of!(PerfRecordLost, lost),
        size_of::<PerfEventHeader>() + 8
    );
}
