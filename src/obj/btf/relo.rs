//! CO-RE relocations resolved against a target kernel's BTF, and the
//! instructions patched with the result. The semantics are libbpf's
//! (relo_core.c), written anew here:
//!
//! 1. **The local spec.** The record names a root type in the object's BTF
//!    and an access string of indexes. For a field: the first index is an
//!    array index on the root (`p[0]`), each next one a member of a struct
//!    or union, or an element of an array, down to the field. Walking them
//!    gives the field's bit offset, type and name path, in the object's
//!    layout: what the compiler put in the instruction.
//! 2. **Candidates.** The target types of the same kind whose name is the
//!    root's without its `___flavor` suffix (`task_struct___old` and
//!    `task_struct` are both candidates for `task_struct`).
//! 3. **Matching.** In each candidate the same path is followed *by name*:
//!    a member is looked for among the target struct's members and,
//!    through anonymous structs and unions, theirs (the kernel nests
//!    fields in unnamed unions often); an array index stays an index (and
//!    must fit the target's array). At each step the kinds must be
//!    compatible: structs with structs, integers with integers of any
//!    size, pointers with pointers, enums with enums.
//! 4. **The value.** From the matched target field: its byte offset, size,
//!    existence, signedness, or the shifts that extract a bitfield; for
//!    type relocations the target type's id, existence or size; for enum
//!    relocations the target enumerator's existence or value. Every
//!    candidate that matches must give the same value. When none matches,
//!    an existence relocation's answer is 0, and any other relocation is
//!    unresolvable: the instruction is **poisoned** (see `patch`).

use std::collections::HashMap;

use super::ext::CoreRelo;
use super::{Btf, Kind, MAX_CHAIN, shown};
use crate::obj::Insn;

/// The kinds of CO-RE relocation (`enum bpf_core_relo_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocKind {
    /// A field's byte offset (`BPF_CORE_READ`).
    FieldByteOffset,
    /// A field's size in bytes.
    FieldByteSize,
    /// Whether a field exists (`bpf_core_field_exists`).
    FieldExists,
    /// Whether a field is signed.
    FieldSigned,
    /// The left shift that puts a bitfield's top bit at bit 63.
    FieldLshiftU64,
    /// The right shift that then brings it down to bit 0.
    FieldRshiftU64,
    /// The type's id in the object's BTF.
    TypeIdLocal,
    /// The matching type's id in the target's BTF.
    TypeIdTarget,
    /// Whether the type exists in the target.
    TypeExists,
    /// The target type's size.
    TypeSize,
    /// Whether an enumerator exists.
    EnumvalExists,
    /// An enumerator's value.
    EnumvalValue,
    /// Whether the type matches the target's exactly (refused: not
    /// implemented).
    TypeMatches,
}

