use std::path::{Path, PathBuf};

use bytes::Bytes;
use odradek::config::LogConfig;
use odradek::log::records::{BatchBuilder, NewRecord, Record};
use odradek::log::{LoadParams, PartitionLog};

/// The data directory and ZooKeeper dump a real Apache Kafka 2.4.1 broker wrote
/// (`tests/fixtures/kafka-2.4.1-single/MANIFEST.md` says what is in it).
pub fn kafka_single() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kafka-2.4.1-single")
}

/// Puts a copy of the Kafka 2.4.1 fixture's data in `dir/logs` (where `BrokerProcess` keeps its
/// data) with the fixture's ZooKeeper tree imported, for a broker started on `dir`.
pub fn kafka_single_broker_dir(dir: &Path) {
    let logs = dir.join("logs");
    copy_tree(&kafka_single().join("logdir"), &logs);
    import_zk_tree(&kafka_single().join("zk-tree.json"), &logs);
}

/// `odradek import-zk-tree`: the znodes of a tree file (as `dump-zk-tree` writes it) put in the
/// embedded store of the data directory `logs`, as Kafka's tools write ZooKeeper before a broker
/// starts.
pub fn import_zk_tree(tree: &Path, logs: &Path) {
    let (ok, _, err) = odradek(
        &[
            "import-zk-tree",
            tree.to_str().unwrap(),
            logs.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
}

/// What `kafka-configs.sh --zookeeper` does to an entity's configs: writes its node
/// `/config/<entity_path>` (`None` deletes it), then a version 2 change notification for it.
pub async fn write_entity_config(
    store: &dyn odradek::metadata::MetadataStore,
    entity_path: &str,
    data: Option<&[u8]>,
) {
    use odradek::metadata::CreateMode;
    use odradek::metadata::store::create_recursive;
    let path = format!("/config/{entity_path}");
    match data {
        Some(d) if store.get(&path).await.unwrap().is_some() => {
            store.set(&path, Some(d.to_vec()), None).await.unwrap();
        }
        Some(d) => {
            create_recursive(store, &path, Some(d.to_vec()), CreateMode::Persistent)
                .await
                .unwrap();
        }
        None => store.delete(&path, None).await.unwrap(),
    }
    let notification = serde_json::json!({ "version": 2, "entity_path": entity_path });
    create_recursive(
        store,
        "/config/changes/config_change_",
        Some(notification.to_string().into_bytes()),
        CreateMode::PersistentSequential,
    )
    .await
    .unwrap();
}

/// [`import_zk_tree`] of `znodes` (path -> data).
pub fn import_znodes(znodes: &serde_json::Value, logs: &Path) {
    let tree = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tree.path(), znodes.to_string()).unwrap();
    import_zk_tree(tree.path(), logs);
}

/// Copies a directory tree (fixtures are read-only) into `to`, making the copies writable.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// A batch as a client would send it: `n` records with keys, values and a header; the values
/// are the records' numbers, zero-padded to `value_len` bytes.
pub fn client_batch(first: usize, n: usize, value_len: usize, ts: i64, codec: i16) -> Bytes {
    client_batch_of(
        first,
        (first..first + n).map(|i| format!("{i:0width$}", width = value_len).into_bytes()),
        ts,
        codec,
    )
}

/// A batch as a client would send it, one record per value: record `i` (counting from `first`)
/// is keyed `key-{i}` and has a header `idx` = `i`; all are at `ts`, compressed with `codec`.
pub fn client_batch_of(
    first: usize,
    values: impl IntoIterator<Item = Vec<u8>>,
    ts: i64,
    codec: i16,
) -> Bytes {
    built(BatchBuilder {
        codec,
        records: values
            .into_iter()
            .zip(first..)
            .map(|(value, i)| NewRecord {
                timestamp: ts,
                key: Some(format!("key-{i}").into_bytes()),
                value: Some(value),
                headers: vec![(b"idx".to_vec(), Some(i.to_string().into_bytes()))],
            })
            .collect(),
        ..BatchBuilder::default()
    })
}

/// Who writes a batch, as its header says: a plain producer, or an idempotent or transactional
/// one with its producer id, epoch and the batch's first sequence number.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
    pub transactional: bool,
}

impl Producer {
    /// A producer that is neither idempotent nor transactional.
    pub const PLAIN: Producer = Producer {
        id: -1,
        epoch: -1,
        sequence: -1,
        transactional: false,
    };

    pub fn idempotent(id: i64, epoch: i16, sequence: i32) -> Producer {
        Producer {
            id,
            epoch,
            sequence,
            transactional: false,
        }
    }

    pub fn transactional(id: i64, epoch: i16, sequence: i32) -> Producer {
        Producer {
            transactional: true,
            ..Producer::idempotent(id, epoch, sequence)
        }
    }
}

