//! Maps that are not in the legacy `maps` section:
//!
//! - BTF-defined maps (`.maps`): each is a variable whose type is a struct
//!   the compiler never lays out as data. Its members say what the map is:
//!   `__uint(name, N)` is a member `int (*name)[N]` (a pointer to an array
//!   of N elements, so the number lives in the type, not in the bytes);
//!   `__type(key, T)` is a member `T *key` (the key's size is T's size,
//!   and T's id goes to the kernel with the BTF).
//! - Global data (`.data`, `.rodata`, `.bss` and their `.NAME` siblings,
//!   such as the `.rodata.str1.1` of string literals): one array map of
//!   one entry per section, as big as the section, its first contents the
//!   section's bytes. Programs address a variable as that map's value plus
//!   the variable's offset (`BPF_PSEUDO_MAP_VALUE`).

use super::btf::{Btf, Kind, shown};
use super::{MapOrigin, MapSpec};

const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
/// BPF_F_RDONLY_PROG: programs may not write it (`.rodata`).
const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// BPF_F_MMAPABLE: user space can map the value (5.5+).
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A BTF-defined map, or why it cannot be created.
pub(super) type BtfMap = Result<MapSpec, String>;

/// The maps of `.maps`: (offset in the section, name, the map or why
/// it is skipped), in offset order. `offset_of(name)` is the symbol's
/// value (the compiler leaves the DATASEC's offsets 0).
pub(super) fn btf_maps<'a>(
    btf: &Btf<'a>,
    offset_of: impl Fn(&str) -> Option<u64>,
) -> Vec<(u64, &'a str, BtfMap)> {
    let Some(sec) = btf
        .types()
        .find(|t| t.kind() == Kind::Datasec && t.name() == ".maps")
    else {
        return Vec::new();
    };
    let mut maps = Vec::new();
    for var in sec.vars() {
        let Some(v) = btf.ty(var.type_id).filter(|v| v.kind() == Kind::Var) else {
            continue;
        };
        let name = v.name();
        let Some(offset) = offset_of(name) else {
            continue;
        };
        let def = v
            .referenced()
            .ok_or_else(|| "its variable has no type".to_string())
            .and_then(|def| map_def(btf, name, def));
        maps.push((offset, name, def));
    }
    maps.sort_by_key(|m| m.0);
    maps
}

/// A `__uint(name, N)` member's N: the element count of the array its
/// pointer points to.
fn uint_field(btf: &Btf, type_id: u32) -> Option<u32> {
    let ptr = btf.ty(btf.resolve(type_id)?)?;
    if ptr.kind() != Kind::Ptr {
        return None;
    }
    let array = btf.ty(btf.resolve(ptr.referenced()?)?)?;
    Some(array.array()?.2)
}

/// A `__type(name, T)` member's T: (T's id, T's size).
fn type_field(btf: &Btf, type_id: u32) -> Option<(u32, u64)> {
    let ptr = btf.ty(btf.resolve(type_id)?)?;
    if ptr.kind() != Kind::Ptr {
        return None;
    }
    let target = ptr.referenced()?;
    Some((target, btf.size_of(target)?))
}

/// One map's definition struct read member by member, as libbpf does.
fn map_def(btf: &Btf, name: &str, def: u32) -> BtfMap {
    let def = btf
        .ty(btf.resolve(def).unwrap_or(0))
        .filter(|t| t.kind() == Kind::Struct)
        .ok_or("its definition is not a struct")?;
    let mut map = MapSpec {
        name: name.to_string(),
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        origin: MapOrigin::Btf,
        btf_key_type_id: 0,
        btf_value_type_id: 0,
        initial: None,
        freeze: false,
    };
    for m in def.members() {
        let uint = || {
            uint_field(btf, m.type_id)
                .ok_or_else(|| format!("member {} is not __uint(...)", shown(m.name)))
        };
        let typed = || {
            type_field(btf, m.type_id)
                .and_then(|(id, size)| Some((id, u32::try_from(size).ok()?)))
                .ok_or_else(|| {
                    format!(
                        "member {} is not __type(...) of a sized type",
                        shown(m.name)
                    )
                })
        };
        match m.name {
            "type" => map.map_type = uint()?,
            "max_entries" => map.max_entries = uint()?,
            "map_flags" => map.flags = uint()?,
            "key_size" => set_size(&mut map.key_size, uint()?, "key")?,
            "value_size" => set_size(&mut map.value_size, uint()?, "value")?,
            "key" => {
                let (id, size) = typed()?;
                set_size(&mut map.key_size, size, "key")?;
                map.btf_key_type_id = id;
            }
            "value" => {
                let (id, size) = typed()?;
                set_size(&mut map.value_size, size, "value")?;
                map.btf_value_type_id = id;
            }
            "numa_node" if uint()? == 0 => {}
            "numa_node" => return Err("a NUMA node is not supported".into()),
            "pinning" if uint()? == 0 => {}
            "pinning" => {
                return Err("pinning is not supported (this loader pins nothing)".into());
            }
            "map_extra" if uint()? == 0 => {}
            "map_extra" => return Err("map_extra is not supported".into()),
            "values" => {
                return Err("initial values (map-in-map, prog arrays) are not supported".into());
            }
            other => {
                return Err(format!(
                    "it has member {}, which this loader does not know",
                    shown(other)
                ));
            }
        }
    }
    if map.map_type == 0 {
        return Err("it has no type (__uint(type, ...))".into());
    }
    if map.map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY {
        // What libbpf gives it; the kernel refuses 0.
        map.key_size = map.key_size.max(4);
        map.value_size = map.value_size.max(4);
    }
    Ok(map)
}

/// A key or value size given twice (key_size and key) must agree.
fn set_size(slot: &mut u32, size: u32, what: &str) -> Result<(), String> {
    if *slot != 0 && *slot != size {
        return Err(format!(
            "its {what} is given two sizes, {slot} and {size}",
            slot = *slot
        ));
    }
    *slot = size;
    Ok(())
}

/// The map of a global data section: `contents` is None for `.bss` (no
/// bytes in the file: zeros). Its value's BTF is the section's DATASEC.
pub(super) fn data_map(
    btf: Option<&Btf>,
    name: &str,
    size: u32,
    contents: Option<&[u8]>,
) -> MapSpec {
    let readonly = name.starts_with(".rodata");
    let datasec = btf.and_then(|b| b.find(Kind::Datasec, name)).unwrap_or(0);
    MapSpec {
        name: name.to_string(),
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: size,
        max_entries: 1,
        flags: BPF_F_MMAPABLE | if readonly { BPF_F_RDONLY_PROG } else { 0 },
        origin: MapOrigin::Data,
        btf_key_type_id: 0,
        btf_value_type_id: datasec,
        initial: contents
            .filter(|c| c.iter().any(|&b| b != 0))
            .map(<[u8]>::to_vec),
        freeze: readonly,
    }
}