impl RelocKind {
    /// The kind of record number `raw`.
    pub fn from_raw(raw: u32) -> Option<RelocKind> {
        use RelocKind::*;
        Some(match raw {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's name for it (`byte_off`, `field_exists`, ...).
    pub fn label(self) -> &'static str {
        use RelocKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    fn is_field(self) -> bool {
        use RelocKind::*;
        matches!(
            self,
            FieldByteOffset
                | FieldByteSize
                | FieldExists
                | FieldSigned
                | FieldLshiftU64
                | FieldRshiftU64
        )
    }

    fn is_enum(self) -> bool {
        matches!(self, RelocKind::EnumvalExists | RelocKind::EnumvalValue)
    }

    /// What a relocation of this kind answers when nothing matches: 0 for
    /// the existence questions, nothing (poison) for the others.
    fn when_missing(self) -> Option<u64> {
        use RelocKind::*;
        matches!(self, FieldExists | TypeExists | EnumvalExists).then_some(0)
    }
}

/// A relocation resolved: what the object computed, and what the target
/// says (None: unresolvable, the instruction is to be poisoned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// What was asked.
    pub kind: RelocKind,
    /// The value in the object's layout: what the instruction holds.
    pub local: u64,
    /// The value on the target; None when nothing matched.
    pub target: Option<u64>,
    /// For a field's byte offset: the field's size in the object and on
    /// the target, so that a load of it can be resized.
    pub sizes: Option<(u32, u32)>,
    /// For a field's byte offset: whether it is a signed integer (a load
    /// of another size cannot be resized without sign extension).
    pub signed: bool,
    /// The path in names (`task_struct.real_parent`).
    pub path: String,
}

/// The target's types that can be candidates, by essential name; built
/// for the names a program's relocations need, in one pass.
pub struct Candidates {
    by_name: HashMap<String, Vec<u32>>,
}

/// A name without its `___flavor` suffix.
pub fn essential(name: &str) -> &str {
    match name.find("___") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

impl Candidates {
    /// The target types whose essential names are among those of the
    /// roots of `relos` in `local`.
    pub fn new(local: &Btf, target: &Btf, relos: &[CoreRelo]) -> Candidates {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for r in relos {
            if let Some(t) = local.ty(r.type_id) {
                by_name.entry(essential(t.name()).to_string()).or_default();
            }
        }
        if !by_name.is_empty() {
            for t in target.types() {
                let name = t.name();
                if name.is_empty() {
                    continue;
                }
                if let Some(ids) = by_name.get_mut(essential(name)) {
                    ids.push(t.id());
                }
            }
        }
        Candidates { by_name }
    }

    fn of(&self, name: &str) -> &[u32] {
        self.by_name
            .get(essential(name))
            .map_or(&[], |v| v.as_slice())
    }
}

/// One step of an access path, resolved in one BTF.
#[derive(Clone, Debug)]
struct Access<'a> {
    /// A member's name, or None for an array index.
    name: Option<&'a str>,
    index: u32,
}

/// A field spec: where the path leads in one BTF.
#[derive(Clone, Debug)]
struct FieldSpec {
    bit_offset: u64,
    /// The field's type, modifiers and typedefs looked through.
    type_id: u32,
    /// Bits of a bitfield, 0 otherwise.
    bitfield_size: u32,
}

/// Follows `indexes` from `root` in `btf` (the local side): the field it
/// reaches, and the named steps to look for on the target.
fn local_field<'a>(
    btf: &Btf<'a>,
    root: u32,
    indexes: &[u32],
) -> Result<(FieldSpec, Vec<Access<'a>>, String), String> {
    let (&first, rest) = indexes.split_first().ok_or("an empty access string")?;
    let root_t = btf
        .ty(root)
        .ok_or(format!("root type {root} does not exist"))?;
    let root_size = btf
        .size_of(root)
        .ok_or(format!("root type {root} has no size"))?;
    let mut spec = FieldSpec {
        bit_offset: u64::from(first) * root_size * 8,
        type_id: btf.resolve(root).ok_or("a type loop")?,
        bitfield_size: 0,
    };
    let mut steps = vec![Access {
        name: None,
        index: first,
    }];
    let mut path = root_t.name().to_string();
    if first != 0 {
        path.push_str(&format!("[{first}]"));
    }
    for &index in rest {
        let t = btf.ty(spec.type_id).ok_or("a broken type")?;
        match t.kind() {
            Kind::Struct | Kind::Union => {
                let m = t
                    .members()
                    .nth(index as usize)
                    .ok_or(format!("{} has no member #{index}", shown(t.name())))?;
                spec.bit_offset += u64::from(m.bit_offset);
                spec.bitfield_size = m.bitfield_size;
                spec.type_id = btf.resolve(m.type_id).ok_or("a type loop")?;
                if !m.name.is_empty() {
                    path.push('.');
                    path.push_str(m.name);
                    steps.push(Access {
                        name: Some(m.name),
                        index,
                    });
                }
            }
            Kind::Array => {
                let (elem, _, _) = t.array().ok_or("a broken array")?;
                let size = btf.size_of(elem).ok_or("an array of unsized elements")?;
                spec.bit_offset += u64::from(index) * size * 8;
                spec.bitfield_size = 0;
                spec.type_id = btf.resolve(elem).ok_or("a type loop")?;
                path.push_str(&format!("[{index}]"));
                steps.push(Access { name: None, index });
            }
            _ => {
                return Err(format!(
                    "access #{index} into a {} (only structs, unions and arrays have parts)",
                    t.kind().label()
                ));
            }
        }
    }
    Ok((spec, steps, path))
}

/// Whether a local field's type and a target's are compatible for a
/// field relocation (libbpf's bpf_core_fields_are_compat).
fn fields_compatible(local: &Btf, l: u32, target: &Btf, t: u32) -> bool {
    let (mut l, mut t) = (l, t);
    for _ in 0..MAX_CHAIN {
        let (Some(lt), Some(tt)) = (
            local.resolve(l).and_then(|id| local.ty(id)),
            target.resolve(t).and_then(|id| target.ty(id)),
        ) else {
            return false;
        };
        let composite = |k: Kind| matches!(k, Kind::Struct | Kind::Union | Kind::Fwd);
        let unshifted = |x: super::Type| x.int().is_some_and(|e| e.offset == 0);
        return match (lt.kind(), tt.kind()) {
            (lk, tk) if composite(lk) => composite(tk),
            (lk, tk) if enumish(lk) => enumish(tk),
            (Kind::Ptr, tk) => tk == Kind::Ptr,
            (Kind::Float, tk) => tk == Kind::Float,
            (Kind::Int, Kind::Int) => unshifted(lt) && unshifted(tt),
            (Kind::Array, Kind::Array) => {
                let (Some((le, _, _)), Some((te, _, _))) = (lt.array(), tt.array()) else {
                    return false;
                };
                l = le;
                t = te;
                continue;
            }
            _ => false,
        };
    }
    false
}

/// An enum of either width: 32- and 64-bit enums are compatible.
fn enumish(kind: Kind) -> bool {
    matches!(kind, Kind::Enum | Kind::Enum64)
}

/// The member called `name` of composite `id` in `btf`, looked for
/// through anonymous members: its bit offset from `id`'s start, type and
/// bitfield size.
fn find_member(btf: &Btf, id: u32, name: &str, depth: usize) -> Option<(u64, u32, u32)> {
    if depth > MAX_CHAIN {
        return None;
    }
    let t = btf.ty(btf.resolve(id)?)?;
    if !t.kind().is_composite() {
        return None;
    }
    for m in t.members() {
        if m.name == name {
            return Some((u64::from(m.bit_offset), m.type_id, m.bitfield_size));
        }
        if m.name.is_empty()
            && let Some((off, ty, bits)) = find_member(btf, m.type_id, name, depth + 1)
        {
            return Some((u64::from(m.bit_offset) + off, ty, bits));
        }
    }
    None
}

/// Follows the local steps in target candidate `root`: the field there,
/// or None if the path does not exist (or is incompatible) on it.
fn target_field(
    local: &Btf,
    local_field_type: u32,
    target: &Btf,
    root: u32,
    steps: &[Access],
) -> Option<FieldSpec> {
    let size = target.size_of(root)?;
    let first = steps.first()?;
    let mut spec = FieldSpec {
        bit_offset: u64::from(first.index) * size * 8,
        type_id: target.resolve(root)?,
        bitfield_size: 0,
    };
    for step in &steps[1..] {
        let t = target.ty(spec.type_id)?;
        match step.name {
            Some(name) => {
                let (off, ty, bits) = find_member(target, spec.type_id, name, 0)?;
                spec.bit_offset += off;
                spec.type_id = target.resolve(ty)?;
                spec.bitfield_size = bits;
            }
            None => {
                let (elem, _, n) = t.array()?;
                // A flexible array (0 elements) takes any index.
                if n != 0 && step.index >= n {
                    return None;
                }
                spec.bit_offset += u64::from(step.index) * target.size_of(elem)? * 8;
                spec.type_id = target.resolve(elem)?;
                spec.bitfield_size = 0;
            }
        }
    }
    fields_compatible(local, local_field_type, target, spec.type_id).then_some(spec)
}

/// A field relocation's value from a spec (libbpf's
/// bpf_core_calc_field_relo): the byte offset and size of the load that
/// reaches the field (for a bitfield, the smallest aligned load that
/// holds it), and so on.
fn field_value(btf: &Btf, kind: RelocKind, spec: &FieldSpec) -> Result<(u64, u32), String> {
    let t = btf.ty(spec.type_id).ok_or("a broken field type")?;
    let size = btf.size_of(spec.type_id).ok_or("a field of no size")?;
    let size = u32::try_from(size).map_err(|_| "a field over 4 GiB")?;
    let (byte_off, byte_sz, bit_sz) = if spec.bitfield_size == 0 {
        if !spec.bit_offset.is_multiple_of(8) {
            return Err("a field that does not start on a byte".into());
        }
        (spec.bit_offset / 8, size, u64::from(size) * 8)
    } else {
        let bits = u64::from(spec.bitfield_size);
        let mut sz = u64::from(size.max(1));
        let mut off = spec.bit_offset / (sz * 8) * sz;
        while spec.bit_offset + bits - off * 8 > sz * 8 {
            if sz >= 8 {
                return Err("a bitfield no 8-byte load holds".into());
            }
            sz *= 2;
            off = spec.bit_offset / (sz * 8) * sz;
        }
        (off, sz as u32, bits)
    };
    let signed = match t.kind() {
        Kind::Int => t.int().is_some_and(|e| e.signed),
        Kind::Enum | Kind::Enum64 => t.kind_flag(),
        _ => false,
    };
    let value = match kind {
        RelocKind::FieldByteOffset => byte_off,
        RelocKind::FieldByteSize => u64::from(byte_sz),
        RelocKind::FieldExists => 1,
        RelocKind::FieldSigned => u64::from(signed),
        // Little-endian: the field's top bit to bit 63.
        RelocKind::FieldLshiftU64 => 64 - (spec.bit_offset + bit_sz - byte_off * 8),
        RelocKind::FieldRshiftU64 => 64 - bit_sz,
        _ => return Err("not a field relocation".into()),
    };
    Ok((value, byte_sz))
}

/// Whether local type `l` and target type `t` are compatible for a type
/// relocation (libbpf's bpf_core_types_are_compat): the same kind after
/// modifiers and typedefs, pointers and arrays to compatible types,
/// functions of compatible signatures.
fn types_compatible(local: &Btf, l: u32, target: &Btf, t: u32, depth: usize) -> bool {
    if depth > MAX_CHAIN {
        return false;
    }
    let (Some(lr), Some(tr)) = (local.resolve(l), target.resolve(t)) else {
        return false;
    };
    let (Some(lt), Some(tt)) = (local.ty(lr), target.ty(tr)) else {
        return lr == 0 && tr == 0;
    };
    if lt.kind() != tt.kind() && !(enumish(lt.kind()) && enumish(tt.kind())) {
        return false;
    }
    match lt.kind() {
        Kind::Int => {
            lt.int().is_some_and(|e| e.offset == 0) && tt.int().is_some_and(|e| e.offset == 0)
        }
        Kind::Ptr => types_compatible(
            local,
            lt.referenced().unwrap_or(0),
            target,
            tt.referenced().unwrap_or(0),
            depth + 1,
        ),
        Kind::Array => match (lt.array(), tt.array()) {
            (Some((le, _, _)), Some((te, _, _))) => {
                types_compatible(local, le, target, te, depth + 1)
            }
            _ => false,
        },
        Kind::FuncProto => {
            if lt.vlen() != tt.vlen() {
                return false;
            }
            let params = lt
                .params()
                .zip(tt.params())
                .all(|((_, a), (_, b))| types_compatible(local, a, target, b, depth + 1));
            params
                && types_compatible(
                    local,
                    lt.referenced().unwrap_or(0),
                    target,
                    tt.referenced().unwrap_or(0),
                    depth + 1,
                )
        }
        _ => true,
    }
}

/// Parses `0:1:2`, bounded.
fn indexes(access: &str) -> Result<Vec<u32>, String> {
    let parts: Vec<&str> = access.split(':').collect();
    if parts.len() > 64 {
        return Err(format!("an access string of {} steps", parts.len()));
    }
    parts
        .iter()
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| format!("access string {} is not numbers", shown(access)))
        })
        .collect()
}

