//! The unit tests of the web examples' shared route logic
//! (`examples/shared/items.rs`: ids, locations, merge patches, store
//! failures). Cargo builds examples for `cargo test` without running their
//! tests, and the several-instances tests need the examples built as
//! programs, so the module is compiled here a second time to run them.

#![allow(dead_code)]

#[path = "../examples/shared/items.rs"]
mod items;
#[path = "../examples/shared/postgres.rs"]
mod postgres;
