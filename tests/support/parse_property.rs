//! The property the parse step is fuzzed for, shared by tests/fuzz_parse.rs
//! and the cargo-fuzz crate in fuzz/: `probe::obj::parse` ends in Ok or in an
//! error of one line, never a panic, and a spec it returns can be used (by
//! the loader and `probe inspect`) without an index going out of range.

/// Parses `input` and checks the property, panicking where it does not
/// hold (libFuzzer reports a panic as a crash). Returns whether it parsed.
pub fn parse_and_check(input: &[u8]) -> bool {
    let spec = match probe::obj::parse(input) {
        Ok(spec) => spec,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.is_empty() && !message.chars().any(char::is_control),
                "error message is not one line: {message:?}"
            );
            return false;
        }
    };
    for p in &spec.programs {
        for r in &p.map_refs {
            assert!(r.insn_index < p.insns.len(), "map ref past the end");
            assert!(r.map_index < spec.maps.len(), "map ref to no map");
        }
        for r in &p.relocations {
            assert!(r.insn_index < p.insns.len(), "relocation past the end");
        }
        let fds = vec![0; spec.maps.len()];
        assert_eq!(
            p.insns_with_map_fds(&fds).map(|i| i.len()),
            Some(p.insns.len())
        );
        // No fds at all: refused when it names a map, not a panic.
        assert_eq!(p.insns_with_map_fds(&[]).is_none(), !p.map_refs.is_empty());
        for f in &p.func_info {
            assert!(
                (f.insn_off as usize) < p.insns.len(),
                "func_info past the end"
            );
        }
        for l in &p.line_info {
            assert!(
                (l.insn_off as usize) < p.insns.len(),
                "line_info past the end"
            );
        }
        // CO-RE against the object's own BTF as the target: every record
        // resolves or says why in one line, and patching never panics.
        if !p.core.is_empty()
            && let Some(btf) = spec.btf.as_deref()
            && let Ok(local) = probe::obj::btf::Btf::parse(btf)
        {
            use probe::obj::btf::relo;
            let relos: Vec<_> = p.core.iter().map(|c| c.relo).collect();
            let candidates = relo::Candidates::new(&local, &local, &relos);
            let mut insns = p.insns.clone();
            for c in &p.core {
                assert!(c.insn_index < p.insns.len(), "CO-RE site past the end");
                match relo::resolve(&local, &local, &candidates, &c.relo) {
                    Ok(res) => {
                        if let Err(e) = relo::patch(&mut insns, c.insn_index, &res) {
                            assert!(!e.contains('\n'), "{e}");
                        }
                    }
                    Err(e) => assert!(!e.chars().any(char::is_control), "{e:?}"),
                }
            }
        }
    }
    for s in &spec.skipped {
        assert!(
            !s.name.is_empty() && !s.section.is_empty() && !s.reason.is_empty(),
            "skipped entry with an empty field: {s:?}"
        );
    }
    let text = probe::app::inspect::describe(&spec);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control character in inspect output"
    );
    true
}
