//! bpf(2): map create, update, lookup; program load, test run, info.
//!
//! Each command takes its own prefix of `union bpf_attr`; we pass a struct
//! holding exactly that prefix and its size, which every kernel since 4.15
//! accepts (fields it does not know must be zero, and we send none).
//!
//! The map element calls are `unsafe`: the kernel copies the *map's* key
//! and value sizes to and from the pointers it is given, whatever the
//! slices' lengths. `loader::Map` is the safe way in: it knows the sizes and
//! checks every buffer first.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::explain::{self, Fd};
use crate::obj::Insn;

const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_int = 4;
const BPF_MAP_LOOKUP_BATCH: libc::c_int = 24;
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TEST_RUN: libc::c_int = 10;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_int = 17;
const BPF_BTF_LOAD: libc::c_int = 18;
const BPF_MAP_FREEZE: libc::c_int = 22;

// Program and map types used here: `enum bpf_prog_type` and
// `enum bpf_map_type` of include/uapi/linux/bpf.h, the kernel's ABI.
/// A kprobe (or kretprobe) program.
pub const BPF_PROG_TYPE_KPROBE: u32 = 2;
/// A program on a perf tracepoint (`syscalls/sys_enter_read`, say).
pub const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
/// A program on a raw tracepoint: the tracepoint's own arguments.
pub const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;

/// A hash table.
pub const BPF_MAP_TYPE_HASH: u32 = 1;
/// An array: keys are 0 to max_entries - 1, all present.
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
/// One perf event per CPU, for `bpf_perf_event_output`.
pub const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// A hash table with a value per possible CPU.
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
/// An array with a value per possible CPU.
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
/// Cgroup directory fds, for `bpf_current_task_under_cgroup`.
pub const BPF_MAP_TYPE_CGROUP_ARRAY: u32 = 8;
/// A hash table that evicts its least recently used entries when full.
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// A per-CPU hash table that evicts its least recently used entries.
pub const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
/// A FIFO of values, no keys (4.20).
pub const BPF_MAP_TYPE_QUEUE: u32 = 22;
/// `map_flags`: an array user space can mmap (5.5).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Object names are 16 bytes with the NUL; the kernel allows [A-Za-z0-9_.].
const OBJ_NAME_LEN: usize = 16;

fn map_type_name(t: u32) -> String {
    match t {
        BPF_MAP_TYPE_HASH => "BPF_MAP_TYPE_HASH".into(),
        BPF_MAP_TYPE_ARRAY => "BPF_MAP_TYPE_ARRAY".into(),
        BPF_MAP_TYPE_PERF_EVENT_ARRAY => "BPF_MAP_TYPE_PERF_EVENT_ARRAY".into(),
        BPF_MAP_TYPE_PERCPU_HASH => "BPF_MAP_TYPE_PERCPU_HASH".into(),
        BPF_MAP_TYPE_PERCPU_ARRAY => "BPF_MAP_TYPE_PERCPU_ARRAY".into(),
        BPF_MAP_TYPE_CGROUP_ARRAY => "BPF_MAP_TYPE_CGROUP_ARRAY".into(),
        BPF_MAP_TYPE_LRU_HASH => "BPF_MAP_TYPE_LRU_HASH".into(),
        BPF_MAP_TYPE_LRU_PERCPU_HASH => "BPF_MAP_TYPE_LRU_PERCPU_HASH".into(),
        BPF_MAP_TYPE_QUEUE => "BPF_MAP_TYPE_QUEUE".into(),
        t => t.to_string(),
    }
}

fn prog_type_name(t: u32) -> String {
    match t {
        BPF_PROG_TYPE_KPROBE => "BPF_PROG_TYPE_KPROBE".into(),
        BPF_PROG_TYPE_TRACEPOINT => "BPF_PROG_TYPE_TRACEPOINT".into(),
        BPF_PROG_TYPE_RAW_TRACEPOINT => "BPF_PROG_TYPE_RAW_TRACEPOINT".into(),
        t => t.to_string(),
    }
}

#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; OBJ_NAME_LEN],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
}

