//! Real Kafka clients over secured listeners of a real odradek process: the Java client
//! (kafka-clients 3.9 and 4.3, `compat-tests/java/SecureClients.java`) and KafkaJS
//! (`compat-tests/node/secure.js`) each produce and consume through a consumer group over TLS
//! (server certificate only), TLS with a client certificate, SASL PLAIN, and SCRAM-SHA-256 and
//! -512 over TLS. The Java client also meets wrong passwords (refused at once, not retried until
//! a timeout) and sessions that must be renewed (KIP-368), and its admin client creates and
//! describes the SCRAM user it then logs in as (KIP-554). Wire-level tests of the same
//! listeners, with our own client and raw frames, are in `security::`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::security::scram::ALICE;
use crate::security::{PLAIN_JAAS, Pki, SCRAM_JAAS};
use common::broker_process::{BrokerProcess, free_port};

/// The test broker's listeners: name and security protocol. REAUTH is SCRAM-SHA-512 over TLS
/// with sessions of 5 s (`connections.max.reauth.ms`), which clients must renew.
const LISTENERS: [(&str, &str); 6] = [
    ("PLAINTEXT", "PLAINTEXT"),
    ("SSL", "SSL"),
    ("MTLS", "SSL"),
    ("SASL_PLAINTEXT", "SASL_PLAINTEXT"),
    ("SASL_SSL", "SASL_SSL"),
    ("REAUTH", "SASL_SSL"),
];

/// The principal of the client certificate `Pki` makes, as Kafka names it.
const CLIENT_CERT_PRINCIPAL: &str = "User:CN=writer,OU=eng,O=acme,C=US";

/// One way of reaching the broker that every client is tried with.
struct Mode {
    /// Names topics, groups and files.
    name: &'static str,
    listener: &'static str,
    tls: bool,
    client_cert: bool,
    /// Kafka's name of the SASL mechanism, and who logs in with it.
    sasl: Option<&'static str>,
    user: String,
    password: String,
    /// What the broker logs when such a client is authenticated.
    logged: String,
}

/// Every mode; PLAIN logs in as alice, SCRAM as `scram_user` with `scram_password`.
fn modes(scram_user: &str, scram_password: &str) -> Vec<Mode> {
    let sasl = |name, listener, tls, mechanism: &'static str, user: &str, password: &str| Mode {
        name,
        listener,
        tls,
        client_cert: false,
        sasl: Some(mechanism),
        user: user.into(),
        password: password.into(),
        logged: format!("SASL client authenticated principal=User:{user} mechanism={mechanism}"),
    };
    vec![
        Mode {
            name: "ssl",
            listener: "SSL",
            tls: true,
            client_cert: false,
            sasl: None,
            user: String::new(),
            password: String::new(),
            logged: "TLS client authenticated principal=User:ANONYMOUS".into(),
        },
        Mode {
            name: "mtls",
            listener: "MTLS",
            tls: true,
            client_cert: true,
            sasl: None,
            user: String::new(),
            password: String::new(),
            logged: format!("TLS client authenticated principal={CLIENT_CERT_PRINCIPAL}"),
        },
        sasl(
            "plain",
            "SASL_PLAINTEXT",
            false,
            "PLAIN",
            "alice",
            "alice-secret",
        ),
        sasl(
            "scram-sha-256",
            "SASL_SSL",
            true,
            "SCRAM-SHA-256",
            scram_user,
            scram_password,
        ),
        sasl(
            "scram-sha-512",
            "SASL_SSL",
            true,
            "SCRAM-SHA-512",
            scram_user,
            scram_password,
        ),
    ]
}

/// A broker process with every listener of `LISTENERS`, its certificates, and user `alice`
/// (password `alice-secret`) for PLAIN and both SCRAM mechanisms.
struct SecureBroker {
    process: BrokerProcess,
    ports: BTreeMap<&'static str, u16>,
    pki: Pki,
    /// Where client configuration files go.
    dir: PathBuf,
}

