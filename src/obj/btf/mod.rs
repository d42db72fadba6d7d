//! Reading BTF, the kernel's (and an object's) type information. Pure and
//! bounded like the ELF parser: bytes in, answers out, every offset
//! checked, no recursion on what the input says.
//!
//! The layout (include/uapi/linux/btf.h): a header { u16 magic 0xeB9F; u8
//! version 1; u8 flags; u32 hdr_len; u32 type_off, type_len, str_off,
//! str_len } (offsets counted from the end of the header), then the types
//! one after another, ids from 1 (0 is `void`). Each type is { u32
//! name_off; u32 info (vlen in bits 0-15, kind in bits 24-28, kind_flag in
//! bit 31); u32 size or type }, followed by data whose length its kind and
//! vlen decide: a struct's members are { u32 name_off, type, offset } each,
//! offset in bits (with kind_flag: bitfield size in the top 8 bits).
//!
//! `Btf` walks the types once to find where each starts; `Btf::ty` then
//! gives a typed view of one (`Type`) read from the bytes on demand, so a
//! kernel's 5 MB of BTF costs one pass and an index, not a copy.
//! `ext` reads `.BTF.ext` (function and line info, CO-RE relocation
//! records), `relo` describes and resolves CO-RE relocations and patches
//! instructions, `fixup` prepares an object's BTF for the kernel.

pub mod ext;
pub mod fixup;
pub mod relo;

const MAGIC: u16 = 0xeb9f;
pub(crate) const HEADER_LEN: usize = 24;
pub(crate) const TYPE_LEN: usize = 12;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;
/// The newest kind this reader knows the length of.
const KIND_MAX: u32 = KIND_ENUM64;

/// How deep a chain of typedefs, qualifiers, arrays or pointers is
/// followed: a loop in hostile input ends there.
pub const MAX_CHAIN: usize = 32;

/// A BTF blob of `types` (each type's words, in id order from 1) and
/// `strings` (starting with the empty string): for probing what a kernel
/// accepts, and for tests.
pub fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let type_len = (types.len() * 4) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + types.len() * 4 + strings.len());
    let header = [
        u32::from(MAGIC) | 1 << 16,
        HEADER_LEN as u32,
        0,
        type_len,
        type_len,
        strings.len() as u32,
    ];
    for w in header.iter().chain(types) {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(strings);
    out
}

/// A name from BTF for a message: control characters escaped, so that the
/// message stays one printable line whatever the file holds.
pub fn shown(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

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

pub(crate) fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A BTF type's kind (`BTF_KIND_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Id 0 only.
    Void,
    /// An integer, char or bool.
    Int,
    /// A pointer.
    Ptr,
    /// An array.
    Array,
    /// A struct.
    Struct,
    /// A union.
    Union,
    /// A 32-bit enum.
    Enum,
    /// A forward declaration (kind_flag: of a union).
    Fwd,
    /// A typedef.
    Typedef,
    /// `volatile`.
    Volatile,
    /// `const`.
    Const,
    /// `restrict`.
    Restrict,
    /// A function (its FUNC_PROTO is its type).
    Func,
    /// A function's signature.
    FuncProto,
    /// A global variable.
    Var,
    /// A data section's variables.
    Datasec,
    /// A floating-point type.
    Float,
    /// An attribute on a declaration.
    DeclTag,
    /// An attribute on a type.
    TypeTag,
    /// A 64-bit enum.
    Enum64,
}

