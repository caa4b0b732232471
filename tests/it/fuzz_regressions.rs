//! Replays every committed fuzz input through the same entry points the
//! fuzzer uses (`testkit::fuzzing`), so a plain `cargo test` exercises each
//! target without cargo-fuzz or a nightly toolchain.
//!
//! Inputs: `fuzz/corpus/<target>/*` (seeds) and `fuzz/regressions/<target>/*`
//! (inputs that once crashed, each named after the bug it caught). Every
//! failing input is reported, not only the first. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

/// The input files of a target, in name order (hidden files skipped).
fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".into())
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no inputs for {target} in fuzz/corpus or fuzz/regressions"
    );
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("readable input");
        if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
            failures.push(format!("{}: {}", path.display(), panic_message(&*e)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn token() {
    replay("token", testkit::fuzzing::token);
}

#[test]
fn http_request() {
    replay("http_request", testkit::fuzzing::http_request);
}

#[test]
fn decode() {
    replay("decode", testkit::fuzzing::decode);
}

#[test]
fn store_ops() {
    replay("store_ops", testkit::fuzzing::store_ops);
}
