//! An object's BTF made ready for the kernel. Two steps, both on a copy:
//!
//! - `fill_datasecs`: the compiler leaves each DATASEC's size and its
//!   variables' offsets 0 (they are known only once the ELF is laid out);
//!   the kernel checks them against the map each describes, so they are
//!   filled in from the ELF's section sizes and symbol values, and the
//!   variables sorted by offset, as the kernel requires.
//! - `sanitize`: a kernel older than a kind the object uses refuses the
//!   whole blob. Each such type is rewritten as an older kind the kernel
//!   knows, in place and of the same length (so every type id, string
//!   offset and `.BTF.ext` reference stays valid), as libbpf does: VAR and
//!   DECL_TAG become a one-byte INT, DATASEC a struct whose members are its
//!   variables (names with `.` made `_`), FLOAT an empty struct of its
//!   size, TYPE_TAG a CONST, ENUM64 a union of its size whose members are
//!   one-byte INTs (one such INT appended at the end: the only change of
//!   length, and it moves no id). What these kinds carry is description
//!   (tags) or layout the verifier does not use for loading programs; the
//!   maps and functions keep the types they are checked against.

use super::{Btf, HEADER_LEN, Kind, TYPE_LEN, u32_at};

/// What the running kernel's BTF loader accepts, probed by the loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelKinds {
    /// VAR and DATASEC (5.2).
    pub datasec: bool,
    /// FLOAT (5.13).
    pub float: bool,
    /// DECL_TAG (5.16).
    pub decl_tag: bool,
    /// TYPE_TAG (5.17).
    pub type_tag: bool,
    /// ENUM64 (6.0).
    pub enum64: bool,
}

impl KernelKinds {
    /// A kernel that knows every kind this reader does.
    pub const ALL: KernelKinds = KernelKinds {
        datasec: true,
        float: true,
        decl_tag: true,
        type_tag: true,
        enum64: true,
    };

    /// A kernel that knows none of the kinds newer than BTF itself.
    pub const NONE: KernelKinds = KernelKinds {
        datasec: false,
        float: false,
        decl_tag: false,
        type_tag: false,
        enum64: false,
    };

    /// Records whether the kernel knows `kind` (VAR and DATASEC go
    /// together: they came in the same release).
    pub fn set(&mut self, kind: Kind, known: bool) {
        match kind {
            Kind::Var | Kind::Datasec => self.datasec = known,
            Kind::Float => self.float = known,
            Kind::DeclTag => self.decl_tag = known,
            Kind::TypeTag => self.type_tag = known,
            Kind::Enum64 => self.enum64 = known,
            _ => {}
        }
    }

    /// Whether the kernel knows `kind`.
    pub fn knows(&self, kind: Kind) -> bool {
        match kind {
            Kind::Var | Kind::Datasec => self.datasec,
            Kind::Float => self.float,
            Kind::DeclTag => self.decl_tag,
            Kind::TypeTag => self.type_tag,
            Kind::Enum64 => self.enum64,
            _ => true,
        }
    }
}

const OUTSIDE: &str = "a type reaches past the blob's end";

fn put_u32(blob: &mut [u8], at: usize, value: u32) -> Result<(), String> {
    let end = at.checked_add(4).ok_or(OUTSIDE)?;
    blob.get_mut(at..end)
        .ok_or(OUTSIDE)?
        .copy_from_slice(&value.to_le_bytes());
    Ok(())
}

/// A copy of `blob` with every DATASEC of size 0 given its section's size
/// (`section_size(name)`) and each global variable the offset of its
/// symbol (`var_offset(variable)`: static variables keep the compiler's
/// offsets, as libbpf does), the variables then sorted by offset.
/// A DATASEC the ELF has no section for (or a variable without a symbol)
/// is left as it is: the kernel then refuses the blob, which the loader
/// reports.
pub fn fill_datasecs(
    blob: &[u8],
    section_size: impl Fn(&str) -> Option<u64>,
    var_offset: impl Fn(&str) -> Option<u64>,
) -> Result<Vec<u8>, String> {
    let btf = Btf::parse(blob)?;
    let mut out = blob.to_vec();
    for t in btf.types().filter(|t| t.kind() == Kind::Datasec) {
        let header = t.blob_offset();
        let mut size = t.size().unwrap_or(0);
        if size == 0
            && let Some(s) = section_size(t.name()).and_then(|s| u32::try_from(s).ok())
        {
            size = s;
            put_u32(&mut out, header + 8, size)?;
        }
        let mut vars: Vec<[u32; 3]> = Vec::with_capacity(t.vlen());
        for var in t.vars() {
            let v = btf.ty(var.type_id);
            let global = v.and_then(|v| v.linkage()) == Some(1);
            let offset = match v.filter(|_| global).and_then(|v| var_offset(v.name())) {
                Some(o) => u32::try_from(o).map_err(|_| "a variable's offset is past 4 GiB")?,
                None => var.offset,
            };
            vars.push([var.type_id, offset, var.size]);
        }
        vars.sort_by_key(|v| v[1]);
        for (i, v) in vars.iter().enumerate() {
            for (w, word) in v.iter().enumerate() {
                put_u32(&mut out, header + TYPE_LEN + 12 * i + 4 * w, *word)?;
            }
        }
    }
    Ok(out)
}

