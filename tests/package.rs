//! scripts/package (issue 13): the .deb it builds, installed with dpkg on
//! this machine and removed again. What it holds (the static binary, the
//! man page, the copyright file, the unit, node_exporter's textfile
//! directory, and nothing else; no Depends); the binary saying the
//! package's version; the copyright file naming the GPL, version 2 only,
//! and every crate the binary links; the man page where `man` finds it,
//! with every option of the binary's help and its sections on output,
//! signals, exit status (every code) and files; the
//! unit passing `systemd-analyze verify` and `systemd-analyze security
//! --offline=yes`, and not enabled; `dpkg -r` removing every file, and
//! `dpkg --purge` every trace. The machine is left as it was, even when a
//! check fails (a guard purges the package and puts back what dpkg took);
//! the test refuses to run where a `probe` package, or a file the package
//! would install, is already there. Also: the man page generator's troff
//! escaping (no root needed).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{scratch_dir, serial};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const UNIT: &str = "/lib/systemd/system/probe-exporter.service";
const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
/// What the unit writes; the package's prerm deletes it.
const METRICS_FILE: &str = "/var/lib/prometheus/node-exporter/probe.prom";
/// Every file (not directory) the package may hold.
const FILES: [&str; 4] = [
    "/usr/bin/probe",
    "/usr/share/man/man1/probe.1.gz",
    COPYRIGHT,
    UNIT,
];
const COPYRIGHT: &str = "/usr/share/doc/probe/copyright";

/// True as root with dpkg. Otherwise the test says it is skipped and why,
/// and returns false; where PROBE_TESTS_NEED_ROOT says every test must
/// run (scripts/test), it fails instead.
fn root_with_dpkg_or_skip() -> bool {
    let test = thread::current().name().unwrap_or("this test").to_string();
    // SAFETY: geteuid has no preconditions.
    let why = if unsafe { libc::geteuid() } != 0 {
        "it installs a .deb with dpkg, which needs root (sudo cargo test)"
    } else if !runs("dpkg", &["--version"]) {
        "it installs a .deb, and this machine has no dpkg (not Debian)"
    } else {
        return true;
    };
    assert!(
        std::env::var_os("PROBE_TESTS_NEED_ROOT").is_none(),
        "{test}: {why}, and PROBE_TESTS_NEED_ROOT says skipping is not allowed"
    );
    eprintln!("{test}: skipped: {why}");
    false
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `program args` must succeed; its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// dpkg ARGS, waiting (up to 2 minutes) while another dpkg or apt holds
/// dpkg's lock.
fn dpkg(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Command::new("dpkg")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .expect("run dpkg");
        let locked = text(&out.stderr).contains("lock");
        if out.status.success() || !locked || Instant::now() > deadline {
            return out;
        }
        thread::sleep(Duration::from_secs(1));
    }
}

