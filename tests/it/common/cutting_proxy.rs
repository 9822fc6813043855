//! A loopback TCP proxy that cuts its connections at random points, so that clients must retry
//! requests the broker may already have handled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CuttingProxy {
    pub port: u16,
    pub cuts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// xorshift: deterministic from the seed, good enough to pick cut points.
fn next(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    x
}

impl CuttingProxy {
    /// Listens on `listener` and forwards to `target_port`; each connection is cut after a
    /// random number of bytes in either direction, between `min` and `max`.
    pub fn start(
        listener: TcpListener,
        target_port: u16,
        seed: u64,
        min: u64,
        max: u64,
    ) -> CuttingProxy {
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicU64::new(0));
        let rng = Arc::new(AtomicU64::new(seed | 1));
        let c = cuts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    continue;
                };
                let budget = min + next(&rng) % (max - min).max(1);
                let c = c.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let moved = Arc::new(AtomicU64::new(0));
                    let m1 = moved.clone();
                    let m2 = moved.clone();
                    let up = async move {
                        let mut buf = vec![0u8; 8192];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let before = m1.fetch_add(n as u64, Ordering::Relaxed);
                            let allowed = budget.saturating_sub(before).min(n as u64) as usize;
                            if sw.write_all(&buf[..allowed]).await.is_err() || allowed < n {
                                return;
                            }
                        }
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 8192];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let before = m2.fetch_add(n as u64, Ordering::Relaxed);
                            let allowed = budget.saturating_sub(before).min(n as u64) as usize;
                            if cw.write_all(&buf[..allowed]).await.is_err() || allowed < n {
                                return;
                            }
                        }
                    };
                    // Whichever direction ends (or hits the budget) ends the connection.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                    if moved.load(Ordering::Relaxed) >= budget {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        CuttingProxy { port, cuts, task }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
