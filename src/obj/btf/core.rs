//! CO-RE relocations: what a record asks for, in words (`describe`).
//! Resolving them against a kernel's BTF comes with the loader's CO-RE
//! support.

use super::ext::CoreRelo;
use super::{Btf, Kind};

/// libbpf's name for each relocation kind (`bpf_core_relo_kind`).
pub fn kind_label(kind: u32) -> &'static str {
    match kind {
        0 => "byte_off",
        1 => "byte_sz",
        2 => "field_exists",
        3 => "signed",
        4 => "lshift_u64",
        5 => "rshift_u64",
        6 => "local_type_id",
        7 => "target_type_id",
        8 => "type_exists",
        9 => "type_size",
        10 => "enumval_exists",
        11 => "enumval_value",
        12 => "type_matches",
        _ => "unknown",
    }
}

/// `struct task_struct`, `enum pid_type`, `typedef u64`.
fn type_name(btf: &Btf, id: u32) -> String {
    match btf.ty(id) {
        Some(t) => {
            let kind = match t.kind() {
                Kind::Struct => "struct ",
                Kind::Union => "union ",
                Kind::Enum | Kind::Enum64 => "enum ",
                Kind::Typedef => "typedef ",
                _ => "",
            };
            let name = if t.name().is_empty() {
                "(anon)"
            } else {
                t.name()
            };
            format!("{kind}{name}")
        }
        None => format!("type {id}"),
    }
}

/// The access string's path in names: `task_struct.real_parent.tgid`,
/// `pid_type::PIDTYPE_TGID`; the raw indexes where a name is not found.
pub fn access_path(btf: &Btf, relo: &CoreRelo) -> String {
    let access = btf.string(relo.access_str_off).unwrap_or("?");
    let root = btf.ty(relo.type_id);
    let root_name = root.map_or("?", |t| t.name());
    let indexes: Vec<Option<u32>> = access.split(':').map(|i| i.parse().ok()).collect();
    match relo.kind {
        6..=9 | 12 => return type_name(btf, relo.type_id),
        10 | 11 => {
            let name = indexes
                .first()
                .copied()
                .flatten()
                .and_then(|i| {
                    btf.ty(btf.resolve(relo.type_id)?)?
                        .enumerators()
                        .nth(i as usize)
                        .map(|e| e.name)
                })
                .unwrap_or("?");
            return format!("enum {root_name}::{name}");
        }
        _ => {}
    }
    let mut path = root_name.to_string();
    if let Some(Some(first)) = indexes.first()
        && *first != 0
    {
        path.push_str(&format!("[{first}]"));
    }
    let mut id = relo.type_id;
    for index in indexes.iter().skip(1) {
        let Some(index) = *index else {
            path.push_str(".?");
            break;
        };
        let Some(t) = btf.resolve(id).and_then(|r| btf.ty(r)) else {
            break;
        };
        match t.kind() {
            Kind::Struct | Kind::Union => {
                let Some(m) = t.members().nth(index as usize) else {
                    path.push_str(&format!(".#{index}"));
                    break;
                };
                if !m.name.is_empty() {
                    path.push('.');
                    path.push_str(m.name);
                }
                id = m.type_id;
            }
            Kind::Array => {
                path.push_str(&format!("[{index}]"));
                id = t.array().map_or(0, |a| a.0);
            }
            _ => break,
        }
    }
    path
}

/// One line for `probe inspect`: `byte_off task_struct.real_parent
/// (struct task_struct, 0:57)`.
pub fn describe(local: Option<&Btf>, relo: &CoreRelo) -> String {
    let kind = kind_label(relo.kind);
    let Some(btf) = local else {
        return format!("{kind} type={} (no BTF)", relo.type_id);
    };
    let access = btf.string(relo.access_str_off).unwrap_or("?");
    super::shown(&format!(
        "{kind} {} ({}, access {access})",
        access_path(btf, relo),
        type_name(btf, relo.type_id)
    ))
}