fn dpkg_ok(args: &[&str]) -> String {
    let out = dpkg(args);
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// dpkg's state of package `probe`: None when dpkg knows no such package,
/// else (status, version) as in `installed`/`config-files`/`half-installed`.
fn package_state() -> Option<(String, String)> {
    let out = output(
        "dpkg-query",
        &["-W", "-f=${db:Status-Status} ${Version}", "probe"],
    );
    let said = text(&out.stdout);
    let (status, version) = said.trim().split_once(' ').unwrap_or((said.trim(), ""));
    match (out.status.success(), status) {
        (false, _) | (true, "" | "not-installed") => None,
        (true, _) => Some((status.to_string(), version.to_string())),
    }
}

/// A directory as it was before the test: (path, mode, uid, gid).
type Dir = (PathBuf, u32, u32, u32);

/// Puts the machine back as the test found it, whatever happened: purges
/// the package if dpkg knows it, makes again the directories dpkg took
/// with it (an empty one that was there before and no other package
/// claims goes with the package), and puts back a metrics file the
/// package's prerm deleted.
struct Restore {
    dirs: Vec<Dir>,
    metrics: Option<(Vec<u8>, u32)>,
}

impl Restore {
    fn now(&self) {
        if package_state().is_some() {
            let out = dpkg(&["--purge", "probe"]);
            if !out.status.success() {
                eprintln!("package test: could not purge probe: {}", text(&out.stderr));
            }
        }
        for (dir, mode, uid, gid) in &self.dirs {
            if !dir.exists() {
                let _ = fs::create_dir_all(dir);
                let _ = fs::set_permissions(dir, fs::Permissions::from_mode(*mode));
                let _ = std::os::unix::fs::chown(dir, Some(*uid), Some(*gid));
            }
        }
        if let Some((bytes, mode)) = &self.metrics
            && !Path::new(METRICS_FILE).exists()
        {
            let _ = fs::write(METRICS_FILE, bytes);
            let _ = fs::set_permissions(METRICS_FILE, fs::Permissions::from_mode(*mode));
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        self.now();
    }
}

/// Runs scripts/package --out DIR; the .deb it names.
fn build_package(dir: &Path) -> PathBuf {
    let out = Command::new(format!("{ROOT}/scripts/package"))
        .arg("--out")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/package");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/package failed ({}):\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "scripts/package's stdout is not one path: {stdout:?}"
    );
    let deb = PathBuf::from(lines[0]);
    assert!(deb.is_absolute(), "not an absolute path: {deb:?}");
    assert_eq!(
        deb.parent().map(|p| p.canonicalize().unwrap()),
        Some(dir.canonicalize().unwrap()),
        "the .deb is not in --out"
    );
    assert!(deb.is_file(), "{deb:?} does not exist");
    deb
}

/// The paths a .deb holds, as `/usr/bin/probe` (directories end in `/`).
fn contents(deb: &Path) -> Vec<String> {
    ok("dpkg-deb", &["--contents", deb.to_str().unwrap()])
        .lines()
        .map(|l| {
            let path = l.split_whitespace().nth(5).expect("a path");
            path.strip_prefix('.').unwrap_or(path).to_string()
        })
        .filter(|p| p != "/")
        .collect()
}

/// Every long option (`--name`) a help text mentions.
fn long_options(help: &str) -> BTreeSet<String> {
    help.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.len() > 2 && w.starts_with("--") && !w.starts_with("---"))
        .map(str::to_string)
        .collect()
}