const _: () = {
    assert!(std::mem::offset_of!(MapCreateAttr, btf_fd) == 48);
    assert!(std::mem::offset_of!(MapCreateAttr, btf_value_type_id) == 56);
};

/// BPF_MAP_FREEZE's part of union bpf_attr: the map alone.
#[repr(C)]
struct MapFreezeAttr {
    map_fd: u32,
}

/// The `BPF_BTF_LOAD` member of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct BtfLoadAttr {
    btf: u64,
    btf_log_buf: u64,
    btf_size: u32,
    btf_log_size: u32,
    btf_log_level: u32,
    /// Named so that it is zeroed: the kernel refuses nonzero bytes past
    /// the fields it knows, and padding is not initialized.
    btf_flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The `batch` member of union bpf_attr (BPF_MAP_*_BATCH, Linux 5.6).
#[repr(C)]
#[derive(Default)]
struct MapBatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; OBJ_NAME_LEN],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    /// Named so that it is zeroed (see BtfLoadAttr::btf_flags).
    attach_btf_id: u32,
}

const _: () = {
    assert!(std::mem::offset_of!(ProgLoadAttr, prog_btf_fd) == 72);
    assert!(std::mem::offset_of!(ProgLoadAttr, func_info) == 80);
    assert!(std::mem::offset_of!(ProgLoadAttr, line_info) == 96);
    assert!(std::mem::offset_of!(ProgLoadAttr, line_info_cnt) == 104);
};

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
}

/// The `raw_tracepoint` member of union bpf_attr (4.17+); 6.10 added a
/// cookie after it, which zero bytes beyond these leave unset.
#[repr(C)]
#[derive(Default)]
struct RawTracepointAttr {
    name: u64,
    prog_fd: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` (include/uapi/linux/bpf.h), field for field:
/// the kernel fills as much of it as it knows and says how much. The fields
/// are the kernel's, documented there; those this crate reads are
/// documented here too.
#[allow(missing_docs)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub tag: [u8; 8],
    pub jited_prog_len: u32,
    pub xlated_prog_len: u32,
    pub jited_prog_insns: u64,
    pub xlated_prog_insns: u64,
    pub load_time: u64,
    pub created_by_uid: u32,
    pub nr_map_ids: u32,
    pub map_ids: u64,
    pub name: [u8; OBJ_NAME_LEN],
    pub ifindex: u32,
    pub gpl_compatible: u32,
    pub netns_dev: u64,
    pub netns_ino: u64,
    pub nr_jited_ksyms: u32,
    pub nr_jited_func_lens: u32,
    pub jited_ksyms: u64,
    pub jited_func_lens: u64,
    pub btf_id: u32,
    pub func_info_rec_size: u32,
    pub func_info: u64,
    pub nr_func_info: u32,
    pub nr_line_info: u32,
    pub line_info: u64,
    pub jited_line_info: u64,
    pub nr_jited_line_info: u32,
    pub line_info_rec_size: u32,
    pub jited_line_info_rec_size: u32,
    pub nr_prog_tags: u32,
    pub prog_tags: u64,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    /// Linux 5.12+.
    pub recursion_misses: u64,
    /// Linux 5.16+.
    pub verified_insns: u32,
    pub attach_btf_obj_id: u32,
    pub attach_btf_id: u32,
    pub pad: u32,
}

const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(ProgInfo, name) == 64);
    assert!(offset_of!(ProgInfo, btf_id) == 128);
    assert!(offset_of!(ProgInfo, run_time_ns) == 192);
    assert!(offset_of!(ProgInfo, recursion_misses) == 208);
    assert!(offset_of!(ProgInfo, verified_insns) == 216);
    assert!(size_of::<ProgInfo>() == 232);
};

/// How much of `ProgInfo` a kernel must fill to know `recursion_misses`
/// (Linux 5.12+).
pub const PROG_INFO_RECURSION_MISSES_END: u32 = 216;
/// How much of `ProgInfo` a kernel must fill to know `verified_insns`
/// (Linux 5.16+).
pub const PROG_INFO_VERIFIED_INSNS_END: u32 = 220;

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, fully initialised #[repr(C)] prefix of
    // union bpf_attr, and its exact size is passed along with it; every
    // pointer inside it is valid for what the command does with it (each
    // caller's job).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    super::check(ret)
}

fn new_fd(ret: io::Result<libc::c_long>, what: impl FnOnce() -> String) -> io::Result<Fd> {
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    ret.map(|fd| unsafe { Fd::from_raw(fd as i32, what) })
}

/// The name the kernel shows for a map or program: truncated to 15 bytes,
/// characters it would refuse dropped.
fn object_name(name: &str) -> [u8; OBJ_NAME_LEN] {
    let mut out = [0u8; OBJ_NAME_LEN];
    let allowed = name
        .bytes()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.');
    for (slot, b) in out.iter_mut().zip(allowed).take(OBJ_NAME_LEN - 1) {
        *slot = b;
    }
    out
}

fn shown_name(name: &[u8; OBJ_NAME_LEN]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(OBJ_NAME_LEN);
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// What `map_create` asks for.
pub struct MapDef<'a> {
    /// The name the kernel keeps (15 bytes of it, see `object_name`).
    pub name: &'a str,
    /// One of the `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Bytes per key.
    pub key_size: u32,
    /// Bytes per value (per CPU, for a per-CPU map).
    pub value_size: u32,
    /// How many entries it can hold.
    pub max_entries: u32,
    /// `map_flags` (BPF_F_NO_PREALLOC, ...).
    pub flags: u32,
    /// The object's BTF with the key's and value's type ids in it, so
    /// that bpftool can show entries as C values.
    pub btf: Option<MapBtf<'a>>,
}

