//! Where the example programs are: the ones `cargo test` builds next to the
//! test binaries (target/<profile>/examples/). Shared by the tests that run
//! them as processes (`#[path]`-included).

use std::path::PathBuf;

/// The path of an example binary built by `cargo test --all-features`.
///
/// Only a `cargo test` without target selection or test-name filter builds
/// the examples: `--test NAME`, `--tests` and `cargo test NAME` do not, and
/// then find a missing binary here, or run one built from older sources.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build --all-features --examples); \
         a plain cargo test --all-features builds them, but not with --test, --tests or a \
         test-name filter",
        path.display()
    );
    path
}