/// The man page as man (or groff) shows it, in plain ASCII; panics on
/// groff's warnings.
fn rendered_man_page(page: &Path) -> String {
    let troff = ok("zcat", &[page.to_str().unwrap()]);
    let mut groff = Command::new("groff")
        .args(["-man", "-Tascii", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run groff");
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(troff.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert!(out.status.success(), "groff failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "groff warns about the man page");
    text(&out.stdout)
}

/// systemd-analyze, installed (the `systemd` package) if missing. PID 1
/// need not be systemd: verify and security --offline read unit files.
/// The install starts nothing: where PID 1 is not systemd, systemctl does
/// nothing live, and a policy-rc.d forbids invoke-rc.d to start services
/// for the time of the install.
fn ensure_systemd_analyze() {
    if runs("systemd-analyze", &["--version"]) {
        return;
    }
    struct Policy(Option<&'static str>);
    impl Drop for Policy {
        fn drop(&mut self) {
            if let Some(path) = self.0 {
                let _ = fs::remove_file(path);
            }
        }
    }
    let path = "/usr/sbin/policy-rc.d";
    let _policy = if Path::new(path).exists() {
        Policy(None)
    } else {
        fs::write(
            path,
            "#!/bin/sh\n# tests/package.rs: start nothing\nexit 101\n",
        )
        .unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        Policy(Some(path))
    };
    eprintln!("package test: installing systemd for systemd-analyze (apt-get)");
    ok("apt-get", &["update", "-qq"]);
    ok(
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=120",
            "systemd",
        ],
    );
    assert!(runs("systemd-analyze", &["--version"]));
}

/// The installed unit, checked three ways. `systemd-analyze verify`: it
/// parses (an unknown or misspelt key, a bad value, is a warning: none may
/// name the unit), ExecStart's binary exists and is executable, the units
/// it wants exist, and `man probe(1)` (Documentation=) finds the page.
/// `systemd-analyze security --offline=yes`: the sandbox as systemd
/// itself scores it, overall exposure at most 4.0, and each setting the
/// issue asks for in force. And the text: ExecStart, the capabilities,
/// the limits.
fn check_unit() {
    ensure_systemd_analyze();
    let verify = output("systemd-analyze", &["verify", UNIT]);
    let stderr = text(&verify.stderr);
    assert!(
        verify.status.success(),
        "systemd-analyze verify {UNIT}: {}\n{stderr}",
        verify.status
    );
    for line in stderr.lines() {
        assert!(
            !line.contains("probe"),
            "systemd-analyze verify warns: {line}\n{stderr}"
        );
        eprintln!("package test: systemd-analyze verify, about another unit: {line}");
    }

    let security = output(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "--threshold=40",
            "--json=short",
            UNIT,
        ],
    );
    let report = text(&security.stdout);
    assert!(
        security.status.success(),
        "systemd-analyze security: exposure over 4.0, or it failed ({}):\n{}{}",
        security.status,
        report,
        text(&security.stderr)
    );
    let checks: Vec<serde_json::Value> = serde_json::from_str(&report).expect("security's JSON");
    let set = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("systemd-analyze security has no check {name}"))["set"]
            == true
    };
    for name in [
        "NoNewPrivileges=",
        "ProtectSystem=",
        "ProtectHome=",
        "PrivateTmp=",
        "ProtectKernelTunables=",
        "ProtectKernelModules=",
        "ProtectControlGroups=",
        "LockPersonality=",
        "RestrictRealtime=",
        "SystemCallArchitectures=",
        "RestrictAddressFamilies=~AF_PACKET",
        "RestrictAddressFamilies=~AF_NETLINK",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "CapabilityBoundingSet=~CAP_SYS_PTRACE",
        "CapabilityBoundingSet=~CAP_SYS_(NICE|RESOURCE)",
        "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)",
        "CapabilityBoundingSet=~CAP_SYS_MODULE",
        "CapabilityBoundingSet=~CAP_NET_ADMIN",
    ] {
        assert!(
            set(name),
            "systemd-analyze security: {name} is not in force"
        );
    }

    let unit = fs::read_to_string(UNIT).unwrap();
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        values("ExecStart"),
        [
            "/usr/bin/probe top -q -i 15 --metrics-listen 127.0.0.1:9545 \
          --metrics-file /var/lib/prometheus/node-exporter/probe.prom"
        ]
    );
    assert_eq!(values("CapabilityBoundingSet"), ["CAP_BPF CAP_PERFMON"]);
    assert_eq!(values("AmbientCapabilities"), ["CAP_BPF CAP_PERFMON"]);
    assert_eq!(values("User"), Vec::<String>::new(), "it runs as root");
    assert_eq!(values("LimitMEMLOCK"), ["infinity"]);
    assert_eq!(values("MemoryMax"), ["256M"]);
    assert_eq!(values("ReadWritePaths"), [TEXTFILE_DIR]);
    assert_eq!(values("Restart"), ["on-failure"]);
}

