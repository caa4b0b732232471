//! README.md's curl examples, run as written: every ```` ```sh ```` block
//! that calls the demo server through `$Z` runs in `bash -euxo pipefail`
//! after the README's setup block, each on its own freshly started demo
//! server (the real binary), with nothing substituted but the port; every
//! `# => TEXT` line of a block (`...` standing for any text) must match a
//! line the block prints, in order (`-x` traces to stderr, shown when a
//! block fails).
//!
//! The etcd walkthrough is run by `etcd_frontends::readme_walkthrough_runs`
//! and the `ozmint admin` example by `admin_cli::readme_worked_example`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::spawned::{text, Server};

/// The README, as the test binary was built with it.
const README: &str = include_str!("../../README.md");
/// How the expected output lines of a block start.
const EXPECT: &str = "# => ";
/// What stands for any text in an expected line.
const ANY: &str = "...";
/// Upper bound for one block (`timeout`, then SIGKILL 5 s later).
const BLOCK_SECS: u64 = 30;
/// How many example blocks the README has (a guard against an extraction
/// that silently finds fewer; update it when adding or removing a block).
const EXAMPLES: usize = 5;

/// The bodies of README's ```` ```sh ```` blocks, in order.
fn sh_blocks(readme: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = readme;
    while let Some((_, after)) = rest.split_once("```sh\n") {
        let (body, after) = after.split_once("```\n").expect("an unterminated sh block");
        blocks.push(body);
        rest = after;
    }
    blocks
}

/// The setup block (it defines `Z`) and the example blocks (they use it).
fn setup_and_examples(readme: &str) -> (&str, Vec<&str>) {
    let blocks = sh_blocks(readme);
    let setups: Vec<&str> = blocks
        .iter()
        .copied()
        .filter(|b| {
            b.lines()
                .any(|l| l.starts_with("HOST=") && l.contains(" Z="))
        })
        .collect();
    assert_eq!(
        setups.len(),
        1,
        "one setup block defines HOST and Z: {setups:?}"
    );
    // The etcd walkthrough (its own servers, its own Z) has its own test.
    let walkthrough = |b: &str| b.contains("scripts/etcd-cluster.sh");
    let examples: Vec<&str> = blocks
        .iter()
        .copied()
        .filter(|b| b.contains("$Z/") && !walkthrough(b))
        .collect();
    for b in &blocks {
        assert!(
            !b.contains("curl") || examples.contains(b) || setups.contains(b) || walkthrough(b),
            "a curl example no test runs (use $Z, see the seed examples):\n{b}"
        );
    }
    (setups[0], examples)
}

/// The `# => ` lines of a block, without the marker.
fn expected(block: &str) -> Vec<&str> {
    block
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(EXPECT))
        .map(str::trim_end)
        .collect()
}

/// Whether `line` matches `pattern`, in which [`ANY`] stands for any text
/// (possibly empty) and everything else stands for itself.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split(ANY).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return line == pattern;
    }
    if line.len() < first.len() + last.len() || !line.starts_with(first) || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Checks that every expected line matches a printed line, in order (a
/// printed line matches at most one expected line); the first expected
/// line without a match, if any.
fn first_unmatched<'a>(expected: &[&'a str], printed: &str) -> Option<&'a str> {
    let mut lines = printed.lines().map(str::trim_end);
    expected
        .iter()
        .copied()
        .find(|want| !lines.any(|got| matches(want, got)))
}

/// The script a block runs as: the setup, then the block, both with the
/// demo server's port for 8443 (and nothing else changed).
fn script(setup: &str, block: &str, port: u16) -> String {
    let port = port.to_string();
    format!(
        "{}{}",
        setup.replace("8443", &port),
        block.replace("8443", &port)
    )
}

/// Runs one example block against a fresh demo server started in `dir`;
/// an error message naming what failed.
fn run_block(dir: &Path, setup: &str, block: &str) -> Result<(), String> {
    let server = Server::demo(dir, &[]);
    let script = script(setup, block, server.addr().port());
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-k", "5", &BLOCK_SECS.to_string()])
        .args(["bash", "-euxo", "pipefail", "-c", &script])
        .current_dir(dir)
        // curl would send the requests for 127.0.0.1 to a proxy.
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .stdin(Stdio::null())
        .output()
        .expect("run timeout bash");
    let took = started.elapsed();
    drop(server); // killed by its pid
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if !out.status.success() {
        return Err(format!(
            "the block failed ({}, after {took:?}):\n{block}\n--- stdout:\n{stdout}\n--- stderr (bash -x):\n{stderr}",
            out.status
        ));
    }
    match first_unmatched(&expected(block), &stdout) {
        Some(want) => Err(format!(
            "no line printed matches `{EXPECT}{want}` (in order):\n{block}\n--- stdout:\n{stdout}"
        )),
        None => Ok(()),
    }
}

#[test]
fn the_matcher_means_what_the_readme_says() {
    assert!(matches("201", "201"));
    assert!(!matches("201", "2010"));
    assert!(matches(r#"{"token":"..."} 200"#, r#"{"token":"MDAx"} 200"#));
    assert!(matches(r#"{"token":"..."} 200"#, r#"{"token":""} 200"#));
    assert!(!matches(
        r#"{"token":"..."} 200"#,
        r#"{"token":"MDAx"} 201"#
    ));
    assert!(!matches(r#"{"token":"..."} 200"#, r#"{"error":"x"} 200"#));
    assert!(matches("a...b...c", "a-b-b-c"));
    assert!(!matches("a...b...c", "a-c"));
    assert!(!matches("ab...ba", "aba"));
    assert!(matches("...", "anything"));
    // In order, one printed line per expected line.
    assert_eq!(first_unmatched(&["1", "2"], "1\nx\n2\n"), None);
    assert_eq!(first_unmatched(&["2", "1"], "1\n2\n"), Some("1"));
    assert_eq!(first_unmatched(&["1", "1"], "1\n"), Some("1"));
    assert_eq!(first_unmatched(&["HTTP/2 201"], "HTTP/2 201 \r\n"), None);
}

#[test]
fn readme_curl_examples_run_as_written() {
    let (setup, examples) = setup_and_examples(README);
    assert_eq!(
        examples.len(),
        EXAMPLES,
        "README.md's example blocks (update EXAMPLES when adding one)"
    );
    for block in &examples {
        assert!(
            !expected(block).is_empty(),
            "an example block shows no output to check:\n{block}"
        );
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    // Two blocks at a time: the machine has two cores.
    let mut failures = Vec::new();
    for (n, pair) in examples.chunks(2).enumerate() {
        let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .enumerate()
                .map(|(i, block)| {
                    let dir = tmp.path().join(format!("block-{}", 2 * n + i));
                    std::fs::create_dir(&dir).expect("block dir");
                    scope.spawn(move || run_block(&dir, setup, block))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the block's thread panicked".into()))
                })
                .collect()
        });
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    assert!(
        failures.is_empty(),
        "{} of {} README example blocks failed:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the README examples took {:?}",
        started.elapsed()
    );
}
