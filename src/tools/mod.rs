//! Bundled client tools behind `odradek <tool>`.

pub mod client;
pub mod consume;
pub mod dump_log;
pub mod groups;
pub mod import_zk_tree;
pub mod invocation;
pub mod membership;
pub mod metadata_dump;
pub mod perf;
pub mod produce;
pub mod topics;