/// All matching candidates must agree: their one value, None if none
/// matched.
fn agree(values: Vec<(u64, u32)>, path: &str) -> Result<Option<(u64, u32)>, String> {
    let Some(&first) = values.first() else {
        return Ok(None);
    };
    if values.iter().any(|v| *v != first) {
        return Err(format!(
            "{path}: the kernel has several matching types that disagree (ambiguous)"
        ));
    }
    Ok(Some(first))
}

/// Enumerator `index` of enum `root` in `btf`, and its path in names
/// (`enum pid_type::PIDTYPE_TGID`).
fn local_enumerator<'a>(
    btf: &Btf<'a>,
    root: u32,
    index: u32,
) -> Result<(super::Enumerator<'a>, String), String> {
    let t = btf
        .ty(root)
        .ok_or(format!("root type {root} does not exist"))?;
    let e = btf
        .ty(btf.resolve(root).unwrap_or(0))
        .and_then(|t| t.enumerators().nth(index as usize))
        .ok_or(format!("{} has no enumerator #{index}", shown(t.name())))?;
    Ok((e, format!("enum {}::{}", t.name(), e.name)))
}

/// A type relocation's path: `struct task_struct`.
fn type_path(btf: &Btf, root: u32) -> String {
    match btf.ty(root) {
        Some(t) => format!("{} {}", t.kind().label().to_lowercase(), t.name()),
        None => format!("type {root}"),
    }
}