impl SecureBroker {
    fn start(dir: &Path) -> SecureBroker {
        let pki_dir = dir.join("pki");
        std::fs::create_dir_all(&pki_dir).unwrap();
        let pki = Pki::new(&pki_dir);
        // A port just released may be handed out again: each listener gets one not yet taken.
        let mut taken = std::collections::BTreeSet::new();
        let ports: BTreeMap<&'static str, u16> = LISTENERS
            .iter()
            .map(|(name, _)| {
                let port = (0..100)
                    .map(|_| free_port())
                    .find(|p| taken.insert(*p))
                    .expect("a free port not yet taken");
                (*name, port)
            })
            .collect();
        let list = |host: &str| {
            LISTENERS
                .iter()
                .map(|(name, _)| format!("{name}://{host}:{}", ports[name]))
                .collect::<Vec<_>>()
                .join(",")
        };
        let protocols = LISTENERS
            .iter()
            .map(|(name, protocol)| format!("{name}:{protocol}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut overrides = vec![
            format!("listeners={}", list("127.0.0.1")),
            // The broker certificate names localhost, and Java checks host names.
            format!("advertised.listeners={}", list("localhost")),
            format!("listener.security.protocol.map={protocols}"),
            "listener.name.mtls.ssl.client.auth=required".into(),
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN".into(),
            format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}"),
            "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512".into(),
            format!("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}"),
            format!("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}"),
            "listener.name.reauth.sasl.enabled.mechanisms=SCRAM-SHA-512".into(),
            format!("listener.name.reauth.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}"),
            "listener.name.reauth.connections.max.reauth.ms=5000".into(),
        ];
        for listener in ["ssl", "mtls", "sasl_ssl", "reauth"] {
            overrides.extend(pki.broker_tls(listener));
        }
        // alice's SCRAM credentials, stored before start-up as `kafka-configs.sh --zookeeper`
        // stores them.
        let data = dir.join("broker");
        let alice = serde_json::json!({ "/config/users/alice": ALICE });
        common::import_znodes(&alice, &data.join("logs"));
        let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
        let process = BrokerProcess::start_on_port(&data, ports["PLAINTEXT"], &overrides);
        SecureBroker {
            process,
            ports,
            pki,
            dir: dir.to_path_buf(),
        }
    }

    fn bootstrap(&self, listener: &str) -> String {
        format!("localhost:{}", self.ports[listener])
    }

    /// The Java client's properties for `mode`, logging in as `user` with `password`.
    fn java_properties(&self, mode: &Mode, user: &str, password: &str) -> PathBuf {
        let mut p = Vec::new();
        let protocol = match (mode.tls, mode.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
        };
        p.push(format!("security.protocol={protocol}"));
        if mode.tls {
            p.push("ssl.truststore.type=PEM".into());
            p.push(format!(
                "ssl.truststore.location={}",
                self.pki.ca.cert_file.display()
            ));
        }
        if mode.client_cert {
            p.push("ssl.keystore.type=PEM".into());
            p.push(format!(
                "ssl.keystore.location={}",
                self.pki.client.both_file.display()
            ));
        }
        if let Some(mechanism) = mode.sasl {
            let module = if mechanism == "PLAIN" {
                "org.apache.kafka.common.security.plain.PlainLoginModule"
            } else {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            };
            p.push(format!("sasl.mechanism={mechanism}"));
            p.push(format!(
                r#"sasl.jaas.config={module} required username="{user}" password="{password}";"#
            ));
        }
        let file = self
            .dir
            .join(format!("java-{}-{user}-{password}.properties", mode.name));
        std::fs::write(&file, p.join("\n") + "\n").unwrap();
        file
    }

    /// KafkaJS's connection options for `mode`, as `secure.js` reads them.
    fn kafkajs_options(&self, mode: &Mode) -> PathBuf {
        let mut options = serde_json::Map::new();
        if mode.tls {
            let mut ssl = serde_json::json!({ "ca": self.pki.ca.cert_file });
            if mode.client_cert {
                let key = self.dir.join("client.key");
                std::fs::write(&key, &self.pki.client.key).unwrap();
                ssl["cert"] = serde_json::json!(self.pki.client.cert_file);
                ssl["key"] = serde_json::json!(key);
            }
            options.insert("ssl".into(), ssl);
        }
        if let Some(mechanism) = mode.sasl {
            options.insert(
                "sasl".into(),
                serde_json::json!({
                    "mechanism": mechanism.to_ascii_lowercase(),
                    "username": mode.user,
                    "password": mode.password,
                }),
            );
        }
        let file = self.dir.join(format!("kafkajs-{}.json", mode.name));
        std::fs::write(&file, serde_json::Value::Object(options).to_string()).unwrap();
        file
    }

