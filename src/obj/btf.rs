//! Reading BTF, the kernel's type information: enough to find where a
//! field of a kernel struct is (`Btf::member_offset`), as the raw
//! tracepoint programs need for `thread_info.status`. Pure and bounded like
//! the ELF parser: bytes in, answers out, every offset checked, no
//! recursion on what the input says.
//!
//! The layout (include/uapi/linux/btf.h): a header { u16 magic 0xeB9F; u8
//! version 1; u8 flags; u32 hdr_len; u32 type_off, type_len, str_off,
//! str_len } (offsets counted from the end of the header), then the types
//! one after another, ids from 1 (0 is `void`). Each type is { u32
//! name_off; u32 info (vlen in bits 0-15, kind in bits 24-28, kind_flag in
//! bit 31); u32 size or type }, followed by data whose length its kind and
//! vlen decide: a struct's members are { u32 name_off, type, offset } each,
//! offset in bits (with kind_flag: bitfield size in the top 8 bits).

use std::collections::HashMap;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
const TYPE_LEN: usize = 12;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;
/// The newest kind this reader knows the length of.
const KIND_MAX: u32 = KIND_ENUM64;

/// Bytes of data after a type's 12, by kind and vlen; None for a kind this
/// reader does not know (it cannot know where the next type starts).
fn extra_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        k if k <= KIND_MAX => 0,
        _ => return None,
    })
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A parsed BTF blob: where each type starts, and its strings.
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Byte offset in `types` of type id i + 1.
    starts: Vec<usize>,
    /// Struct and union ids by name (the first of each name).
    composites: HashMap<&'a str, u32>,
}

/// One member of a struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its type's id.
    pub type_id: u32,
    /// Bits from the start of its struct.
    pub bit_offset: u32,
}

impl<'a> Btf<'a> {
    /// Reads the header and walks every type once, or says in one line
    /// what is wrong.
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>, String> {
        if data.len() < HEADER_LEN {
            return Err(format!("{} bytes, shorter than a BTF header", data.len()));
        }
        let magic = u16::from_le_bytes([data[0], data[1]]);
        if magic != MAGIC {
            return Err(format!(
                "magic {magic:#06x}, not {MAGIC:#06x} (or another byte order)"
            ));
        }
        let field = |at| u32_at(data, at).unwrap_or(0) as usize;
        let hdr_len = field(4);
        let section = |off: usize, len: usize, what: &str| {
            hdr_len
                .checked_add(off)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .and_then(|(start, end)| data.get(start..end))
                .ok_or_else(|| {
                    format!("the {what} section ({len} bytes at {off}) is outside the blob")
                })
        };
        if hdr_len < HEADER_LEN {
            return Err(format!("header length {hdr_len}, under {HEADER_LEN}"));
        }
        let types = section(field(8), field(12), "type")?;
        let strings = section(field(16), field(20), "string")?;
        let mut btf = Btf {
            types,
            strings,
            starts: Vec::new(),
            composites: HashMap::new(),
        };
        let mut at = 0;
        while at < types.len() {
            let (info, name_off) = match (u32_at(types, at + 4), u32_at(types, at)) {
                (Some(i), Some(n)) if at + TYPE_LEN <= types.len() => (i, n),
                _ => return Err(format!("type {} is cut short", btf.starts.len() + 1)),
            };
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let Some(extra) = extra_len(kind, vlen) else {
                return Err(format!(
                    "type {} is of kind {kind}, which this reader does not know",
                    btf.starts.len() + 1
                ));
            };
            let end = at + TYPE_LEN + extra;
            if end > types.len() {
                return Err(format!("type {} is cut short", btf.starts.len() + 1));
            }
            btf.starts.push(at);
            if matches!(kind, KIND_STRUCT | KIND_UNION)
                && let Some(name) = btf.string(name_off).filter(|n| !n.is_empty())
            {
                let id = btf.starts.len() as u32;
                btf.composites.entry(name).or_insert(id);
            }
            at = end;
        }
        Ok(btf)
    }

    /// How many types there are (ids 1 to this).
    pub fn type_count(&self) -> u32 {
        self.starts.len() as u32
    }

    /// The string at `off`, if it is valid UTF-8 ending in a NUL.
    pub fn string(&self, off: u32) -> Option<&'a str> {
        let rest = self.strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// (info, name_off, size_or_type) of type `id`, and where its data starts.
    fn header(&self, id: u32) -> Option<(u32, u32, u32, usize)> {
        let at = *self.starts.get((id as usize).checked_sub(1)?)?;
        Some((
            u32_at(self.types, at + 4)?,
            u32_at(self.types, at)?,
            u32_at(self.types, at + 8)?,
            at + TYPE_LEN,
        ))
    }

    /// The struct or union called `name`.
    pub fn composite(&self, name: &str) -> Option<u32> {
        self.composites.get(name).copied()
    }

