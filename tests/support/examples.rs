//! Where the example programs are: the ones `cargo test` builds next to the
//! test binaries (target/<profile>/examples/). Shared by the tests that run
//! them as processes (`#[path]`-included).

use std::path::PathBuf;

/// The path of an example binary built by `cargo test --all-features`.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo test --all-features builds them)",
        path.display()
    );
    path
}