    fn log(&self) -> String {
        self.process.log_text()
    }
}

/// Runs `command` with its output in files under `dir`, killed (by its PID) after `limit`:
/// whether it succeeded, its stdout and its stderr.
pub(super) fn run_bounded(
    command: &mut Command,
    dir: &Path,
    name: &str,
    limit: Duration,
) -> (bool, String, String) {
    let out = dir.join(format!("{name}.out"));
    let err = dir.join(format!("{name}.err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = common::wait_or_kill(&mut child, limit);
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains("SLF4J"))
        .collect::<Vec<_>>()
        .join("\n");
    match status {
        Some(s) => (s.success(), stdout, stderr),
        None => (false, stdout, format!("{stderr}\n(killed after {limit:?})")),
    }
}

/// Lines of the broker log (as `log_text` gives it) about connections on `listener`.
fn on_listener<'a>(log: &'a str, listener: &str) -> Vec<&'a str> {
    let tag = format!("listener={listener}}}");
    log.lines().filter(|l| l.contains(&tag)).collect()
}

/// Asserts that every mode's clients were authenticated as that mode says, on its listener.
fn assert_authenticated(log: &str, modes: &[Mode], who: &str) {
    for mode in modes {
        assert!(
            on_listener(log, mode.listener)
                .iter()
                .any(|l| l.contains(&mode.logged)),
            "{who}, {}: no {:?} on listener {} in the broker log:\n{log}",
            mode.name,
            mode.logged,
            mode.listener
        );
    }
}

