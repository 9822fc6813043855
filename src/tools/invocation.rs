//! What every tool run from the command line shares: the parsers of flag values more than one
//! tool takes (`--acks`, `--compression`, `key=value`) and waiting for SIGINT/SIGTERM. Separate
//! so that each tool's `Args` can use them without depending on another tool.

use super::client::{Result, ToolError};

/// The codec names, in the order of their attribute values (0 = none ... 4 = zstd).
pub const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// The attribute value of a codec name clap has already checked against `CODECS`.
pub fn codec(name: &str) -> i16 {
    CODECS.iter().position(|c| *c == name).unwrap_or(0) as i16
}

/// `--acks`: 0, 1, or -1/all.
pub fn parse_acks(s: &str) -> std::result::Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(format!("{s:?}: acks is 0, 1, -1 or all")),
    }
}

/// Splits a `key=value` flag value; `what` names the flag in the error.
pub fn key_value(s: &str, what: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| ToolError::Usage(format!("{what} {s:?} is not key=value")))
}

/// Returns at the first SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can only run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