/// A map's key and value types, in a loaded BTF.
#[derive(Clone, Copy)]
pub struct MapBtf<'a> {
    /// The loaded BTF.
    pub fd: BorrowedFd<'a>,
    /// The key's type id (0: none).
    pub key_type_id: u32,
    /// The value's type id.
    pub value_type_id: u32,
}

/// Creates a map; the fd keeps it alive.
pub fn map_create(def: &MapDef) -> io::Result<Fd> {
    let mut attr = MapCreateAttr {
        map_type: def.map_type,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        map_flags: def.flags,
        map_name: object_name(def.name),
        ..Default::default()
    };
    if let Some(btf) = def.btf {
        attr.btf_fd = btf.fd.as_raw_fd() as u32;
        attr.btf_key_type_id = btf.key_type_id;
        attr.btf_value_type_id = btf.value_type_id;
    }
    let name = shown_name(&attr.map_name);
    let r = new_fd(bpf(BPF_MAP_CREATE, &mut attr), || format!("map:{name}"));
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_CREATE, {{map_type={}, key_size={}, value_size={}, max_entries={}, \
                 map_flags={:#x}, map_name=\"{name}\"{}}})",
                map_type_name(def.map_type),
                def.key_size,
                def.value_size,
                def.max_entries,
                def.flags,
                match def.btf {
                    Some(b) => format!(
                        ", btf_fd={}, btf_key_type_id={}, btf_value_type_id={}",
                        explain::borrowed(b.fd),
                        b.key_type_id,
                        b.value_type_id
                    ),
                    None => String::new(),
                }
            )
        },
        || Fd::told(&r),
    );
    r
}

/// Writes the value at `key`.
///
/// # Safety
/// `key` must point to the map's key size in bytes and `value` to its value
/// size (times the possible CPUs, each rounded up to 8, for a per-CPU
/// map): the kernel reads that many, whatever the slices say.
pub unsafe fn map_update(map: BorrowedFd, key: &[u8], value: &[u8]) -> io::Result<()> {
    // SAFETY: passed on: the caller vouches for both sizes.
    unsafe { update_elem(map, Some(key), value) }
}

/// BPF_MAP_UPDATE_ELEM with a key, or none (a queue's push).
///
/// # Safety
/// As for `map_update`.
unsafe fn update_elem(map: BorrowedFd, key: Option<&[u8]>, value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        value: value.as_ptr() as u64,
        ..Default::default()
    };
    let r = bpf(BPF_MAP_UPDATE_ELEM, &mut attr);
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_UPDATE_ELEM, {{map_fd={}, key={}, value={}, flags=BPF_ANY}})",
                explain::borrowed(map),
                key.map_or("NULL".into(), shown_bytes),
                shown_bytes(value)
            )
        },
        || explain::result(&r),
    );
    r.map(drop)
}