    /// `id` with typedefs and qualifiers (const, volatile, restrict, type
    /// tags) taken off, at most 32 of them (a loop in hostile input ends).
    pub fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..32 {
            let (info, _, next, _) = self.header(id)?;
            match (info >> 24) & 0x1f {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = next
                }
                _ => return Some(id),
            }
        }
        None
    }

    /// The member called `name` of struct or union `id`, searched in the
    /// anonymous structs and unions inside it too (offsets added up).
    pub fn member(&self, id: u32, name: &str) -> Option<Member> {
        // Depth-first over anonymous members, bounded.
        let mut stack = vec![(id, 0u32)];
        let mut visited = 0;
        while let Some((id, base)) = stack.pop() {
            visited += 1;
            if visited > 256 {
                return None;
            }
            let (info, _, _, data) = self.header(self.resolve(id)?)?;
            if !matches!((info >> 24) & 0x1f, KIND_STRUCT | KIND_UNION) {
                continue;
            }
            let kind_flag = info >> 31 == 1;
            for i in 0..(info & 0xffff) as usize {
                let at = data + i * 12;
                let (m_name, m_type, m_off) = (
                    u32_at(self.types, at)?,
                    u32_at(self.types, at + 4)?,
                    u32_at(self.types, at + 8)?,
                );
                let bits = if kind_flag { m_off & 0xff_ffff } else { m_off };
                let offset = base.checked_add(bits)?;
                match self.string(m_name) {
                    Some(n) if n == name => {
                        return Some(Member {
                            type_id: m_type,
                            bit_offset: offset,
                        });
                    }
                    Some("") => stack.push((m_type, offset)),
                    _ => {}
                }
            }
        }
        None
    }

    /// The byte offset of `path` (members, outermost first) from the start
    /// of struct `outer`; None if a member is missing or not byte-aligned.
    pub fn member_offset(&self, outer: &str, path: &[&str]) -> Option<u32> {
        let mut id = self.composite(outer)?;
        let mut bits = 0u32;
        for name in path {
            let m = self.member(id, name)?;
            bits = bits.checked_add(m.bit_offset)?;
            id = m.type_id;
        }
        bits.is_multiple_of(8).then_some(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with `struct outer { long a; struct inner in; }` and
    /// `struct inner { int x; union { int y; int z; }; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0long\0outer\0a\0inner\0in\0x\0y\0z\0int\0";
        let s = |name: &str| {
            let mut at = 0;
            for part in strings.split(|&b| b == 0) {
                if part == name.as_bytes() {
                    return at as u32;
                }
                at += part.len() + 1;
            }
            panic!("{name}")
        };
        let mut types = Vec::new();
        let mut put = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        let info = |kind: u32, vlen: u32| kind << 24 | vlen;
        // 1: long (INT, 8 bytes)
        put(&[s("long"), info(KIND_INT, 0), 8, 64]);
        // 2: int
        put(&[s("int"), info(KIND_INT, 0), 4, 32]);
        // 3: struct outer { long a; struct inner in; }
        put(&[s("outer"), info(KIND_STRUCT, 2), 16]);
        put(&[s("a"), 1, 0]);
        put(&[s("in"), 5, 64]);
        // 4: const struct inner (a qualifier to see through)
        put(&[0, info(KIND_CONST, 0), 5]);
        // 5: struct inner { int x; union { int y; int z; }; }
        put(&[s("inner"), info(KIND_STRUCT, 2), 8]);
        put(&[s("x"), 2, 0]);
        put(&[0, 6, 32]);
        // 6: the anonymous union
        put(&[0, info(KIND_UNION, 2), 4]);
        put(&[s("y"), 2, 0]);
        put(&[s("z"), 2, 0]);
        let mut out = Vec::new();
        for w in [
            u32::from(MAGIC) | 1 << 16,
            HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn finds_members_through_anonymous_unions() {
        let data = blob();
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.type_count(), 6);
        assert_eq!(btf.member_offset("outer", &["a"]), Some(0));
        assert_eq!(btf.member_offset("outer", &["in"]), Some(8));
        assert_eq!(btf.member_offset("outer", &["in", "x"]), Some(8));
        assert_eq!(btf.member_offset("outer", &["in", "z"]), Some(12));
        assert_eq!(btf.member_offset("inner", &["y"]), Some(4));
        assert_eq!(btf.member_offset("outer", &["in", "w"]), None);
        assert_eq!(btf.member_offset("nothing", &["a"]), None);
    }

    #[test]
    fn every_truncation_and_byte_flip_ends_in_an_answer() {
        let data = blob();
        for n in 0..data.len() {
            if let Ok(btf) = Btf::parse(&data[..n]) {
                let _ = btf.member_offset("outer", &["in", "z"]);
            }
        }
        for at in 0..data.len() {
            for bit in 0..8 {
                let mut d = data.clone();
                d[at] ^= 1 << bit;
                match Btf::parse(&d) {
                    Ok(btf) => {
                        let _ = btf.member_offset("outer", &["in", "z"]);
                    }
                    Err(e) => assert!(!e.contains('\n'), "{e}"),
                }
            }
        }
        assert!(Btf::parse(b"").is_err_and(|e| e.contains("shorter")));
    }
}