impl Kind {
    fn from_raw(raw: u32) -> Option<Kind> {
        use Kind::*;
        Some(match raw {
            0 => Void,
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// `BTF_KIND_*`'s number.
    pub fn raw(self) -> u32 {
        self as u32
    }

    /// Its name as bpftool prints it (`STRUCT`, `TYPEDEF`).
    pub fn label(self) -> &'static str {
        use Kind::*;
        match self {
            Void => "VOID",
            Int => "INT",
            Ptr => "PTR",
            Array => "ARRAY",
            Struct => "STRUCT",
            Union => "UNION",
            Enum => "ENUM",
            Fwd => "FWD",
            Typedef => "TYPEDEF",
            Volatile => "VOLATILE",
            Const => "CONST",
            Restrict => "RESTRICT",
            Func => "FUNC",
            FuncProto => "FUNC_PROTO",
            Var => "VAR",
            Datasec => "DATASEC",
            Float => "FLOAT",
            DeclTag => "DECL_TAG",
            TypeTag => "TYPE_TAG",
            Enum64 => "ENUM64",
        }
    }

    /// A struct or a union.
    pub fn is_composite(self) -> bool {
        matches!(self, Kind::Struct | Kind::Union)
    }

    /// A typedef or a qualifier, which `Btf::resolve` looks through.
    pub fn is_modifier(self) -> bool {
        matches!(
            self,
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
        )
    }
}

/// A parsed BTF blob: where each type starts, and its strings.
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Byte offset in `types` of type id i + 1.
    starts: Vec<usize>,
    /// Where the type section starts in the blob.
    types_at: usize,
}

/// One member of a struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its type's id.
    pub type_id: u32,
    /// Bits from the start of its struct.
    pub bit_offset: u32,
}

/// A member as its struct lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// Empty for an anonymous struct or union member.
    pub name: &'a str,
    /// Its type's id.
    pub type_id: u32,
    /// Bits from the start of its struct.
    pub bit_offset: u32,
    /// Bits of a bitfield; 0 for an ordinary member.
    pub bitfield_size: u32,
}

/// An enumerator: `name = value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enumerator<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its value, as the enum's signedness reads it.
    pub value: i64,
}

/// A variable of a DATASEC: its type, where it is and how big.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecVar {
    /// The VAR type's id.
    pub type_id: u32,
    /// Bytes from the section's start.
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
}

/// An INT's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntEncoding {
    /// BTF_INT_SIGNED.
    pub signed: bool,
    /// BTF_INT_CHAR.
    pub char: bool,
    /// BTF_INT_BOOL.
    pub bool: bool,
    /// Bit offset of the value (0 in anything compilers emit today).
    pub offset: u32,
    /// Bits of the value.
    pub bits: u32,
}

/// One type of a `Btf`, read from its bytes on demand. Accessors of
/// another kind's data return None or nothing.
#[derive(Clone, Copy)]
pub struct Type<'b, 'a> {
    btf: &'b Btf<'a>,
    id: u32,
    info: u32,
    name_off: u32,
    size_or_type: u32,
    /// Where the kind's data starts in `btf.types`.
    data: usize,
    kind: Kind,
}

impl std::fmt::Debug for Type<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} '{}'", self.id, self.kind.label(), self.name())
    }
}