/// A batch of keyless records without headers, one per value, all at `ts`, as `producer` sends
/// it uncompressed.
pub fn values_batch(
    producer: Producer,
    ts: i64,
    values: impl IntoIterator<Item = impl Into<Vec<u8>>>,
) -> Bytes {
    built(BatchBuilder {
        producer_id: producer.id,
        producer_epoch: producer.epoch,
        base_sequence: producer.sequence,
        transactional: producer.transactional,
        records: values
            .into_iter()
            .map(|value| NewRecord {
                timestamp: ts,
                key: None,
                value: Some(value.into()),
                headers: Vec::new(),
            })
            .collect(),
        ..BatchBuilder::default()
    })
}

/// The batch's bytes, as a produce request or an append carries them.
fn built(batch: BatchBuilder) -> Bytes {
    Bytes::from(batch.build().expect("a test batch builds"))
}

/// The `log.dirs` override of a broker keeping its logs in `dirs`.
pub fn log_dirs(dirs: &[PathBuf]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    format!("log.dirs={}", dirs.join(","))
}

pub fn open_log(dir: &Path, config: LogConfig, clean: bool) -> PartitionLog {
    PartitionLog::open(
        dir,
        config,
        LoadParams {
            clean_shutdown: clean,
            ..LoadParams::default()
        },
    )
    .unwrap()
}

/// Reads the whole log from its start through `read`, decoding every record.
pub fn read_all(log: &PartitionLog) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    let mut guard = 0;
    while next < log.log_end_offset() {
        guard += 1;
        assert!(guard < 1_000_000, "read loop does not advance");
        let r = log
            .read(next, 64 * 1024, log.log_end_offset(), true)
            .unwrap();
        assert!(!r.records.is_empty(), "no data at {next} below the log end");
        let mut pos = 0;
        while pos < r.records.len() {
            let size = odradek::log::batch::entry_size(&r.records[pos..]).unwrap() as usize;
            let (h, recs) =
                odradek::log::records::decode_batch(&r.records[pos..pos + size]).unwrap();
            out.extend(
                recs.into_iter()
                    .filter(|rec| rec.offset >= next && !h.is_control()),
            );
            next = next.max(h.next_offset());
            pos += size;
        }
    }
    out
}

/// A tool the test needs but that is not here: under CI (where the test command installs
/// everything) that is a failure; on a developer's machine the test says why it skips.
pub fn missing_tool(what: &str) {
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{what} is missing under CI; the test command (scripts/test.sh) installs it");
    }
    eprintln!("SKIPPED: {what} is not installed (run scripts/test.sh to install it)");
}

/// This test binary, set to run only the `#[ignore]`d test `name` of module `module` (pass
/// `module_path!()`): a process of its own for a crash test to kill, since every other test
/// shares this one.
pub fn child_test(module: &str, name: &str) -> std::process::Command {
    // libtest names a test by its path inside the crate, without the crate's own name.
    let test = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    };
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.args([
        "--ignored",
        "--exact",
        &test,
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}

/// Waits (polling) up to `limit` for `child` to exit: its exit status, or `None` once it has
/// been killed (SIGKILL, by its PID) for not exiting in time.
pub fn wait_or_kill(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs the Java program `class` (compiled onto `classpath`) with `args`: its stdout. Fails the
/// test, with `logs` (the brokers'), when the program fails.
pub fn run_java(classpath: &str, class: &str, args: &[&str], logs: impl Fn() -> String) -> String {
    let (ok, stdout, stderr) = run_command(
        std::process::Command::new("java")
            .args(["-cp", classpath, class])
            .args(args),
    );
    assert!(
        ok,
        "{class} {args:?} failed:\n{stdout}\n{stderr}\nlogs:\n{}",
        logs()
    );
    stdout
}

/// The kafka-clients 3.9 jars (`scripts/java-deps.sh`), as a classpath.
pub fn kafka_clients_classpath() -> Option<String> {
    kafka_clients_classpath_for("3.9")
}

/// The jars of one kafka-clients version (`3.9` or `4.3`) as a classpath.
pub fn kafka_clients_classpath_for(version: &str) -> Option<String> {
    let root = std::env::var_os("ODRADEK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/odradek")))?;
    let dir = root.join("java").join(format!("kafka-clients-{version}"));
    let jars: Vec<String> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jar"))
        .map(|p| p.display().to_string())
        .collect();
    jars.iter()
        .any(|j| j.contains("kafka-clients"))
        .then(|| jars.join(":"))
}

/// Kafka's own record classes over segment files (`compat-tests/java/SegmentCheck.java`, given
/// `args` first, compiled in `work`): what it prints, once it has exited 0; `None` (after
/// `missing_tool`) without javac or the kafka-clients jars.
pub fn kafka_segment_check(work: &Path, args: &[&str], files: &[PathBuf]) -> Option<String> {
    let Some(cp) = compile_java("SegmentCheck", &work.join("classes")) else {
        missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return None;
    };
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(files.iter().map(String::as_str))
        .collect();
    Some(run_java(&cp, "SegmentCheck", &args, String::new))
}

/// Compiles one program from `compat-tests/java` into `out` against the kafka-clients 3.9 jars
/// and returns the classpath to run it.
pub fn compile_java(program: &str, out: &Path) -> Option<String> {
    let cp = kafka_clients_classpath()?;
    compile_java_against(program, out, &cp)
}

