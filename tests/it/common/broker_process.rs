//! A real `odradek` process on a free loopback port, stopped by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct BrokerProcess {
    child: Option<Child>,
    /// The port of the broker's first listener: the PLAINTEXT one it is given, or the first of
    /// a `listeners=` override's (which replaces it; its ports must be given, not 0). Start-up
    /// waits until it accepts connections.
    pub port: u16,
    pub dir: PathBuf,
    log: PathBuf,
    extra: Vec<String>,
    args: Vec<String>,
    /// Environment variables of the broker process (crash tests' failpoints); used at every
    /// (re)start, so a test clears them before restarting.
    pub env: Vec<(String, String)>,
    /// An open-file limit (soft and hard) the process runs under, set with `prlimit`.
    pub nofile: Option<u64>,
    /// Set for a real Apache Kafka broker run from this `KAFKA_HOME` (`super::kafka`).
    kafka: Option<PathBuf>,
}

/// A port on 127.0.0.1 that nothing listens on now, for a server a test starts a moment later.
/// Ports come from below the kernel's ephemeral range (where the OS picks the local ports of
/// outgoing connections: a client's, a broker's to ZooKeeper), so no connection made meanwhile
/// can take the port before the server binds it; and none is handed out twice in this process.
/// Asking the OS for port 0 instead handed out ports that such connections then took (a broker
/// failed to start with "Address already in use").
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_low.saturating_sub(LOW).max(1_000);
    // Test binaries run one after another, but a different start per process keeps two that
    // ever overlap apart.
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {LOW}..{}", LOW + span);
}

/// The first listener's port of the last `listeners=` override (later overrides win, as in the
/// broker), if there is one.
fn overridden_port(extra: &[&str]) -> Option<u16> {
    let listeners = extra
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix("listeners="))?;
    let first = listeners.split(',').next()?;
    let port = first
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim().parse::<u16>().ok())
        .filter(|p| *p != 0);
    Some(port.unwrap_or_else(|| {
        panic!("a process broker's listeners override needs given ports: {listeners}")
    }))
}

impl BrokerProcess {
    pub fn start(dir: &Path, extra: &[&str]) -> BrokerProcess {
        Self::start_with_args(dir, extra, &[])
    }

    /// Like `start`, with command-line flags (`--log-json`) besides the overrides.
    pub fn start_with_args(dir: &Path, extra: &[&str], args: &[&str]) -> BrokerProcess {
        Self::launch(dir, extra, args, &[])
    }

    /// Like `start`, with environment variables for the broker process.
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> BrokerProcess {
        Self::launch(dir, extra, &[], env)
    }

    /// Like `start`, with the open-file limit (soft = hard) set to `nofile` by `prlimit`
    /// (util-linux), which execs the broker: the child's PID is the broker's.
    pub fn start_with_nofile(dir: &Path, extra: &[&str], nofile: u64) -> BrokerProcess {
        let port = overridden_port(extra).unwrap_or_else(free_port);
        let mut b = Self::new(dir, port, extra, &[], &[]);
        b.nofile = Some(nofile);
        b.spawn();
        b
    }

    /// A real Apache Kafka broker from `home` (see `super::kafka`) with the `extra` overrides,
    /// on a free port.
    pub fn start_kafka(home: &Path, dir: &Path, extra: &[&str]) -> BrokerProcess {
        let mut b = Self::new(dir, free_port(), extra, &[], &[]);
        b.kafka = Some(home.to_path_buf());
        b.spawn();
        b
    }

    /// Like `start`, with `extra` naming every listener (`listeners=...`): `port` is the one
    /// of them, PLAINTEXT on 127.0.0.1, that start-up waits for and `bootstrap` names.
    pub fn start_on_port(dir: &Path, port: u16, extra: &[&str]) -> BrokerProcess {
        Self::launch_on(dir, port, extra, &[], &[])
    }

    fn launch(dir: &Path, extra: &[&str], args: &[&str], env: &[(&str, &str)]) -> BrokerProcess {
        let port = overridden_port(extra).unwrap_or_else(free_port);
        Self::launch_on(dir, port, extra, args, env)
    }

    fn launch_on(
        dir: &Path,
        port: u16,
        extra: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> BrokerProcess {
        let mut b = Self::new(dir, port, extra, args, env);
        b.spawn();
        b
    }

    fn new(
        dir: &Path,
        port: u16,
        extra: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> BrokerProcess {
        std::fs::create_dir_all(dir).unwrap();
        BrokerProcess {
            child: None,
            port,
            dir: dir.to_path_buf(),
            log: dir.join("broker.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            nofile: None,
            kafka: None,
        }
    }

    fn spawn(&mut self) {
        if let Some(home) = &self.kafka {
            let child = super::kafka::spawn(home, &self.dir, self.port, &self.extra, &self.log);
            self.child = Some(child);
            self.wait_listening(Duration::from_secs(90));
            super::kafka::assert_jvm(self.pid());
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match self.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg(env!("CARGO_BIN_EXE_odradek"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_odradek")),
        };
        cmd.arg("broker")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/server.properties"))
            .args([
                "--override",
                &format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port),
            ])
            .args([
                "--override",
                &format!("log.dirs={}", self.dir.join("logs").display()),
            ])
            .args(["--override", "metrics.port=0"]);
        for e in &self.extra {
            cmd.args(["--override", e]);
        }
        cmd.args(&self.args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_listening(Duration::from_secs(20));
    }

    /// Until the broker accepts connections; panics if it exits or `limit` passes first.
    fn wait_listening(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("broker exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "broker did not listen within {limit:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn pause(&self) -> Paused {
        let pid = self.pid();
        signal(pid, "-STOP");
        let paused = Paused { pid };
        // kill(1) returns once the signal is queued; the process stops when one of its threads
        // takes it, and on a loaded machine that thread may wait for a CPU while the others
        // keep working (fetching, acknowledging) for milliseconds. Only a stopped process is
        // paused.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "broker {pid} did not stop within 10 s of SIGSTOP"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        paused
    }

    /// Stops the broker with SIGTERM (or SIGKILL) and waits for it, bounded.
    pub fn stop(&mut self, kill: bool) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let signal = if kill { "-KILL" } else { "-TERM" };
        let _ = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self, kill: bool) {
        self.stop(kill);
        self.spawn();
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The broker's log so far, without the terminal colour codes its logger adds.
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Sends `sig` ("-STOP", "-CONT", ...) to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// Whether every thread of process `pid` is in the stopped state ('T' in /proc).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // "tid (comm) S ...": the command may contain anything, so the state is the first
            // field after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "T" || state == "t")
        })
    })
}

/// A broker frozen with SIGSTOP, resumed (SIGCONT) when this is dropped, so that a failing
/// assertion does not leave it stopped. While frozen it answers nothing and fetches nothing,
/// but stays registered until its ZooKeeper session times out, like a broker in a long pause.
pub struct Paused {
    pid: u32,
}

impl Paused {
    pub fn resume(self) {}
}

impl Drop for Paused {
    fn drop(&mut self) {
        // The broker may have been killed meanwhile; then there is nothing to resume.
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .status();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop(true);
    }
}