/// Reads the value at `key` into `value`.
///
/// # Safety
/// As for `map_update`, and more so: the kernel *writes* the map's value
/// size (times the possible CPUs, each rounded up to 8, for a per-CPU map)
/// into `value`.
pub unsafe fn map_lookup(map: BorrowedFd, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        ..Default::default()
    };
    let r = bpf(BPF_MAP_LOOKUP_ELEM, &mut attr);
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_LOOKUP_ELEM, {{map_fd={}, key={}, value=<{} bytes>}})",
                explain::borrowed(map),
                shown_bytes(key),
                value.len()
            )
        },
        || explain::result(&r),
    );
    r.map(drop)
}

/// Pushes `value` into a queue or stack map (BPF_MAP_UPDATE_ELEM with no
/// key). E2BIG: the map is full.
///
/// # Safety
/// `value` must hold the map's value size in bytes: the kernel reads that
/// many.
pub unsafe fn map_push(map: BorrowedFd, value: &[u8]) -> io::Result<()> {
    // SAFETY: passed on: the caller vouches for the value's size.
    unsafe { update_elem(map, None, value) }
}

/// Removes the element at `key`. ENOENT: there was none.
///
/// # Safety
/// `key` must point to the map's key size in bytes: the kernel reads that
/// many, whatever the slice says.
pub unsafe fn map_delete(map: BorrowedFd, key: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        ..Default::default()
    };
    let r = bpf(BPF_MAP_DELETE_ELEM, &mut attr);
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_DELETE_ELEM, {{map_fd={}, key={}}})",
                explain::borrowed(map),
                shown_bytes(key)
            )
        },
        || explain::result(&r),
    );
    r.map(drop)
}

/// Writes into `next` the key after `key` (the first key when None).
/// ENOENT: there is none.
///
/// # Safety
/// `key` must hold the map's key size in bytes, and `next` room for as
/// many: the kernel reads and writes that many.
pub unsafe fn map_next_key(map: BorrowedFd, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.map_or(0, |k| k.as_ptr() as u64),
        // The field after the key is next_key in this command.
        value: next.as_mut_ptr() as u64,
        ..Default::default()
    };
    let r = bpf(BPF_MAP_GET_NEXT_KEY, &mut attr);
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_GET_NEXT_KEY, {{map_fd={}, key={}}})",
                explain::borrowed(map),
                key.map_or("NULL".into(), shown_bytes)
            )
        },
        || explain::result(&r),
    );
    r.map(drop)
}

/// Bytes a batch position (`in_batch`/`out_batch`) takes: a hash map's is
/// a bucket number (u32), an array's a key; this covers both for keys of
/// up to 64 bytes.
pub const BATCH_TOKEN_SIZE: usize = 64;

/// What one `map_lookup_batch` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchRead {
    /// Elements written into the keys and values buffers.
    pub count: u32,
    /// The map has no more after these (the kernel said ENOENT).
    pub done: bool,
}

/// Reads up to `count` elements at once (BPF_MAP_LOOKUP_BATCH, Linux
/// 5.6+): keys into `keys`, values into `values`, starting after the
/// position `start` (the map's beginning when None); writes the position
/// to continue from into `next`. EINVAL or ENOTSUPP (524): this kernel or
/// map type has no batch reads. ENOSPC: one hash bucket holds more than
/// `count` (a larger `count` succeeds).
///
/// # Safety
/// `keys` must hold `count` times the map's key size and `values` `count`
/// times its value size (per-CPU: times the possible CPUs, each rounded up
/// to 8); `start` and `next` `BATCH_TOKEN_SIZE` bytes and at least the key
/// size: the kernel reads and writes that many, whatever the slices say.
pub unsafe fn map_lookup_batch(
    map: BorrowedFd,
    start: Option<&[u8]>,
    next: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    count: u32,
) -> io::Result<BatchRead> {
    let mut attr = MapBatchAttr {
        in_batch: start.map_or(0, |s| s.as_ptr() as u64),
        out_batch: next.as_mut_ptr() as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
    // The kernel writes back how many it copied, also with ENOENT (the
    // last ones).
    let filled = attr.count;
    explain::tell(
        || {
            format!(
                "bpf(BPF_MAP_LOOKUP_BATCH, {{map_fd={}, in_batch={}, count={count}}})",
                explain::borrowed(map),
                if start.is_some() {
                    "<position>"
                } else {
                    "NULL"
                },
            )
        },
        || match &r {
            Ok(_) => format!("0 ({filled} elements)"),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                format!("-1 ENOENT (the end; {filled} elements)")
            }
            Err(_) => explain::result(&r),
        },
    );
    match r {
        Ok(_) => Ok(BatchRead {
            count: filled,
            done: false,
        }),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(BatchRead {
            count: filled,
            done: true,
        }),
        Err(e) => Err(e),
    }
}

