//! The integration tests, one test binary: every module used to be its own binary, each
//! recompiling `common` and linking the crate again, which cost minutes and gigabytes per build.
//!
//! All modules' tests share this process, so a test must not rely on process-wide state another
//! test can change (environment, working directory, metrics counted by label: use names unique
//! to the test). Tests that need a process of their own to kill run one (`common::child_test`).

mod broker;
mod cluster;
mod common;
mod compat;
mod layering;
mod log;
mod ops;
mod security;

// The broker binary's allocator (`src/main.rs`), so that brokers started in this process
// survive a garbage element count as the real one does
// (`broker::wire::malformed_input_closes_only_that_connection` sends one).
#[global_allocator]
static ALLOCATOR: odradek::alloc::Allocator = odradek::alloc::Allocator;
