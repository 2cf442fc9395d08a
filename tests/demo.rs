//! The README's demo command runs: `lost_update_demo` (the binary `cargo
//! test` builds) shows both modes and loses no update with `If-Match`.
//!
//! Whether the mode without `If-Match` loses updates in a given run
//! depends on how the clients interleave, so that row is only checked
//! to be there, not to show a loss.

#[path = "support/examples.rs"]
mod examples;

use std::process::Command;

#[test]
fn the_lost_update_demo_loses_nothing_with_if_match() {
    let out = Command::new(examples::example("lost_update_demo"))
        .output()
        .expect("the demo starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let row = |mode: &str| -> Vec<String> {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(mode))
            .unwrap_or_else(|| panic!("no row for {mode:?}:\n{stdout}"));
        line[mode.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    // attempted, acknowledged, final value, lost, 412 retries, gave up,
    // elapsed.
    let without = row("last write wins (no If-Match)");
    let with = row("If-Match + ifmatch::Retry");
    assert_eq!(without[0], "400", "{stdout}");
    assert_eq!(with[0], "400", "{stdout}");
    // With If-Match, every acknowledged increment is in the final value.
    assert_eq!(with[1], with[2], "acknowledged vs final value:\n{stdout}");
    assert_eq!(with[3], "0", "lost:\n{stdout}");
    assert!(
        stdout.contains(
            "With If-Match every stale write got 412 and was reapplied to fresh data: 0 lost."
        ),
        "{stdout}"
    );
}
