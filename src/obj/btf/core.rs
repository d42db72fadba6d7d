//! CO-RE relocations: resolved against a target kernel's BTF (to be
//! written).
