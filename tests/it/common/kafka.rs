//! A real Apache Kafka broker as one of a cluster's brokers (issue 21, acceptance 5), when
//! `KAFKA_HOME` holds a runnable one: `libs/kafka_2.1x-<version>.jar`, `bin/kafka-server-start.sh`
//! and a `java` on the PATH. `BrokerProcess::start_kafka` runs it with its own
//! `server.properties` (the cluster's overrides, its listener on 127.0.0.1 and its log
//! directory in the test's temporary directory); it is stopped by its PID like any broker.
//!
//! No Kafka broker is runnable on the machines this was written on, so this path has not run
//! here: it is kept to what Kafka's scripts document.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The Kafka installation `KAFKA_HOME` names, or why there is none to use.
pub fn home() -> Result<PathBuf, String> {
    let home = std::env::var_os("KAFKA_HOME")
        .map(PathBuf::from)
        .ok_or("KAFKA_HOME is not set")?;
    let script = home.join("bin/kafka-server-start.sh");
    if !script.is_file() {
        return Err(format!("{} is missing", script.display()));
    }
    let core = std::fs::read_dir(home.join("libs"))
        .map_err(|e| format!("{}/libs: {e}", home.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.starts_with("kafka_2.1")
                && n.ends_with(".jar")
                && !["-sources", "-javadoc", "-test", "-scaladoc"]
                    .iter()
                    .any(|s| n.contains(s))
        });
    if core.is_none() {
        return Err(format!(
            "{}/libs holds no kafka_2.1x-*.jar (Kafka's core)",
            home.display()
        ));
    }
    if !super::java_runs() {
        return Err("no java on the PATH".into());
    }
    Ok(home)
}

/// For `test`: the Kafka to run in place of its stand-in brokers, saying which it runs against.
pub fn for_test(test: &str) -> Option<PathBuf> {
    match home() {
        Ok(home) => {
            eprintln!(
                "{test}: running against Apache Kafka from {}",
                home.display()
            );
            Some(home)
        }
        Err(why) => {
            eprintln!("{test}: not running against Apache Kafka ({why}); odradek brokers stand in");
            None
        }
    }
}

/// Starts a Kafka broker in `dir` listening on 127.0.0.1:`port`, with the `key=value`
/// `overrides` (the cluster's: `broker.id`, `zookeeper.connect`,
/// `inter.broker.protocol.version`, ...; keys Kafka does not know are logged and ignored),
/// its output appended to `log`. `kafka-server-start.sh` execs `kafka-run-class.sh`, which execs
/// java: the child is the JVM itself, so its PID is the broker's (checked by `assert_jvm`).
pub fn spawn(home: &Path, dir: &Path, port: u16, overrides: &[String], log: &Path) -> Child {
    let data = dir.join("logs");
    std::fs::create_dir_all(&data).unwrap();
    let mut props = format!(
        "listeners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\n",
        data.display()
    );
    for o in overrides {
        props.push_str(o);
        props.push('\n');
    }
    let file = dir.join("kafka-server.properties");
    std::fs::write(&file, props).unwrap();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(home.join("bin/kafka-server-start.sh"))
        .arg(&file)
        // kafka-run-class.sh writes its own logs (server.log, controller.log) to LOG_DIR.
        .env("LOG_DIR", dir.join("kafka-app-logs"))
        .env("KAFKA_HEAP_OPTS", "-Xmx512M -Xms128M")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap()
}

/// Panics unless process `pid` is a JVM, so that signals meant for the broker never go to a
/// wrapper script that forked instead of exec'ing.
pub fn assert_jvm(pid: u32) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    assert!(
        exe.file_name().is_some_and(|n| n == "java"),
        "the Kafka broker's process {pid} is {}, not java",
        exe.display()
    );
}