/// What a record asks for, in the object's own terms, for `probe
/// inspect`: `byte_off task_struct.real_parent (struct task_struct, access
/// 0:3)`. Needs only the object's BTF; a record it cannot follow is shown
/// with its raw numbers and why.
pub fn describe(local: Option<&Btf>, relo: &CoreRelo) -> String {
    let kind = RelocKind::from_raw(relo.kind).map_or("unknown", RelocKind::label);
    let Some(btf) = local else {
        return format!("{kind} type={} (no BTF)", relo.type_id);
    };
    let access = btf.string(relo.access_str_off).unwrap_or("?");
    let path = match RelocKind::from_raw(relo.kind) {
        Some(k) if k.is_field() => indexes(access)
            .and_then(|ix| local_field(btf, relo.type_id, &ix))
            .map(|(_, _, path)| path),
        Some(k) if k.is_enum() => indexes(access).and_then(|ix| match ix[..] {
            [index] => local_enumerator(btf, relo.type_id, index).map(|(_, path)| path),
            _ => Err(format!(
                "enum access string {} is not one index",
                shown(access)
            )),
        }),
        _ => Ok(type_path(btf, relo.type_id)),
    };
    let path = path.unwrap_or_else(|why| format!("? ({why})"));
    shown(&format!(
        "{kind} {path} ({}, access {access})",
        type_path(btf, relo.type_id)
    ))
}