/// The kinds in `blob` the kernel does not know, each once, in the order
/// they first appear (`KernelKinds::NONE`: every kind newer than BTF
/// itself that the blob uses).
pub fn unknown_kinds(blob: &[u8], kernel: &KernelKinds) -> Vec<Kind> {
    let Ok(btf) = Btf::parse(blob) else {
        return Vec::new();
    };
    let mut kinds: Vec<Kind> = Vec::new();
    for t in btf.types() {
        if !kernel.knows(t.kind()) && !kinds.contains(&t.kind()) {
            kinds.push(t.kind());
        }
    }
    kinds
}

fn info(kind: Kind, vlen: usize) -> u32 {
    (kind.raw() << 24) | (vlen as u32 & 0xffff)
}

/// A copy of `blob` whose types of kinds the kernel does not know are
/// rewritten as kinds it does (see the module's doc). A blob the kernel
/// knows every kind of comes back unchanged.
pub fn sanitize(blob: &[u8], kernel: &KernelKinds) -> Result<Vec<u8>, String> {
    let btf = Btf::parse(blob)?;
    let mut out = blob.to_vec();
    // The one-byte INT ENUM64's members become, appended if needed.
    let placeholder = btf.type_count() + 1;
    let mut need_placeholder = false;
    let mut renames: Vec<u32> = Vec::new();
    for t in btf.types() {
        if kernel.knows(t.kind()) {
            continue;
        }
        let at = t.blob_offset();
        let data = at + TYPE_LEN;
        match t.kind() {
            Kind::Var | Kind::DeclTag => {
                // Size 1: an INT larger than the variable it stands for
                // could fail the kernel's size checks.
                put_u32(&mut out, at + 4, info(Kind::Int, 0))?;
                put_u32(&mut out, at + 8, 1)?;
                put_u32(&mut out, data, 8)?;
            }
            Kind::Datasec => {
                put_u32(&mut out, at + 4, info(Kind::Struct, t.vlen()))?;
                renames.push(t.name_off());
                for (i, var) in t.vars().enumerate() {
                    // {type, offset, size} -> {name, type, bit offset}.
                    let name = btf.ty(var.type_id).map_or(0, |v| v.name_off());
                    let bits = var.offset.checked_mul(8).ok_or(OUTSIDE)?;
                    let m = data + 12 * i;
                    put_u32(&mut out, m, name)?;
                    put_u32(&mut out, m + 4, var.type_id)?;
                    put_u32(&mut out, m + 8, bits)?;
                }
            }
            Kind::Float => {
                // C has no struct called `float`: anonymous.
                put_u32(&mut out, at, 0)?;
                put_u32(&mut out, at + 4, info(Kind::Struct, 0))?;
            }
            Kind::TypeTag => {
                put_u32(&mut out, at, 0)?;
                put_u32(&mut out, at + 4, info(Kind::Const, 0))?;
            }
            Kind::Enum64 => {
                put_u32(&mut out, at + 4, info(Kind::Union, t.vlen()))?;
                for i in 0..t.vlen() {
                    // {name, lo, hi} -> {name, placeholder, 0}.
                    put_u32(&mut out, data + 12 * i + 4, placeholder)?;
                    put_u32(&mut out, data + 12 * i + 8, 0)?;
                }
                need_placeholder = true;
            }
            _ => {}
        }
    }
    rename_sections(&mut out, &btf, &renames)?;
    if need_placeholder {
        out = append_int(&out)?;
    }
    Ok(out)
}

/// A struct name may not hold `.`: `.rodata` becomes `_rodata`, in place
/// in the strings (the same length).
fn rename_sections(out: &mut [u8], btf: &Btf, name_offs: &[u32]) -> Result<(), String> {
    let strings_at = HEADER_LEN + u32_at(out, 4).unwrap_or(0) as usize - HEADER_LEN
        + u32_at(out, 16).unwrap_or(0) as usize;
    for &off in name_offs {
        let Some(name) = btf.string(off) else {
            continue;
        };
        let start = strings_at.checked_add(off as usize).ok_or(OUTSIDE)?;
        let bytes = out.get_mut(start..start + name.len()).ok_or(OUTSIDE)?;
        for b in bytes.iter_mut().filter(|b| **b == b'.') {
            *b = b'_';
        }
    }
    Ok(())
}

