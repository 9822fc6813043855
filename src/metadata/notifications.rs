//! Change notifications, as Kafka's `ZkNodeChangeNotificationListener` follows them.
//!
//! Whoever changes shared state in the store (a config, an ACL, a delegation token) writes the
//! state's znode, then a sequential child under a change root (`/config/changes`,
//! `/kafka-acl-changes`, `/delegation_token/token_changes`, ...) naming what changed. Every
//! broker watches the root and re-reads what each notification newer than the last it applied
//! names; notifications are deleted once they are old. One listener serves every root, so the
//! rules (order, retries, expiry, a full re-read after a lost session) are the same for all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::MetadataStore;
use super::store::{StoreError, WatchEvent};

/// Kafka's `changeExpirationMs`: notifications older than this are deleted.
pub const NOTIFICATION_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// How long to wait before retrying when the store could not be read.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One change root and how far this broker has applied it.
#[derive(Debug)]
pub struct ChangeRoot {
    path: &'static str,
    /// Sequential children are named this plus ZooKeeper's 10-digit counter.
    prefix: &'static str,
    expiry: Duration,
    /// Sequence number of the last notification applied; -1 before the first.
    last_applied: i64,
    /// When this broker first saw each notification (by child name). Kafka ages notifications
    /// by their znode's creation time; the store's `Stat` does not carry it, so a notification
    /// expires `expiry` after this broker first saw it, which every broker notices within one
    /// pass of its creation.
    first_seen: HashMap<String, Instant>,
}

impl ChangeRoot {
    pub fn new(path: &'static str, prefix: &'static str, expiry: Duration) -> Self {
        ChangeRoot {
            path,
            prefix,
            expiry,
            last_applied: -1,
            first_seen: HashMap::new(),
        }
    }

    pub fn path(&self) -> &'static str {
        self.path
    }

    fn sequence_of(&self, child: &str) -> Option<i64> {
        child.strip_prefix(self.prefix).and_then(|n| n.parse().ok())
    }

    /// The first half of a pass (`processNotifications`): the notifications newer than the
    /// last applied, in order, with their data (None: deleted since listing, naming nothing).
    /// The caller applies each and marks it with [`ChangeRoot::applied`]; an error stops the
    /// pass there, and the next pass starts from the first one not marked.
    pub async fn unapplied(
        &mut self,
        store: &dyn MetadataStore,
        now: Instant,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut children: Vec<(i64, String)> = store
            .children(self.path)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| self.sequence_of(&c).map(|s| (s, c)))
            .collect();
        children.sort_unstable();
        // Forget notifications no longer there; note when each present one was first seen.
        self.first_seen
            .retain(|c, _| children.iter().any(|(_, have)| have == c));
        let mut unapplied = Vec::new();
        for (seq, child) in children {
            self.first_seen.entry(child.clone()).or_insert(now);
            if seq <= self.last_applied {
                continue;
            }
            let path = format!("{}/{child}", self.path);
            let data = store.get(&path).await?.and_then(|(data, _)| data);
            unapplied.push(Notification { seq, path, data });
        }
        Ok(unapplied)
    }

    /// Marks a notification applied: later passes skip it.
    pub fn applied(&mut self, notification: &Notification) {
        self.last_applied = self.last_applied.max(notification.seq);
    }

    /// The second half of a pass: deletes the notifications first seen more than `expiry` ago.
    pub async fn purge(
        &mut self,
        store: &dyn MetadataStore,
        now: Instant,
    ) -> Result<(), StoreError> {
        let expired: Vec<String> = self
            .first_seen
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(**seen) > self.expiry)
            .map(|(child, _)| child.clone())
            .collect();
        for child in expired {
            match store.delete(&format!("{}/{child}", self.path), None).await {
                Ok(()) | Err(StoreError::NoNode(_)) => {
                    self.first_seen.remove(&child);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One change notification: its sequence number, path and data.
#[derive(Debug)]
pub struct Notification {
    pub seq: i64,
    pub path: String,
    /// None when the notification was deleted between listing and reading.
    pub data: Option<Vec<u8>>,
}

/// Follows change roots for a listener's loop: [`Follower::next`] waits until a pass is due
/// and says whether it must read everything again; the caller runs the pass and reports its
/// outcome with [`Follower::done`]. A failed pass is retried every second.
pub struct Follower {
    roots: &'static [&'static str],
    /// What the roots hold, for the log.
    what: &'static str,
    events: broadcast::Receiver<WatchEvent>,
    pending: bool,
    full_reload: bool,
}

impl Follower {
    /// Subscribes to the store's events before anything is read, so that a change made in
    /// between is not missed. The first pass reads everything.
    pub fn new(
        store: &dyn MetadataStore,
        roots: &'static [&'static str],
        what: &'static str,
    ) -> Self {
        Follower {
            roots,
            what,
            events: store.subscribe(),
            pending: true,
            full_reload: true,
        }
    }

    /// Waits until a pass is due: `Some(true)` first and whenever events may have been missed
    /// (a lost session, a lagging subscriber), once the roots are watched again, for the caller
    /// to read everything; `Some(false)` when a root's children changed; `None` at shutdown.
    pub async fn next(
        &mut self,
        store: &dyn MetadataStore,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<bool> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            if self.pending {
                if !self.full_reload {
                    return Some(false);
                }
                match watch_all(store, self.roots).await {
                    Ok(()) => return Some(true),
                    Err(e) => tracing::warn!(error = %e, "{} not watched yet; retrying", self.what),
                }
            }
            let retry = tokio::time::sleep(RETRY_AFTER);
            tokio::select! {
                _ = shutdown.changed() => return None,
                _ = retry, if self.pending => {}
                event = self.events.recv() => match event {
                    Ok(WatchEvent::ChildrenChanged(path)) if self.roots.contains(&path.as_str()) => {
                        self.pending = true;
                    }
                    Ok(WatchEvent::SessionExpired) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.pending = true;
                        self.full_reload = true;
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The outcome of the pass `next` asked for. A failure makes it due again in a second
    /// (unless an event comes first).
    pub fn done(&mut self, outcome: Result<(), StoreError>) {
        match outcome {
            Ok(()) => {
                self.pending = false;
                self.full_reload = false;
            }
            Err(e) => tracing::warn!(error = %e, "{} not processed yet; retrying", self.what),
        }
    }
}

/// One pass of a listener, as [`Follower::next`] asked for it: when everything must be read
/// again (`full`), `reload_all` runs under the listener's progress lock, so that no pass over
/// the notifications interleaves with it; then `process` applies the notifications newer than
/// the last applied (those that came during the reload included).
pub async fn catch_up<P, R, N>(
    full: bool,
    progress: &tokio::sync::Mutex<P>,
    reload_all: impl FnOnce() -> R,
    process: impl FnOnce() -> N,
) -> Result<(), StoreError>
where
    R: Future<Output = Result<(), StoreError>>,
    N: Future<Output = Result<(), StoreError>>,
{
    if full {
        let _guard = progress.lock().await;
        reload_all().await?;
    }
    process().await
}

async fn watch_all(store: &dyn MetadataStore, roots: &[&str]) -> Result<(), StoreError> {
    for root in roots {
        store.watch_children(root).await?;
    }
    Ok(())
}