/// Compiles one program from `compat-tests/java` against `jars`; returns the run classpath.
pub fn compile_java_against(program: &str, out: &Path, jars: &str) -> Option<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compat-tests/java")
        .join(format!("{program}.java"));
    let status = std::process::Command::new("javac")
        .args(["-nowarn", "-cp", jars, "-d"])
        .arg(out)
        .arg(&src)
        .status()
        .ok()?;
    assert!(
        status.success(),
        "javac failed on {} against {jars}",
        src.display()
    );
    Some(format!("{}:{jars}", out.display()))
}

/// Runs `ClientRoundTrip` (compiled onto `classpath`) for every codec against `bootstrap`,
/// `count` records each, topics named `<prefix>-<codec>`; `who` names the client in failures.
pub fn java_round_trip_every_codec(
    classpath: &str,
    bootstrap: &str,
    prefix: &str,
    count: usize,
    who: &str,
    broker_log: impl Fn() -> String,
) {
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let (ok, stdout, stderr) = run_command(std::process::Command::new("java").args([
            "-cp",
            classpath,
            "ClientRoundTrip",
            bootstrap,
            &format!("{prefix}-{codec}"),
            codec,
            &count.to_string(),
        ]));
        assert!(
            ok && stdout.contains(&format!("OK {count}")),
            "{who}, {codec}: {stdout}\n{}\nbroker log:\n{}",
            stderr
                .lines()
                .filter(|l| !l.contains("SLF4J"))
                .collect::<Vec<_>>()
                .join("\n"),
            broker_log()
        );
    }
}

/// Whether a JVM runs here (`java -version` succeeds).
pub fn java_runs() -> bool {
    std::process::Command::new("java")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kafka 2.4.1's distribution (its Java tools): `KAFKA_HOME`, else ~/.cache/odradek/kafka_2.13-2.4.1.
pub fn kafka_home() -> Option<PathBuf> {
    std::env::var_os("KAFKA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/odradek/kafka_2.13-2.4.1"))
        })
        .filter(|p| p.join("bin").is_dir())
}

/// `kafka_home`, or `None` after saying that the test skips: Kafka 2.4.1 is optional (the test
/// command does not install it).
pub fn kafka_home_or_skip() -> Option<PathBuf> {
    let home = kafka_home();
    if home.is_none() {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
    }
    home
}
pub mod broker_process;
pub mod cluster;
pub mod cutting_proxy;
pub mod delegation_tokens;
pub mod kafka;
pub mod scram;
pub mod wire;
pub mod zookeeper;

/// The Python of the compat-test venv (`scripts/python-deps.sh`), if installed.
pub fn python_venv() -> Option<PathBuf> {
    let root = std::env::var_os("ODRADEK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/odradek")))?;
    let python = root.join("venv/bin/python");
    python.exists().then_some(python)
}

/// A log manager over one directory as broker 0, every topic with `config`.
pub fn open_manager(dir: &Path, config: LogConfig) -> odradek::log::LogManager {
    let identity = odradek::log::manager::BrokerIdentity {
        broker_id: 0,
        cluster_id: None,
    };
    odradek::log::LogManager::open(&[dir.to_path_buf()], &identity, config.clone(), move |_| {
        config.clone()
    })
    .unwrap()
}

/// Runs the `odradek` binary with `args` (and `stdin` fed to it); returns success, stdout, stderr.
pub fn odradek(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    outcome(output_of(child))
}

/// Runs `command` to its end: success, stdout, stderr.
pub fn run_command(command: &mut std::process::Command) -> (bool, String, String) {
    outcome(command.bounded_output().unwrap())
}

/// `Command::output` with a bound: what tests use to run a tool or client program.
pub trait BoundedOutput {
    /// Runs the command to its end (stdin empty, stdout and stderr captured), killing it by its
    /// PID after `PROGRAM_LIMIT`; an error only when it cannot start.
    fn bounded_output(&mut self) -> std::io::Result<std::process::Output>;
}

impl BoundedOutput for std::process::Command {
    fn bounded_output(&mut self) -> std::io::Result<std::process::Output> {
        let child = self
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        Ok(output_of(child))
    }
}

/// The longest a tool or client program a test runs may take: the longest is the release build
/// inside `docker build` (a Java client waits at most its 120 s delivery timeout). Past it the
/// program is killed and the test fails on its output.
const PROGRAM_LIMIT: std::time::Duration = std::time::Duration::from_secs(1200);

/// `child`'s exit status and output (both piped), killed by its PID after `PROGRAM_LIMIT`. Its
/// output is drained while it runs, so that a full pipe cannot stall it.
fn output_of(mut child: std::process::Child) -> std::process::Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_or_kill(&mut child, PROGRAM_LIMIT);
    let output = std::process::Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    if status.is_none() {
        eprintln!(
            "killed after {PROGRAM_LIMIT:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

fn outcome(out: std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