#[test]
fn the_package_installs_works_and_removes_every_file() {
    if !root_with_dpkg_or_skip() {
        return;
    }
    let _serial = serial();
    let scratch = scratch_dir("package");
    let deb = build_package(&scratch);

    // What it holds.
    let deb_str = deb.to_str().unwrap();
    let field = |name: &str| {
        ok("dpkg-deb", &["--field", deb_str, name])
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "probe");
    assert_eq!(field("Version"), VERSION.replacen('-', "~", 1));
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Depends"), "", "a static binary depends on nothing");
    assert!(
        field("Description").contains("neither enables nor starts"),
        "the description says the service is not started"
    );
    let held = contents(&deb);
    let files: BTreeSet<&str> = held
        .iter()
        .filter(|p| !p.ends_with('/'))
        .map(String::as_str)
        .collect();
    assert_eq!(files, BTreeSet::from(FILES), "the package's files");
    let dirs: Vec<PathBuf> = held
        .iter()
        .filter_map(|p| Some(PathBuf::from(p.strip_suffix('/')?)))
        .collect();
    assert!(
        dirs.contains(&PathBuf::from(TEXTFILE_DIR)),
        "the package holds {TEXTFILE_DIR}: {dirs:?}"
    );

    // Refuse to touch what is not ours.
    if let Some((status, version)) = package_state() {
        panic!(
            "a probe package is already on this machine ({status}, version {version}): \
             this test installs and removes a package of that name, so it will not run. \
             If it is a leftover of this test: dpkg --purge probe"
        );
    }
    for file in FILES {
        assert!(
            fs::symlink_metadata(file).is_err(),
            "{file} already exists, and the package would overwrite it, then remove it: \
             this test will not run (dpkg -S {file} says whose it is)"
        );
    }

    let restore = Restore {
        dirs: dirs
            .iter()
            .filter_map(|d| {
                let m = fs::metadata(d).ok()?;
                Some((d.clone(), m.mode() & 0o7777, m.uid(), m.gid()))
            })
            .collect(),
        metrics: fs::read(METRICS_FILE).ok().map(|bytes| {
            let mode = fs::metadata(METRICS_FILE).unwrap().mode() & 0o7777;
            (bytes, mode)
        }),
    };

    // Install.
    dpkg_ok(&["-i", deb_str]);
    let (status, version) = package_state().expect("dpkg knows probe after dpkg -i");
    assert_eq!(status, "installed");
    assert_eq!(version, VERSION.replacen('-', "~", 1));
    let listed: BTreeSet<String> = dpkg_ok(&["-L", "probe"])
        .lines()
        .filter(|p| *p != "/.")
        .map(str::to_string)
        .collect();
    for path in &held {
        let path = path.strip_suffix('/').unwrap_or(path);
        assert!(listed.contains(path), "dpkg -L probe lacks {path}");
        assert!(Path::new(path).exists(), "{path} was not installed");
    }

    // The binary.
    let said = ok("/usr/bin/probe", &["--version"]);
    assert_eq!(said.trim(), format!("probe {VERSION}"));

    // Its license, in Debian's format, and what it links besides.
    check_copyright();

    // The man page: where man looks, and saying what the binary says.
    let page = Path::new("/usr/share/man/man1/probe.1.gz");
    if runs("man", &["--version"]) {
        let found = ok("man", &["-w", "probe"]);
        assert_eq!(found.trim(), page.to_str().unwrap(), "man -w probe");
    } else {
        eprintln!("package test: no man here: checked only that {page:?} exists");
        assert!(page.is_file());
    }
    if runs("groff", &["--version"]) {
        let shown = rendered_man_page(page);
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "OUTPUT FORMAT",
            "SIGNALS",
            "EXIT STATUS",
            "FILES",
            "COPYRIGHT",
        ] {
            assert!(
                shown.lines().any(|l| l == section),
                "the man page has no {section} section:\n{shown}"
            );
        }
        // Every exit status, each on a line of its own in its section.
        let codes: Vec<&str> = shown
            .lines()
            .skip_while(|l| *l != "EXIT STATUS")
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with(' '))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(codes, ["0", "1", "2", "3", "4"], "{shown}");
        for words in [
            "SIGINT, SIGTERM, SIGHUP",
            "syscalls.log",
            "probe: received=N lost=M",
        ] {
            assert!(
                shown.contains(words),
                "the man page lacks {words:?}:\n{shown}"
            );
        }
        let name = shown.lines().skip_while(|l| *l != "NAME").nth(1);
        assert!(
            name.is_some_and(|l| l.trim().starts_with("probe - ") && l.trim().len() > 10),
            "NAME is not `probe - what it does`:\n{shown}"
        );
        let helps = ok("/usr/bin/probe", &["--help"]) + &ok("/usr/bin/probe", &["top", "--help"]);
        let shown_options = long_options(&shown);
        let missing: Vec<_> = long_options(&helps)
            .difference(&shown_options)
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "the man page lacks {missing:?}:\n{shown}"
        );
    } else {
        eprintln!("package test: no groff here: the man page is not rendered");
    }

    // The unit: valid, sandboxed, installed but neither enabled nor started.
    check_unit();
    let wants = "/etc/systemd/system/multi-user.target.wants/probe-exporter.service";
    assert!(
        fs::symlink_metadata(wants).is_err(),
        "installing enabled the service ({wants})"
    );

    // Remove: every file goes, and dpkg keeps only the maintainer scripts
    // for a purge (the package has no conffiles).
    dpkg_ok(&["-r", "probe"]);
    for path in &listed {
        let was_there_before = restore.dirs.iter().any(|(d, ..)| d == Path::new(path));
        if Path::new(path).is_dir() {
            // A directory stays if it was there before the package, or
            // something else is in it.
            assert!(
                was_there_before || fs::read_dir(path).unwrap().next().is_some(),
                "dpkg -r left the directory {path}, empty, that the package brought"
            );
        } else {
            assert!(fs::symlink_metadata(path).is_err(), "dpkg -r left {path}");
        }
    }
    assert_eq!(
        package_state().map(|(status, _)| status).as_deref(),
        Some("config-files"),
        "after dpkg -r"
    );
    let list = dpkg(&["-L", "probe"]);
    let said = text(&list.stdout) + &text(&list.stderr);
    assert!(
        said.contains("does not contain any files"),
        "dpkg -L probe after dpkg -r: {said}"
    );

    // Purge: dpkg forgets it.
    dpkg_ok(&["--purge", "probe"]);
    let status = output("dpkg", &["-s", "probe"]);
    assert!(
        !status.status.success(),
        "dpkg -s probe after purge succeeds"
    );
    assert!(
        text(&status.stderr).contains("is not installed"),
        "dpkg -s probe: {}",
        text(&status.stderr)
    );
    assert_eq!(package_state(), None);

    restore.now();
    for (dir, ..) in &restore.dirs {
        assert!(
            dir.is_dir(),
            "{dir:?} was there before the test, and is not now"
        );
    }
    let _ = fs::remove_dir_all(&scratch);
}