/// `blob` with an anonymous one-byte unsigned INT added after the last
/// type: the types grow by 16 bytes and the strings move with them.
fn append_int(blob: &[u8]) -> Result<Vec<u8>, String> {
    let word = |at| u32_at(blob, at).ok_or("a header field is missing");
    let (hdr_len, type_off, type_len, str_off, str_len) =
        (word(4)?, word(8)?, word(12)?, word(16)?, word(20)?);
    let types_end = (hdr_len + type_off + type_len) as usize;
    if str_off != type_off + type_len {
        return Err("the strings do not follow the types".into());
    }
    let mut out = Vec::with_capacity(blob.len() + 16);
    out.extend_from_slice(blob.get(..types_end).ok_or(OUTSIDE)?);
    for w in [0, info(Kind::Int, 0), 1, 8] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let strings_start = (hdr_len + str_off) as usize;
    out.extend_from_slice(
        blob.get(strings_start..strings_start + str_len as usize)
            .ok_or(OUTSIDE)?,
    );
    put_u32(&mut out, 12, type_len + 16)?;
    put_u32(&mut out, 16, str_off + 16)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Strings: 1 "int", 5 "a", 7 "b", 9 ".data", 15 "tag", 19 "e", 21 "X".
    const STRINGS: &[u8] = b"\0int\0a\0b\0.data\0tag\0e\0X\0";

    fn sample() -> Vec<u8> {
        super::super::blob(
            &[
                // 1: int
                1,
                info(Kind::Int, 0),
                4,
                1 << 24 | 32,
                // 2: VAR a (global), 3: VAR b (global)
                5,
                info(Kind::Var, 0),
                1,
                1,
                7,
                info(Kind::Var, 0),
                1,
                1,
                // 4: DATASEC .data, size 0, b then a, offsets 0
                9,
                info(Kind::Datasec, 2),
                0,
                3,
                0,
                4,
                2,
                0,
                4,
                // 5: DECL_TAG "tag" on 2
                15,
                info(Kind::DeclTag, 0),
                2,
                u32::MAX,
                // 6: TYPE_TAG "tag" -> 1
                15,
                info(Kind::TypeTag, 0),
                1,
                // 7: FLOAT "X" of 8
                21,
                info(Kind::Float, 0),
                8,
                // 8: ENUM64 "e", one enumerator X = 1 << 40
                19,
                info(Kind::Enum64, 1),
                8,
                21,
                0,
                1 << 8,
            ],
            STRINGS,
        )
    }

    #[test]
    fn datasecs_get_their_size_and_sorted_offsets() {
        let fixed = fill_datasecs(
            &sample(),
            |s| (s == ".data").then_some(8),
            |v| match v {
                "a" => Some(0),
                "b" => Some(4),
                _ => None,
            },
        )
        .unwrap();
        let btf = Btf::parse(&fixed).unwrap();
        let sec = btf.ty(4).unwrap();
        assert_eq!(sec.size(), Some(8));
        let vars: Vec<(u32, u32)> = sec.vars().map(|v| (v.type_id, v.offset)).collect();
        assert_eq!(vars, [(2, 0), (3, 4)]);
    }

    #[test]
    fn unknown_kinds_become_known_ones_of_the_same_length() {
        let old = KernelKinds {
            datasec: true,
            ..KernelKinds::NONE
        };
        let data = sample();
        assert_eq!(
            unknown_kinds(&data, &old),
            [Kind::DeclTag, Kind::TypeTag, Kind::Float, Kind::Enum64]
        );
        let out = sanitize(&data, &old).unwrap();
        let btf = Btf::parse(&out).unwrap();
        let kinds: Vec<Kind> = btf.types().map(|t| t.kind()).collect();
        use Kind::*;
        assert_eq!(
            kinds,
            [Int, Var, Var, Datasec, Int, Const, Struct, Union, Int]
        );
        assert_eq!(btf.ty(7).unwrap().size(), Some(8));
        let member = btf.ty(8).unwrap().members().next().unwrap();
        assert_eq!((member.name, member.type_id), ("X", 9));
        assert_eq!(btf.size_of(9), Some(1));
        assert!(unknown_kinds(&out, &old).is_empty());
        // A kernel that knows everything: nothing changes.
        assert_eq!(sanitize(&data, &KernelKinds::ALL).unwrap(), data);
    }

    #[test]
    fn datasecs_become_structs_for_kernels_before_5_2() {
        let none = KernelKinds::NONE;
        let fixed = fill_datasecs(
            &sample(),
            |_| Some(8),
            |v| Some(if v == "a" { 0 } else { 4 }),
        )
        .unwrap();
        let out = sanitize(&fixed, &none).unwrap();
        let btf = Btf::parse(&out).unwrap();
        let sec = btf.ty(4).unwrap();
        assert_eq!(
            (sec.kind(), sec.name(), sec.size()),
            (Kind::Struct, "_data", Some(8))
        );
        let members: Vec<(&str, u32, u32)> = sec
            .members()
            .map(|m| (m.name, m.type_id, m.bit_offset))
            .collect();
        assert_eq!(members, [("a", 2, 0), ("b", 3, 32)]);
        assert_eq!(btf.ty(2).unwrap().kind(), Kind::Int);
    }

    #[test]
    fn hostile_blobs_end_in_an_answer() {
        let data = sample();
        for n in 0..data.len() {
            let _ = sanitize(&data[..n], &KernelKinds::ALL);
        }
        for at in 0..data.len() {
            for bit in 0..8 {
                let mut d = data.clone();
                d[at] ^= 1 << bit;
                let _ = sanitize(&d, &KernelKinds::NONE);
                let _ = fill_datasecs(&d, |_| Some(u64::MAX), |_| Some(7));
            }
        }
    }
}
