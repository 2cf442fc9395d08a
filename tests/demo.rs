//! The README's demo command runs: `lost_update_demo` (the binary `cargo
//! test` builds) shows both modes and loses no update with `If-Match`.
//!
//! Whether the mode without `If-Match` loses updates in a given run
//! depends on how the clients interleave, so that row is only checked
//! to be there, not to show a loss.

#[path = "support/examples.rs"]
mod examples;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far more than the demo needs (about a second in a debug build): a hung
/// demo fails the test instead of hanging `cargo test`.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn the_lost_update_demo_loses_nothing_with_if_match() {
    let mut child = Command::new(examples::example("lost_update_demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("the demo's status") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the demo did not finish in {DEADLINE:?}:\n{}\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    // The demo itself fails when an update was lost with If-Match.
    assert!(
        status.success(),
        "the demo failed ({status}):\n{stdout}\n{stderr}"
    );
    let row = |mode: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(mode))
            .unwrap_or_else(|| panic!("no row for {mode:?}:\n{stdout}"));
        let cells: Vec<String> = line[mode.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(cells.len(), 7, "the row for {mode:?}:\n{stdout}");
        cells
    };
    // attempted, acknowledged, final value, lost, 412 retries, gave up,
    // elapsed.
    let without = row("last write wins (no If-Match)");
    let with = row("If-Match + ifmatch::Retry");
    assert_eq!(without[0], "400", "{stdout}");
    assert_eq!(with[0], "400", "{stdout}");
    // With If-Match, every acknowledged increment is in the final value
    // (a write whose response was lost can make it larger, never smaller).
    let number = |cell: &str| -> u64 { cell.parse().unwrap_or_else(|_| panic!("{cell:?}")) };
    assert!(
        number(&with[2]) >= number(&with[1]),
        "acknowledged vs final value:\n{stdout}"
    );
    assert_eq!(with[3], "0", "lost:\n{stdout}");
}