/// Short byte strings in full, longer ones by their size.
fn shown_bytes(b: &[u8]) -> String {
    if b.len() <= 8 {
        format!("{b:?}")
    } else {
        format!("<{} bytes>", b.len())
    }
}

/// What `prog_load` asks for.
pub struct ProgLoad<'a> {
    /// The name the kernel keeps (15 bytes of it).
    pub name: &'a str,
    /// One of the `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// The instructions, map fds already in place.
    pub insns: &'a [Insn],
    /// "GPL" (or compatible) unlocks the GPL-only helpers.
    pub license: &'a CStr,
    /// LINUX_VERSION_CODE: kernels before 5.0 check it for kprobes.
    pub kern_version: u32,
    /// The object's loaded BTF with the program's function and line info,
    /// so the verifier knows each function's signature and quotes the C
    /// source in its log.
    pub btf: Option<ProgBtf<'a>>,
}

/// A program's function and line info, in a loaded BTF.
#[derive(Clone, Copy)]
pub struct ProgBtf<'a> {
    /// The loaded BTF.
    pub fd: BorrowedFd<'a>,
    /// One per function of the program, in instruction order.
    pub func_info: &'a [crate::obj::FuncInfo],
    /// Source lines, in instruction order.
    pub line_info: &'a [crate::obj::LineInfo],
}

/// Loads a program. With `log`, the verifier writes its log there (level 1);
/// ENOSPC then means the log did not fit.
pub fn prog_load(p: &ProgLoad, log: Option<&mut [u8]>) -> io::Result<Fd> {
    let mut attr = ProgLoadAttr {
        prog_type: p.prog_type,
        insn_cnt: p.insns.len() as u32,
        insns: p.insns.as_ptr() as u64,
        license: p.license.as_ptr() as u64,
        kern_version: p.kern_version,
        prog_name: object_name(p.name),
        ..Default::default()
    };
    if let Some(btf) = p.btf {
        // The slices' own lengths: the kernel reads count * record size.
        attr.prog_btf_fd = btf.fd.as_raw_fd() as u32;
        attr.func_info_rec_size = std::mem::size_of::<crate::obj::FuncInfo>() as u32;
        attr.func_info = btf.func_info.as_ptr() as u64;
        attr.func_info_cnt = btf.func_info.len() as u32;
        attr.line_info_rec_size = std::mem::size_of::<crate::obj::LineInfo>() as u32;
        attr.line_info = btf.line_info.as_ptr() as u64;
        attr.line_info_cnt = btf.line_info.len() as u32;
    }
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let (log_level, log_size) = (attr.log_level, attr.log_size);
    let name = shown_name(&attr.prog_name);
    let r = new_fd(bpf(BPF_PROG_LOAD, &mut attr), || format!("prog:{name}"));
    explain::tell(
        || {
            format!(
                "bpf(BPF_PROG_LOAD, {{prog_type={}, insn_cnt={}, license={:?}, log_level={log_level}, \
                 log_size={log_size}, prog_name=\"{name}\"{}}})",
                prog_type_name(p.prog_type),
                p.insns.len(),
                p.license,
                match p.btf {
                    Some(b) => format!(
                        ", prog_btf_fd={}, func_info_cnt={}, line_info_cnt={}",
                        explain::borrowed(b.fd),
                        b.func_info.len(),
                        b.line_info.len()
                    ),
                    None => String::new(),
                }
            )
        },
        || Fd::told(&r),
    );
    r
}

