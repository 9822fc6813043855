//! The `odradek` binary as an operator runs it: the bundled tools, logs and shutdown on signals,
//! the container image.

mod dockerfile;
mod file_limits;
mod shutdown_and_logs;
mod tools;