fn java_over_secured_listeners(version: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    if common::compile_java("SecureClients", &classes).is_none() {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    }
    let Some(jars) = common::kafka_clients_classpath_for(version) else {
        common::missing_tool(&format!("kafka-clients {version} jars"));
        return;
    };
    let broker = SecureBroker::start(tmp.path());
    let prefix = format!("java-{}", version.replace('.', "-"));
    // SCRAM logins are as a user the admin client creates (alice, stored before start-up,
    // creates it); PLAIN's users are in the broker's JAAS config.
    let user = format!("{prefix}-user");
    let password = format!("{prefix}-secret");
    let modes = modes(&user, &password);
    let mut args: Vec<String> = Vec::new();
    let mut step = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));

    // Wrong passwords first: each is refused with SaslAuthenticationException; the logins after
    // them, on the same listeners, work.
    let plain = &modes[2];
    let scram = &modes[3];
    for mode in [plain, scram] {
        let props = broker.java_properties(mode, "alice", "wrong-secret");
        step(&[
            "refused",
            &broker.bootstrap(mode.listener),
            props.to_str().unwrap(),
        ]);
    }
    let scram_admin = broker.java_properties(&modes[3], "alice", "alice-secret");
    step(&[
        "scram-user",
        &broker.bootstrap("SASL_SSL"),
        scram_admin.to_str().unwrap(),
        &user,
        &password,
        "8192",
    ]);
    for mode in &modes {
        let props = broker.java_properties(mode, &mode.user, &mode.password);
        let topic = format!("{prefix}-{}", mode.name);
        step(&[
            "round-trip",
            &broker.bootstrap(mode.listener),
            props.to_str().unwrap(),
            &topic,
            &format!("{topic}-group"),
            "20",
        ]);
    }
    // Sessions of 5 s, for 12 s: every connection has to log in again, at least twice.
    let renewing = Mode {
        name: "reauth",
        listener: "REAUTH",
        tls: true,
        client_cert: false,
        sasl: Some("SCRAM-SHA-512"),
        user: user.clone(),
        password: password.clone(),
        logged: format!("SASL client authenticated principal=User:{user} mechanism=SCRAM-SHA-512"),
    };
    let props = broker.java_properties(&renewing, &user, &password);
    let topic = format!("{prefix}-reauth");
    step(&[
        "renewing",
        &broker.bootstrap("REAUTH"),
        props.to_str().unwrap(),
        &topic,
        &format!("{topic}-group"),
        "12",
    ]);

    let cp = format!("{}:{jars}", classes.display());
    let (ok, stdout, stderr) = run_bounded(
        Command::new("java")
            .args(["-cp", &cp, "SecureClients"])
            .args(&args),
        tmp.path(),
        &prefix,
        Duration::from_secs(400),
    );
    let log = broker.log();
    assert!(
        ok,
        "Java {version}:\n{stdout}\n{stderr}\nbroker log:\n{}",
        broker.process.log_tail()
    );
    let lines: Vec<&str> = stdout.lines().collect();

    // Refused at once, with Kafka's messages.
    let refusals: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("REFUSED "))
        .collect();
    assert_eq!(refusals.len(), 4, "{stdout}");
    for (i, line) in refusals.iter().enumerate() {
        let mut words = line.splitn(5, ' ');
        let (_, _client, class, ms, message) = (
            words.next(),
            words.next(),
            words.next().unwrap(),
            words.next().unwrap().parse::<u64>().unwrap(),
            words.next().unwrap_or(""),
        );
        assert_eq!(class, "SaslAuthenticationException", "{line}");
        assert!(
            ms < 20_000,
            "{line}: a refusal must not wait for the client's timeouts"
        );
        let expected = if i < 2 {
            "Invalid username or password"
        } else {
            "invalid credentials with SASL mechanism SCRAM-SHA-256"
        };
        assert!(message.contains(expected), "{line}");
    }

    // The user the admin client made, as DescribeUserScramCredentials shows it.
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let described = format!("DESCRIBED {user} {mechanism} 8192");
        assert!(
            lines.contains(&described.as_str()),
            "no {described:?} in:\n{stdout}"
        );
    }
    for mode in &modes {
        let ok = format!("OK round-trip {prefix}-{} 20", mode.name);
        assert!(lines.contains(&ok.as_str()), "no {ok:?} in:\n{stdout}");
    }
    assert_authenticated(&log, &modes, &format!("Java {version}"));

    // Renewed sessions: counted by both clients, none failed, and seen by the broker as more
    // than one login on one connection.
    assert!(
        lines.iter().any(|l| l.starts_with("OK renewing ")),
        "{stdout}"
    );
    let metric = |client: &str, name: &str| -> u64 {
        let prefix = format!("METRIC {client} {name} ");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}"))
            .parse()
            .unwrap()
    };
    for client in ["producer", "consumer"] {
        assert!(
            metric(client, "successful-reauthentication-total") >= 2,
            "the {client} renewed its sessions:\n{stdout}"
        );
        assert_eq!(metric(client, "failed-reauthentication-total"), 0);
        assert_eq!(metric(client, "failed-authentication-total"), 0);
    }
    let reauth_log = on_listener(&log, "REAUTH");
    let mut logins: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &reauth_log {
        if line.contains(&renewing.logged) {
            let peer = line
                .split("peer=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or_else(|| panic!("no peer in {line}"));
            *logins.entry(peer).or_default() += 1;
        }
        assert!(
            !line.contains("expired") && !line.contains("failed"),
            "on the renewing listener: {line}"
        );
    }
    assert!(
        logins.values().any(|&n| n >= 3),
        "some connection logged in again twice: {logins:?}\n{}",
        reauth_log.join("\n")
    );
}

#[test]
fn java_3_9_over_secured_listeners() {
    java_over_secured_listeners("3.9");
}

#[test]
fn java_4_3_over_secured_listeners() {
    java_over_secured_listeners("4.3");
}

#[test]
fn kafkajs_over_secured_listeners() {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/node");
    if !node_dir.join("node_modules/kafkajs").is_dir() {
        common::missing_tool("KafkaJS (scripts/node-deps.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broker = SecureBroker::start(tmp.path());
    // KafkaJS has no admin API for SCRAM credentials: it logs in as alice, stored before
    // start-up.
    let modes = modes("alice", "alice-secret");
    for mode in &modes {
        let options = broker.kafkajs_options(mode);
        let topic = format!("kafkajs-{}", mode.name);
        let (ok, stdout, stderr) = run_bounded(
            Command::new("node")
                .arg(node_dir.join("secure.js"))
                .args([
                    &broker.bootstrap(mode.listener),
                    &topic,
                    &format!("{topic}-group"),
                    "20",
                ])
                .arg(&options),
            tmp.path(),
            &topic,
            Duration::from_secs(180),
        );
        assert!(
            ok && stdout.contains(&format!("OK round-trip {topic} 20")),
            "KafkaJS, {}:\n{stdout}\n{stderr}\nbroker log:\n{}",
            mode.name,
            broker.process.log_tail()
        );
    }
    assert_authenticated(&broker.log(), &modes, "KafkaJS");
}