/// Resolves one relocation of `local` against `target`.
pub fn resolve(
    local: &Btf,
    target: &Btf,
    candidates: &Candidates,
    relo: &CoreRelo,
) -> Result<Resolution, String> {
    let kind = RelocKind::from_raw(relo.kind)
        .ok_or(format!("relocation kind {} is unknown", relo.kind))?;
    let root = local.ty(relo.type_id).ok_or(format!(
        "root type {} is not in the object's BTF",
        relo.type_id
    ))?;
    let access = local
        .string(relo.access_str_off)
        .ok_or("the access string is not in the object's BTF")?;
    let indexes = indexes(access)?;
    let name = essential(root.name());
    if kind == RelocKind::TypeMatches {
        return Err(format!(
            "{}: type_matches relocations (bpf_core_type_matches) are not supported",
            shown(name)
        ));
    }
    if name.is_empty() {
        return Err("the root type has no name to find it by".into());
    }
    let found = candidates.of(name).iter().copied().filter(|&id| {
        target.kind(id) == Some(root.kind()) || enum_pair(root.kind(), target.kind(id))
    });
    let resolution = |local_value: u64, target: Option<(u64, u32)>, path: String| Resolution {
        kind,
        local: local_value,
        target: target.map(|t| t.0).or(kind.when_missing()),
        sizes: None,
        signed: false,
        path: shown(&path),
    };
    if kind.is_field() {
        let (spec, steps, path) = local_field(local, relo.type_id, &indexes)?;
        let (local_value, local_size) = field_value(local, kind, &spec)?;
        let mut values = Vec::new();
        for id in found {
            if let Some(t) = target_field(local, spec.type_id, target, id, &steps) {
                values.push(field_value(target, kind, &t)?);
            }
        }
        let value = agree(values, &path)?;
        let mut r = resolution(local_value, value, path);
        if kind == RelocKind::FieldByteOffset && spec.bitfield_size == 0 {
            r.sizes = value.map(|(_, size)| (local_size, size));
            r.signed = field_value(local, RelocKind::FieldSigned, &spec)?.0 == 1;
        }
        return Ok(r);
    }
    if kind.is_enum() {
        let [index] = indexes[..] else {
            return Err(format!(
                "enum access string {} is not one index",
                shown(access)
            ));
        };
        let (e, path) = local_enumerator(local, relo.type_id, index)?;
        let local_value = if kind == RelocKind::EnumvalExists {
            1
        } else {
            e.value as u64
        };
        let mut values = Vec::new();
        for id in found {
            let wanted = essential(e.name);
            let hit = target
                .ty(id)
                .and_then(|t| t.enumerators().find(|x| essential(x.name) == wanted));
            if let Some(x) = hit {
                let v = if kind == RelocKind::EnumvalExists {
                    1
                } else {
                    x.value as u64
                };
                values.push((v, 0));
            }
        }
        let value = agree(values, &path)?;
        return Ok(resolution(local_value, value, path));
    }
    // A type relocation: access "0".
    if indexes != [0] {
        return Err(format!("type access string {} is not 0", shown(access)));
    }
    let path = type_path(local, relo.type_id);
    let local_value = match kind {
        RelocKind::TypeIdLocal | RelocKind::TypeIdTarget => u64::from(relo.type_id),
        RelocKind::TypeExists => 1,
        RelocKind::TypeSize => local.size_of(relo.type_id).ok_or("a type of no size")?,
        _ => return Err("not a type relocation".into()),
    };
    if kind == RelocKind::TypeIdLocal {
        return Ok(resolution(local_value, Some((local_value, 0)), path));
    }
    let mut values = Vec::new();
    for id in found {
        if !types_compatible(local, relo.type_id, target, id, 0) {
            continue;
        }
        let v = match kind {
            RelocKind::TypeIdTarget => u64::from(id),
            RelocKind::TypeExists => 1,
            _ => target.size_of(id).ok_or("a target type of no size")?,
        };
        values.push((v, 0));
    }
    let value = agree(values, &path)?;
    Ok(resolution(local_value, value, path))
}

fn enum_pair(a: Kind, b: Option<Kind>) -> bool {
    enumish(a) && b.is_some_and(enumish)
}

/// The call libbpf puts in place of an instruction whose relocation could
/// not be resolved: helper 0xbad2310 ("bad relo") does not exist, so the
/// verifier rejects the program if, and only if, the instruction can run.
pub const POISON_HELPER: i32 = 0xbad2310;

const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_ALU64: u8 = 0x07;
const SRC_X: u8 = 0x08;
const MODE_MEM: u8 = 0x60;
const MODE_IMM: u8 = 0x00;
const SIZE_DW: u8 = 0x18;

fn size_code(bytes: u32) -> Option<u8> {
    Some(match bytes {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        8 => 0x18,
        _ => return None,
    })
}

fn size_bytes(code: u8) -> u32 {
    match code & 0x18 {
        0x10 => 1,
        0x08 => 2,
        0x00 => 4,
        _ => 8,
    }
}

fn poison(insn: &mut Insn) {
    *insn = Insn {
        code: crate::obj::insn::OP_CALL,
        regs: 0,
        off: 0,
        imm: POISON_HELPER,
    };
}