impl<'b, 'a> Type<'b, 'a> {
    /// Its id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its name; empty when anonymous (or unreadable).
    pub fn name(&self) -> &'a str {
        self.btf.string(self.name_off).unwrap_or("")
    }

    /// Its name's offset in the string section.
    pub fn name_off(&self) -> u32 {
        self.name_off
    }

    /// The number the kind gives meaning to: members, enumerators,
    /// parameters, variables.
    pub fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    /// Bit 31 of info: bitfield offsets in a struct, a union for a FWD, a
    /// signed enum.
    pub fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }

    /// Bytes, for the kinds that state a size (INT, STRUCT, UNION, ENUM,
    /// ENUM64, DATASEC, FLOAT).
    pub fn size(&self) -> Option<u32> {
        use Kind::*;
        matches!(
            self.kind,
            Int | Struct | Union | Enum | Enum64 | Datasec | Float
        )
        .then_some(self.size_or_type)
    }

    /// The type this one refers to (PTR, TYPEDEF, qualifiers, FUNC, VAR,
    /// DECL_TAG, TYPE_TAG; a FUNC_PROTO's return type).
    pub fn referenced(&self) -> Option<u32> {
        use Kind::*;
        matches!(
            self.kind,
            Ptr | Typedef
                | Volatile
                | Const
                | Restrict
                | Func
                | FuncProto
                | Var
                | DeclTag
                | TypeTag
        )
        .then_some(self.size_or_type)
    }

    fn word(&self, index: usize) -> Option<u32> {
        u32_at(self.btf.types, self.data + 4 * index)
    }

    /// An INT's encoding.
    pub fn int(&self) -> Option<IntEncoding> {
        if self.kind != Kind::Int {
            return None;
        }
        let w = self.word(0)?;
        let encoding = (w >> 24) & 0xf;
        Some(IntEncoding {
            signed: encoding & 1 != 0,
            char: encoding & 2 != 0,
            bool: encoding & 4 != 0,
            offset: (w >> 16) & 0xff,
            bits: w & 0xff,
        })
    }

    /// An ARRAY's (element type, index type, number of elements).
    pub fn array(&self) -> Option<(u32, u32, u32)> {
        (self.kind == Kind::Array).then_some((self.word(0)?, self.word(1)?, self.word(2)?))
    }

    /// A struct's or union's members, in order.
    pub fn members(&self) -> impl Iterator<Item = Field<'a>> + use<'a, 'b> {
        let n = if self.kind.is_composite() {
            self.vlen()
        } else {
            0
        };
        let t = *self;
        (0..n).filter_map(move |i| {
            let (name, ty, off) = (t.word(3 * i)?, t.word(3 * i + 1)?, t.word(3 * i + 2)?);
            let (bit_offset, bitfield_size) = if t.kind_flag() {
                (off & 0xff_ffff, off >> 24)
            } else {
                (off, 0)
            };
            Some(Field {
                name: t.btf.string(name).unwrap_or(""),
                type_id: ty,
                bit_offset,
                bitfield_size,
            })
        })
    }

    /// An ENUM's or ENUM64's enumerators, in order.
    pub fn enumerators(&self) -> impl Iterator<Item = Enumerator<'a>> + use<'a, 'b> {
        let (n, words) = match self.kind {
            Kind::Enum => (self.vlen(), 2),
            Kind::Enum64 => (self.vlen(), 3),
            _ => (0, 2),
        };
        let t = *self;
        (0..n).filter_map(move |i| {
            let name = t.btf.string(t.word(words * i)?).unwrap_or("");
            let lo = t.word(words * i + 1)?;
            let value = if words == 3 {
                let hi = t.word(words * i + 2)?;
                (u64::from(hi) << 32 | u64::from(lo)) as i64
            } else if t.kind_flag() {
                i64::from(lo as i32)
            } else {
                i64::from(lo)
            };
            Some(Enumerator { name, value })
        })
    }

    /// A FUNC_PROTO's parameters: (name, type id) each.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, u32)> + use<'a, 'b> {
        let n = if self.kind == Kind::FuncProto {
            self.vlen()
        } else {
            0
        };
        let t = *self;
        (0..n).filter_map(move |i| {
            Some((
                t.btf.string(t.word(2 * i)?).unwrap_or(""),
                t.word(2 * i + 1)?,
            ))
        })
    }

    /// A VAR's linkage (0 static, 1 global, 2 extern); a FUNC's is its vlen.
    pub fn linkage(&self) -> Option<u32> {
        match self.kind {
            Kind::Var => self.word(0),
            Kind::Func => Some(self.vlen() as u32),
            _ => None,
        }
    }

    /// A DATASEC's variables, in order.
    pub fn vars(&self) -> impl Iterator<Item = SecVar> + use<'a, 'b> {
        let n = if self.kind == Kind::Datasec {
            self.vlen()
        } else {
            0
        };
        let t = *self;
        (0..n).filter_map(move |i| {
            Some(SecVar {
                type_id: t.word(3 * i)?,
                offset: t.word(3 * i + 1)?,
                size: t.word(3 * i + 2)?,
            })
        })
    }

    /// Where this type's 12-byte header starts in the whole blob (for
    /// `fixup`, which patches a copy in place).
    pub fn blob_offset(&self) -> usize {
        self.btf.types_at + self.data - TYPE_LEN
    }
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
                .and_then(|(start, end)| Some((start, data.get(start..end)?)))
                .ok_or_else(|| {
                    format!("the {what} section ({len} bytes at {off}) is outside the blob")
                })
        };
        if hdr_len < HEADER_LEN {
            return Err(format!("header length {hdr_len}, under {HEADER_LEN}"));
        }
        let (types_at, types) = section(field(8), field(12), "type")?;
        let (_, strings) = section(field(16), field(20), "string")?;
        let mut btf = Btf {
            types,
            strings,
            starts: Vec::new(),
            types_at,
        };
        let mut at = 0;
        while at < types.len() {
            let info = match u32_at(types, at + 4) {
                Some(i) if at + TYPE_LEN <= types.len() => i,
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
            if kind == 0 {
                return Err(format!(
                    "type {} is of kind 0 (void has no entry)",
                    btf.starts.len() + 1
                ));
            }
            let end = at + TYPE_LEN + extra;
            if end > types.len() {
                return Err(format!("type {} is cut short", btf.starts.len() + 1));
            }
            btf.starts.push(at);
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

    /// Type `id`; None for an id past the last (and for 0, void, which
    /// has no entry: see `is_void`).
    pub fn ty(&self, id: u32) -> Option<Type<'_, 'a>> {
        let at = *self.starts.get((id as usize).checked_sub(1)?)?;
        let info = u32_at(self.types, at + 4)?;
        Some(Type {
            btf: self,
            id,
            info,
            name_off: u32_at(self.types, at)?,
            size_or_type: u32_at(self.types, at + 8)?,
            data: at + TYPE_LEN,
            // Checked by parse to be a known kind.
            kind: Kind::from_raw((info >> 24) & 0x1f)?,
        })
    }

    /// Every type, in id order.
    pub fn types(&self) -> impl Iterator<Item = Type<'_, 'a>> {
        (1..=self.type_count()).filter_map(|id| self.ty(id))
    }

    /// The kind of `id`, Void for 0.
    pub fn kind(&self, id: u32) -> Option<Kind> {
        if id == 0 {
            return Some(Kind::Void);
        }
        Some(self.ty(id)?.kind())
    }

    /// The first struct or union called `name` (a scan: the callers look
    /// up a name or two, so no index is built for every parse).
    pub fn composite(&self, name: &str) -> Option<u32> {
        self.types()
            .find(|t| t.kind().is_composite() && t.name() == name)
            .map(|t| t.id())
    }

    /// `id` with typedefs and qualifiers (const, volatile, restrict, type
    /// tags) taken off, at most MAX_CHAIN of them (a loop in hostile input
    /// ends).
    pub fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_CHAIN {
            if id == 0 {
                return Some(0);
            }
            let t = self.ty(id)?;
            if !t.kind().is_modifier() {
                return Some(id);
            }
            id = t.referenced()?;
        }
        None
    }

    /// The size in bytes of a value of type `id` (typedefs and qualifiers
    /// looked through, arrays multiplied out, pointers 8), as the kernel's
    /// btf_resolve_size computes it; None for void, functions and
    /// anything unsized or looping.
    pub fn size_of(&self, id: u32) -> Option<u64> {
        let mut id = id;
        let mut count: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let t = self.ty(self.resolve(id)?)?;
            match t.kind() {
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float
                | Kind::Datasec => return count.checked_mul(t.size()?.into()),
                Kind::Ptr => return count.checked_mul(8),
                Kind::Array => {
                    let (elem, _, n) = t.array()?;
                    count = count.checked_mul(n.into())?;
                    id = elem;
                }
                Kind::Var => id = t.referenced()?,
                _ => return None,
            }
        }
        None
    }

    /// The first type of `kind` called `name`.
    pub fn find(&self, kind: Kind, name: &str) -> Option<u32> {
        self.types()
            .find(|t| t.kind() == kind && t.name() == name)
            .map(|t| t.id())
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
            let t = self.ty(self.resolve(id)?)?;
            if !t.kind().is_composite() {
                continue;
            }
            for m in t.members() {
                let offset = base.checked_add(m.bit_offset)?;
                if m.name == name {
                    return Some(Member {
                        type_id: m.type_id,
                        bit_offset: offset,
                    });
                }
                if m.name.is_empty() {
                    stack.push((m.type_id, offset));
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
        put(&[0, info(Kind::Const.raw(), 0), 5]);
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
