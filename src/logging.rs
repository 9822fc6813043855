//! The process's own log output: a WARN or ERROR that repeats (the same target and message,
//! say the ZooKeeper client's "session timeout" at each 100 ms reconnect attempt while
//! ZooKeeper is down) is written once, then summarised by a count every few seconds instead of
//! a line per occurrence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata};
use tracing_subscriber::layer::{Context, Filter};

/// How often the count of a suppressed warning is written.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(5);

/// At most this many distinct warnings are tracked; past it, new ones are written as they
/// come (a flood of distinct messages is not what this is for).
const MAX_TRACKED: usize = 1024;

/// The target of the summary lines, which are never themselves summarised.
const SUMMARY_TARGET: &str = "odradek::repeated";

#[derive(Debug)]
struct Seen {
    /// Occurrences not written since the last summary.
    suppressed: u64,
    /// The summary pass that last found it suppressed, or when it was written first.
    last_active: Instant,
}

/// The per-layer filter of the log writer: lets the first of a repeating warning through and
/// counts the rest, which `flush` summarises.
#[derive(Debug, Clone, Default)]
pub struct RepeatSummary {
    seen: Arc<Mutex<HashMap<(String, String), Seen>>>,
}

/// What makes two events the same warning: the target (for events from the `log` crate, its
/// own target), the message and every other field (a warning about another partition is
/// another warning).
#[derive(Default)]
struct Key {
    target: Option<String>,
    message: String,
    fields: String,
}

impl Key {
    fn add(&mut self, name: &str, value: String) {
        match name {
            "log.target" => self.target = Some(value),
            "message" => self.message = value,
            // Where in the source the `log` crate's record came from: not what it says.
            "log.module_path" | "log.file" | "log.line" => {}
            _ => {
                self.fields.push(' ');
                self.fields.push_str(name);
                self.fields.push('=');
                self.fields.push_str(&value);
            }
        }
    }
}

impl Visit for Key {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field.name(), format!("{value:?}"));
    }
}

impl RepeatSummary {
    fn seen(&self) -> MutexGuard<'_, HashMap<(String, String), Seen>> {
        // A panic while holding the lock leaves at worst a count off by one.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `event` is written now. Only WARN and ERROR events are judged.
    pub fn admit(&self, event: &Event<'_>, now: Instant) -> bool {
        let meta = event.metadata();
        if *meta.level() > Level::WARN || meta.target() == SUMMARY_TARGET {
            return true;
        }
        let mut key = Key::default();
        event.record(&mut key);
        let target = key.target.unwrap_or_else(|| meta.target().to_string());
        let message = key.message + &key.fields;
        let mut seen = self.seen();
        match seen.get_mut(&(target.clone(), message.clone())) {
            Some(s) => {
                s.suppressed += 1;
                s.last_active = now;
                false
            }
            None => {
                if seen.len() < MAX_TRACKED {
                    seen.insert(
                        (target, message),
                        Seen {
                            suppressed: 0,
                            last_active: now,
                        },
                    );
                }
                true
            }
        }
    }

    /// Writes one WARN per repeated warning with how often it was suppressed since the last
    /// call, and forgets warnings quiet for a whole interval, so that their next occurrence is
    /// written again. Called every `SUMMARY_INTERVAL`.
    pub fn flush(&self, now: Instant) -> Vec<(String, String, u64)> {
        let mut summaries = Vec::new();
        self.seen().retain(|(target, message), s| {
            if s.suppressed > 0 {
                summaries.push((target.clone(), message.clone(), s.suppressed));
                s.suppressed = 0;
                s.last_active = now;
                true
            } else {
                now.duration_since(s.last_active) < SUMMARY_INTERVAL
            }
        });
        for (target, message, count) in &summaries {
            tracing::warn!(
                target: SUMMARY_TARGET,
                source = %target,
                count,
                "repeated {count} more times in the last {}s: {message}",
                SUMMARY_INTERVAL.as_secs()
            );
        }
        summaries
    }

    /// Calls `flush` every `SUMMARY_INTERVAL` on a thread of its own (logging starts before
    /// the async runtime and outlives it).
    pub fn spawn_flusher(&self) {
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("log-summary".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(SUMMARY_INTERVAL);
                    me.flush(Instant::now());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "repeated warnings will not be summarised");
        }
    }
}

impl<S> Filter<S> for RepeatSummary {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        self.admit(event, Instant::now())
    }
}