/// Writes `res` into instruction `index` (libbpf's bpf_core_patch_insn):
/// the immediate of an ALU instruction with a constant operand, the
/// offset of a load or store (and its size, when the field's size
/// changed), or the 64-bit constant of an `ld_imm64`. The instruction
/// must hold the object's value first. An unresolved relocation poisons
/// the instruction (both halves of an `ld_imm64`).
pub fn patch(insns: &mut [Insn], index: usize, res: &Resolution) -> Result<(), String> {
    let insn = *insns
        .get(index)
        .ok_or(format!("instruction {index} is past the program's end"))?;
    let wide = insn.code == crate::obj::OP_LD_IMM64;
    let Some(value) = res.target else {
        poison(&mut insns[index]);
        if wide && let Some(second) = insns.get_mut(index + 1) {
            poison(second);
        }
        return Ok(());
    };
    let unexpected = |what: &str, held: i64| {
        Err(format!(
            "instruction {index} holds {what} {held}, not the object's value {}: the record \
             does not match the code",
            res.local
        ))
    };
    match insn.code & 0x07 {
        CLASS_ALU | CLASS_ALU64 if insn.code & SRC_X == 0 => {
            if i64::from(insn.imm) != res.local as i64 {
                return unexpected("immediate", insn.imm.into());
            }
            insns[index].imm = i32::try_from(value as i64)
                .map_err(|_| format!("value {value} does not fit instruction {index}"))?;
        }
        CLASS_LDX | CLASS_ST | CLASS_STX if insn.code & 0xe0 == MODE_MEM => {
            if i64::from(insn.off) != res.local as i64 {
                return unexpected("offset", insn.off.into());
            }
            insns[index].off = i16::try_from(value)
                .map_err(|_| format!("offset {value} does not fit instruction {index}"))?;
            if let Some((old, new)) = res.sizes
                && old != new
            {
                if size_bytes(insn.code) != old {
                    return Err(format!(
                        "instruction {index} loads {} bytes of a {old}-byte field",
                        size_bytes(insn.code)
                    ));
                }
                if res.signed {
                    return Err(format!(
                        "{}: a signed field of {old} bytes is {new} on this kernel \
                         (a load cannot be resized without sign extension)",
                        res.path
                    ));
                }
                let code = size_code(new).ok_or(format!(
                    "{}: a field of {new} bytes cannot be loaded in one instruction",
                    res.path
                ))?;
                insns[index].code = (insn.code & !0x18) | code;
            }
        }
        CLASS_LD if wide && insn.code & 0xe0 == MODE_IMM && insn.code & 0x18 == SIZE_DW => {
            let second = insns
                .get(index + 1)
                .ok_or(format!("instruction {index} is half an ld_imm64"))?;
            let held = (u64::from(second.imm as u32) << 32) | u64::from(insn.imm as u32);
            if held != res.local {
                return unexpected("constant", held as i64);
            }
            insns[index].imm = value as u32 as i32;
            insns[index + 1].imm = (value >> 32) as u32 as i32;
        }
        _ => {
            return Err(format!(
                "instruction {index} (opcode {:#04x}) is not one a CO-RE relocation can patch",
                insn.code
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obj::btf::blob;

    /// A string table and a lookup of each name's offset.
    struct Strings {
        bytes: Vec<u8>,
    }

    impl Strings {
        fn new() -> Strings {
            Strings { bytes: vec![0] }
        }
        fn at(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let at = self.bytes.len() as u32;
            self.bytes.extend_from_slice(s.as_bytes());
            self.bytes.push(0);
            at
        }
    }

    fn info(kind: Kind, vlen: u32, kflag: bool) -> u32 {
        (u32::from(kflag) << 31) | (kind.raw() << 24) | vlen
    }

    /// local: 1 int, 2 struct task { int pid; int tgid; struct task
    /// *parent; unsigned flags:3, mode:5; int arr[4]; } (members 0-5), 3
    /// ptr->2, 4 enum kind { A = 0, B = 1, C = 9 }, 5 int arr[4], 6 struct
    /// task___old { long state; }, 7 long, 8 array index type, 9 unsigned
    /// int, 10 typedef task_t -> 2.
    fn local() -> (Vec<u8>, Strings) {
        let mut s = Strings::new();
        let (int, task, pid, tgid, parent) = (
            s.at("int"),
            s.at("task"),
            s.at("pid"),
            s.at("tgid"),
            s.at("parent"),
        );
        let (flags, mode, arr, kind_n) = (s.at("flags"), s.at("mode"), s.at("arr"), s.at("kind"));
        let (a, b, c) = (s.at("A"), s.at("B"), s.at("C"));
        let (old, state, long, uint, task_t) = (
            s.at("task___old"),
            s.at("state"),
            s.at("long"),
            s.at("unsigned int"),
            s.at("task_t"),
        );
        let types = [
            vec![int, info(Kind::Int, 0, false), 4, 1 << 24 | 32],
            vec![task, info(Kind::Struct, 6, true), 40],
            vec![pid, 1, 0, tgid, 1, 32, parent, 3, 64],
            vec![flags, 9, 3 << 24 | 128, mode, 9, 5 << 24 | 131, arr, 5, 160],
            vec![0, info(Kind::Ptr, 0, false), 2],
            vec![kind_n, info(Kind::Enum, 3, false), 4, a, 0, b, 1, c, 9],
            vec![0, info(Kind::Array, 0, false), 0, 1, 8, 4],
            vec![old, info(Kind::Struct, 1, false), 8, state, 7, 0],
            vec![long, info(Kind::Int, 0, false), 8, 1 << 24 | 64],
            vec![0, info(Kind::Int, 0, false), 4, 32],
            vec![uint, info(Kind::Int, 0, false), 4, 32],
            vec![task_t, info(Kind::Typedef, 0, false), 2],
        ];
        let words: Vec<u32> = types.concat();
        (blob(&words, &[]), s)
    }

    /// target: the same names, laid out otherwise: struct task { long x;
    /// union { int pid; int y; }; int tgid; struct task *parent; unsigned
    /// mode:5, flags:3; int arr[2]; } (no state anywhere), enum kind { B =
    /// 7, A = 0 }.
    fn target() -> Vec<u8> {
        let mut s = Strings::new();
        let (int, task, x, pid, y, tgid, parent) = (
            s.at("int"),
            s.at("task"),
            s.at("x"),
            s.at("pid"),
            s.at("y"),
            s.at("tgid"),
            s.at("parent"),
        );
        let (flags, mode, arr, kind_n, a, b, long, uint) = (
            s.at("flags"),
            s.at("mode"),
            s.at("arr"),
            s.at("kind"),
            s.at("A"),
            s.at("B"),
            s.at("long"),
            s.at("unsigned int"),
        );
        let task_t = s.at("task_t");
        let types = [
            // 1 int, 2 long, 3 unsigned int
            vec![int, info(Kind::Int, 0, false), 4, 1 << 24 | 32],
            vec![long, info(Kind::Int, 0, false), 8, 1 << 24 | 64],
            vec![uint, info(Kind::Int, 0, false), 4, 32],
            // 4 the anonymous union { int pid; int y; }
            vec![0, info(Kind::Union, 2, false), 4, pid, 1, 0, y, 1, 0],
            // 5 struct task
            vec![task, info(Kind::Struct, 7, true), 40],
            vec![x, 2, 0, 0, 4, 64, tgid, 1, 96, parent, 6, 128],
            vec![mode, 3, 5 << 24 | 192, flags, 3, 3 << 24 | 197, arr, 7, 224],
            // 6 ptr -> 5
            vec![0, info(Kind::Ptr, 0, false), 5],
            // 7 int arr[2], index type 3
            vec![0, info(Kind::Array, 0, false), 0, 1, 3, 2],
            // 8 enum kind { B = 7, A = 0 }
            vec![kind_n, info(Kind::Enum, 2, false), 4, b, 7, a, 0],
            // 9 typedef task_t -> 5: a typedef root's candidates are
            // typedefs of its name.
            vec![task_t, info(Kind::Typedef, 0, false), 5],
        ];
        let words: Vec<u32> = types.concat();
        blob(&words, &s.bytes)
    }

    /// Resolves `access` of `kind` on local root `root`.
    fn run(kind: u32, root: u32, access: &str) -> Result<Resolution, String> {
        let (mut bytes, mut s) = local();
        let access_off = s.at(access);
        // Rebuild with the strings (the access string added last).
        let words: Vec<u32> = bytes[24..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        bytes = blob(&words, &s.bytes);
        let local = Btf::parse(&bytes).unwrap();
        let target_bytes = target();
        let target = Btf::parse(&target_bytes).unwrap();
        let relo = CoreRelo {
            insn_off: 0,
            type_id: root,
            access_str_off: access_off,
            kind,
        };
        let candidates = Candidates::new(&local, &target, &[relo]);
        resolve(&local, &target, &candidates, &relo)
    }

    fn value(kind: u32, root: u32, access: &str) -> Option<u64> {
        run(kind, root, access).unwrap().target
    }

    #[test]
    fn fields_are_found_by_name_wherever_the_target_put_them() {
        // pid: in an anonymous union at byte 8; tgid at 12; parent at 16.
        let r = run(0, 2, "0:0").unwrap();
        assert_eq!(
            (r.local, r.target, r.path.as_str()),
            (0, Some(8), "task.pid")
        );
        assert_eq!(value(0, 2, "0:1"), Some(12));
        assert_eq!(value(0, 2, "0:2"), Some(16));
        // Through a typedef root, and element 1 of an array of them.
        assert_eq!(value(0, 10, "0:1"), Some(12));
        assert_eq!(value(0, 2, "1:1"), Some(40 + 12));
        // An array element: arr[1] at 28 + 4.
        assert_eq!(value(0, 2, "0:5:1"), Some(28 + 4));
        assert_eq!(value(1, 2, "0:5"), Some(8));
        assert_eq!(value(2, 2, "0:0"), Some(1));
        assert_eq!(value(3, 2, "0:0"), Some(1));
        assert_eq!(value(3, 2, "0:3"), Some(0), "unsigned bitfield");
    }

    #[test]
    fn a_missing_field_is_0_to_exists_and_poison_to_the_rest() {
        // state only in the local flavor task___old: no target field.
        assert_eq!(value(2, 6, "0:0"), Some(0));
        assert_eq!(value(0, 6, "0:0"), None);
        // arr[3] is past the target's 2 elements.
        assert_eq!(value(0, 2, "0:5:3"), None);
    }

    #[test]
    fn bitfields_give_the_load_and_the_shifts_of_the_targets_layout() {
        // Target: mode at bit 192 (5 bits), flags at 197 (3 bits): a
        // 4-byte load at byte 24 holds both.
        assert_eq!(value(0, 2, "0:3"), Some(24));
        assert_eq!(value(1, 2, "0:3"), Some(4));
        // flags: bits 5..8 of the load: 64 - (5 + 3) left, 64 - 3 right.
        assert_eq!(value(4, 2, "0:3"), Some(56));
        assert_eq!(value(5, 2, "0:3"), Some(61));
        // The local layout: flags at bit 128, the first 3 bits.
        let r = run(4, 2, "0:3").unwrap();
        assert_eq!(r.local, 64 - 3);
    }

    #[test]
    fn enums_and_types_resolve_by_name() {
        assert_eq!(value(11, 4, "1"), Some(7), "B is 7 on the target");
        assert_eq!(run(11, 4, "1").unwrap().local, 1);
        assert_eq!(value(10, 4, "2"), Some(0), "no C on the target");
        assert_eq!(value(11, 4, "2"), None);
        assert_eq!(value(8, 2, "0"), Some(1));
        assert_eq!(value(9, 2, "0"), Some(40));
        assert_eq!(value(7, 2, "0"), Some(5));
        assert_eq!(value(6, 2, "0"), Some(2));
        // task___old's essential name is task: found, and compatible.
        assert_eq!(value(8, 6, "0"), Some(1));
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        for (kind, root, access) in [
            (0, 2, "0:99"),
            (0, 2, "x"),
            (0, 99, "0:0"),
            (0, 2, ""),
            (0, 1, "0:0"),
            (77, 2, "0"),
            (9, 2, "0:1"),
            (11, 4, "0:1"),
            (12, 2, "0"),
        ] {
            let e = run(kind, root, access).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(run(12, 2, "0").unwrap_err().contains("not supported"));
    }

    fn res(local: u64, target: Option<u64>) -> Resolution {
        Resolution {
            kind: RelocKind::FieldByteOffset,
            local,
            target,
            sizes: None,
            signed: false,
            path: "t.f".into(),
        }
    }

    fn insn(code: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: 0x21,
            off,
            imm,
        }
    }

    #[test]
    fn each_instruction_class_is_patched_where_its_value_is() {
        // r1 += 8 (ALU64 K), r0 = *(u32 *)(r1 + 4) (LDX W), ld_imm64.
        let mut p = [
            insn(0x07, 0, 8),
            insn(0x61, 4, 0),
            insn(0x18, 0, 1),
            insn(0, 0, 0),
        ];
        patch(&mut p, 0, &res(8, Some(1280))).unwrap();
        assert_eq!(p[0].imm, 1280);
        let mut r = res(4, Some(1268));
        r.sizes = Some((4, 8));
        patch(&mut p, 1, &r).unwrap();
        assert_eq!((p[1].off, p[1].code), (1268, 0x79), "a DW load now");
        patch(&mut p, 2, &res(1, Some(7 | 1 << 40))).unwrap();
        assert_eq!((p[2].imm, p[3].imm), (7, 1 << 8));
        // The instruction must hold the object's value.
        assert!(
            patch(&mut p, 0, &res(8, Some(1)))
                .unwrap_err()
                .contains("not the object's")
        );
        // A signed field cannot be resized.
        let mut p = [insn(0x61, 4, 0)];
        r.local = 4;
        r.signed = true;
        assert!(patch(&mut p, 0, &r).unwrap_err().contains("sign"));
        // Poison: a call to the helper that does not exist, both halves.
        let mut p = [insn(0x18, 0, 1), insn(0, 0, 0)];
        patch(&mut p, 0, &res(1, None)).unwrap();
        assert!(p.iter().all(|i| i.code == 0x85 && i.imm == POISON_HELPER));
        assert!(patch(&mut [insn(0x95, 0, 0)], 0, &res(0, Some(1))).is_err());
        assert!(patch(&mut [], 0, &res(0, Some(1))).is_err());
    }

    #[test]
    fn hostile_btf_ends_in_an_answer() {
        let (bytes, _) = local();
        let target_bytes = target();
        for at in 24..bytes.len() {
            for bit in [0, 3, 7] {
                let mut b = bytes.clone();
                b[at] ^= 1 << bit;
                let Ok(local) = Btf::parse(&b) else { continue };
                let target = Btf::parse(&target_bytes).unwrap();
                for kind in 0..13 {
                    for root in 1..13 {
                        let relo = CoreRelo {
                            insn_off: 0,
                            type_id: root,
                            access_str_off: 0,
                            kind,
                        };
                        let c = Candidates::new(&local, &target, &[relo]);
                        let _ = resolve(&local, &target, &c, &relo);
                    }
                }
            }
        }
    }
}
