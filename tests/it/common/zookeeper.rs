//! A real ZooKeeper server (Debian's `zookeeper` package) on a free loopback port, with its own
//! configuration, data and log in a temporary directory, stopped by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::broker_process::free_port;

/// Where Debian's package puts the server and the logging jars it declares as dependencies
/// (`/usr/share/zookeeper/bin/zkEnv.sh` puts only the first two on the classpath, leaving the
/// server without a logging backend; its jar's manifest brings the rest).
const CLASSPATH: &[&str] = &[
    "/etc/zookeeper/conf",
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

/// Short ticks so that tests can use session timeouts of a few seconds (ZooKeeper allows
/// 2 to 20 ticks unless told otherwise; the bounds are set explicitly below).
pub const TICK_MS: u64 = 500;

pub struct ZooKeeperServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl ZooKeeperServer {
    /// Starts a standalone server and waits until it serves; `None` (after `missing_tool`) when
    /// Java or ZooKeeper is not installed.
    pub fn start() -> Option<ZooKeeperServer> {
        if !super::java_runs() || !CLASSPATH.iter().all(|p| Path::new(p).exists()) {
            super::missing_tool("ZooKeeper (Debian's zookeeper package and Java)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            dir.path().join("zoo.cfg"),
            format!(
                "tickTime={TICK_MS}\n\
                 initLimit=10\n\
                 syncLimit=5\n\
                 dataDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n\
                 minSessionTimeout={}\n\
                 maxSessionTimeout=60000\n\
                 maxClientCnxns=0\n\
                 4lw.commands.whitelist=srvr\n",
                data.display(),
                2 * TICK_MS,
            ),
        )
        .unwrap();
        let mut server = ZooKeeperServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new("java")
            .args(["-Xmx128m", "-XX:+UseSerialGC"])
            .arg("-Dzookeeper.root.logger=INFO,CONSOLE")
            .arg(format!("-Dzookeeper.log.dir={}", self.dir.path().display()))
            .args(["-cp", &CLASSPATH.join(":")])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.serving() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("ZooKeeper exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not serve on port {} within 60 s:\n{}",
                self.port,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `srvr` answers with the server's mode only once it serves requests (`ruok` answers as
    /// soon as the port is open, before the data is loaded).
    fn serving(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"srvr").is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.contains("Mode:")
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 30 s) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ZooKeeperServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback TCP relay to a server that can be cut off, as a network partition cuts a client
/// off while the server goes on: on `cut`, relayed connections are closed and new ones are held
/// without an answer until `heal`.
pub struct NetworkPartition {
    pub port: u16,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl NetworkPartition {
    pub async fn start(target_port: u16) -> NetworkPartition {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let state = cut.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    if *cut.borrow_and_update() {
                        // Dropped packets: the client hears nothing until it gives up.
                        let _ = cut.wait_for(|c| !*c).await;
                        return;
                    }
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        NetworkPartition { port, cut, task }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for NetworkPartition {
    fn drop(&mut self) {
        // With the relay gone and the last sender dropped, every connection task ends.
        self.task.abort();
    }
}
