//! An object's BTF made ready for the kernel (to be written).