/// /usr/share/doc/probe/copyright, installed: Debian's machine-readable
/// format, the GPL version 2 only for probe, and every crate the static
/// binary links (Cargo.lock's normal dependencies) with its license.
fn check_copyright() {
    let text = fs::read_to_string(COPYRIGHT).unwrap();
    let mode = fs::metadata(COPYRIGHT).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o644, "{COPYRIGHT}");
    assert!(
        text.starts_with(
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
             Upstream-Name: probe\n"
        ),
        "{text}"
    );
    for line in [
        "Files: *",
        "License: GPL-2",
        " (SPDX: GPL-2.0-only), as published by the Free Software Foundation.",
        " version 2 can be found in \"/usr/share/common-licenses/GPL-2\".",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    // Paragraphs: fields start a line, continuations start with a space.
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with(' ') || line.split_once(": ").is_some_and(|(f, _)| !f.contains(' ')),
            "not a field or a continuation: {line:?}"
        );
    }
    for (name, license) in [
        ("anyhow", "MIT OR Apache-2.0"),
        ("crossbeam-channel", "MIT OR Apache-2.0"),
        ("libc", "MIT OR Apache-2.0"),
        ("nix", "MIT"),
        ("object", "Apache-2.0 OR MIT"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("  {name} v"))
                    && l.ends_with(&format!(": {license}"))),
            "{name} ({license}) not listed:\n{text}"
        );
    }
    let license = fs::read_to_string(format!("{ROOT}/LICENSE")).unwrap();
    assert!(
        license.contains("GNU GENERAL PUBLIC LICENSE\n                       Version 2, June 1991")
    );
}

