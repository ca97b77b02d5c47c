//! The core must stay deterministic and sans-I/O (design.md, rules 1-2). Clippy enforces
//! `engine/clippy.toml` on every CI run; this test guards the same rules from the other
//! side, so neither can silently rot: it reads engine/'s sources and manifest, and checks
//! that the clippy configuration still bans what it must.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Source patterns that would make the core read the world or depend on scheduling.
const FORBIDDEN_SOURCE: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "Utc::now",
    "Local::now",
    "thread_rng",
    "rand::random",
    "Uuid::new_v4",
    "std::env",
    "std::thread",
    "std::fs",
    "std::net",
    "std::process",
    "tokio",
    "reqwest",
    "memmap2",
    "HashMap",
    "HashSet",
    "static mut",
];

/// Crates the core may depend on: pure computation only.
const ALLOWED_DEPENDENCIES: &[&str] = &["rkyv", "thiserror", "blake3"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("engine/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: pattern` for every forbidden pattern in `text`, ignoring `//` comments.
fn violations(name: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for pattern in FORBIDDEN_SOURCE {
            if code.contains(pattern) {
                found.push(format!("{name}:{}: {pattern}", i + 1));
            }
        }
    }
    found
}

#[test]
fn scanner_catches_what_it_must() {
    let bad = "fn f() { let t = std::time::Instant::now(); }\nuse std::collections::HashMap;";
    assert_eq!(violations("x.rs", bad).len(), 2);
    assert!(violations("x.rs", "// Instant::now is banned here").is_empty());
}

#[test]
fn engine_sources_do_no_io_and_read_no_clock() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("engine/src"), &mut files);
    assert!(files.len() >= 5, "engine/src looks empty: {files:?}");
    let mut all = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source");
        all.extend(violations(&f.display().to_string(), &text));
    }
    assert!(
        all.is_empty(),
        "engine/ must stay sans-I/O:\n{}",
        all.join("\n")
    );
}

#[test]
fn engine_depends_only_on_pure_crates() {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("engine/Cargo.toml")).unwrap();
    let mut section = "";
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[dependencies]"
            && let Some((name, _)) = line.split_once('=')
        {
            deps.push(name.trim().trim_end_matches(".workspace").to_string());
        }
    }
    for d in &deps {
        assert!(
            ALLOWED_DEPENDENCIES.contains(&d.as_str()),
            "engine/ must not depend on `{d}`: only {ALLOWED_DEPENDENCIES:?}"
        );
    }
}

#[test]
fn clippy_config_still_bans_clocks_env_threads_and_io() {
    let clippy = std::fs::read_to_string(Path::new(ROOT).join("engine/clippy.toml"))
        .expect("engine/clippy.toml must exist");
    for banned in [
        "std::time::Instant::now",
        "std::time::SystemTime::now",
        "std::env::var",
        "std::thread::spawn",
        "std::fs::File::open",
        "std::collections::HashMap",
    ] {
        assert!(
            clippy.contains(&format!("\"{banned}\"")),
            "engine/clippy.toml no longer bans {banned}"
        );
    }
}