/// Loads a BTF blob (an object's types, for its maps and programs). With
/// `log`, the kernel writes why it refused there (level 1).
pub fn btf_load(blob: &[u8], log: Option<&mut [u8]>) -> io::Result<Fd> {
    let mut attr = BtfLoadAttr {
        btf: blob.as_ptr() as u64,
        btf_size: blob.len() as u32,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.btf_log_level = 1;
        attr.btf_log_size = buf.len() as u32;
        attr.btf_log_buf = buf.as_mut_ptr() as u64;
    }
    let level = attr.btf_log_level;
    let r = new_fd(bpf(BPF_BTF_LOAD, &mut attr), || "btf".into());
    explain::tell(
        || {
            format!(
                "bpf(BPF_BTF_LOAD, {{btf_size={}, btf_log_level={level}}})",
                blob.len()
            )
        },
        || Fd::told(&r),
    );
    r
}

/// Makes a map read-only for user space from now on (programs are
/// unaffected): what `.rodata` gets once its values are written (5.2+).
pub fn map_freeze(map: BorrowedFd) -> io::Result<()> {
    let mut attr = MapFreezeAttr {
        map_fd: map.as_raw_fd() as u32,
    };
    let r = bpf(BPF_MAP_FREEZE, &mut attr).map(drop);
    explain::tell(
        || format!("bpf(BPF_MAP_FREEZE, {{map_fd={}}})", explain::borrowed(map)),
        || explain::status(&r),
    );
    r
}

/// Runs a program once, now, on this thread, with no input (a raw
/// tracepoint program, Linux 5.10+; older kernels refuse), and returns
/// what it returned.
pub fn prog_test_run(prog: BorrowedFd) -> io::Result<u32> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        ..Default::default()
    };
    let r = bpf(BPF_PROG_TEST_RUN, &mut attr).map(|_| attr.retval);
    explain::tell(
        || {
            format!(
                "bpf(BPF_PROG_TEST_RUN, {{prog_fd={}}})",
                explain::borrowed(prog)
            )
        },
        || match &r {
            Ok(v) => format!("0 (retval={v})"),
            Err(_) => explain::result(&r),
        },
    );
    r
}

/// Hangs a raw tracepoint program on the tracepoint `name` (`sys_enter`):
/// it runs from then on, on every CPU, until the returned fd is closed.
pub fn raw_tracepoint_open(name: &CStr, prog: BorrowedFd) -> io::Result<Fd> {
    let mut attr = RawTracepointAttr {
        name: name.as_ptr() as u64,
        prog_fd: prog.as_raw_fd() as u32,
        ..Default::default()
    };
    let r = new_fd(bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr), || {
        format!("raw_tp:{}", name.to_string_lossy())
    });
    explain::tell(
        || {
            format!(
                "bpf(BPF_RAW_TRACEPOINT_OPEN, {{name={name:?}, prog_fd={}}})",
                explain::borrowed(prog)
            )
        },
        || Fd::told(&r),
    );
    r
}

/// What the kernel says about a loaded program, and how many bytes of
/// `ProgInfo` it filled (older kernels know fewer fields).
pub fn prog_info(prog: BorrowedFd) -> io::Result<(ProgInfo, u32)> {
    let mut info = ProgInfo::default();
    let mut attr = InfoAttr {
        bpf_fd: prog.as_raw_fd() as u32,
        info_len: size_of::<ProgInfo>() as u32,
        info: &mut info as *mut ProgInfo as u64,
    };
    // The kernel writes at most info_len bytes: the size of `info`.
    let r = bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr);
    explain::tell(
        || {
            format!(
                "bpf(BPF_OBJ_GET_INFO_BY_FD, {{bpf_fd={}, info_len={}}})",
                explain::borrowed(prog),
                size_of::<ProgInfo>()
            )
        },
        || explain::result(&r),
    );
    r.map(|_| (info, attr.info_len))
}