/// packaging/manpage.awk on a help text full of troff's special
/// characters: lines that begin with `.` or `'` (requests to troff, which
/// would swallow them), backslashes (escapes), hyphens; every word still
/// shows, and groff has nothing to warn about.
#[test]
fn the_man_page_generator_escapes_troff() {
    if !runs("awk", &["BEGIN { exit 0 }"]) {
        eprintln!("the_man_page_generator_escapes_troff: skipped: no awk");
        return;
    }
    let dir = scratch_dir("manpage");
    let help = "usage: probe [options]        a \\back\\slash, .dot and 'quote\n\
                \x20      probe top [options]    the second form\n\
                \x20                             goes on here\n\
                \n\
                options:\n\
                \x20 -x, --ex ARG     first line\n\
                \x20                  .starts with a dot\n\
                \x20                  'starts with a quote\n\
                \x20     --longer-than-the-column  says \\fB not bold\n\
                \x20     --cumulative counts since the start\n\
                \n\
                .a paragraph with a dot\n";
    fs::write(dir.join("main.txt"), help).unwrap();
    fs::write(
        dir.join("top.txt"),
        "usage: probe top [options]    top's own words\n\noptions:\n  -i SECS          interval\n",
    )
    .unwrap();
    // The third file: sections of items and paragraphs.
    fs::write(
        dir.join("sections.txt"),
        "# a comment, not shown\n\
         EXIT STATUS\n\
         \x20 0  all \\done\n\
         \x20   .more of it\n\
         \x20 4  lost some\n\
         \n\
         FILES\n\
         .a dotted paragraph\n\
         going on\n",
    )
    .unwrap();
    let page = ok(
        "awk",
        &[
            "-v",
            "version=1.2.3",
            "-v",
            "date=2000-01-01",
            "-f",
            &format!("{ROOT}/packaging/manpage.awk"),
            dir.join("main.txt").to_str().unwrap(),
            dir.join("top.txt").to_str().unwrap(),
            dir.join("sections.txt").to_str().unwrap(),
        ],
    );
    assert!(
        page.contains(
            "\n.SH EXIT STATUS\n.TP\n\\fB0\\fR\nall \\edone\n\\&.more of it\n\
             .TP\n\\fB4\\fR\nlost some\n.SH FILES\n.PP\n\\&.a dotted paragraph\ngoing on\n"
        ),
        "{page}"
    );
    assert!(!page.contains("comment"), "{page}");
    for line in page.lines() {
        let request = line.starts_with('\'') || (line.starts_with('.') && line.contains("dot"));
        assert!(
            !request,
            "a text line troff would read as a request: {line:?}"
        );
    }
    assert!(page.contains("probe \\- a \\eback\\eslash"), "{page}");
    assert!(
        page.contains("\n\\fB\\-\\-cumulative\\fR\ncounts since"),
        "{page}"
    );
    assert!(
        page.contains("\n\\fB\\-\\-longer\\-than\\-the\\-column\\fR\nsays \\efB"),
        "{page}"
    );
    if runs("groff", &["--version"]) {
        let gz = dir.join("probe.1.gz");
        let mut gzip = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(fs::File::create(&gz).unwrap())
            .spawn()
            .expect("run gzip");
        gzip.stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        assert!(gzip.wait().unwrap().success());
        let shown = rendered_man_page(&gz);
        let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
        for words in [
            "probe - a \\back\\slash, .dot and 'quote",
            "first line .starts with a dot 'starts with a quote",
            "--longer-than-the-column says \\fB not bold",
            "--cumulative counts since the start",
            "the second form goes on here",
            "top's own words",
            ".a paragraph with a dot",
            "EXIT STATUS 0 all \\done .more of it 4 lost some",
            "FILES .a dotted paragraph going on",
        ] {
            assert!(shown.contains(words), "{words:?} not shown:\n{shown}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}
