use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::*;
use crate::common::wire::{Conn, STORES, Store, start_broker, start_broker_on};

const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

async fn metadata_ports(conn: &mut Connection) -> Vec<i32> {
    match conn
        .call(
            ApiKey::Metadata,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await
        .unwrap()
    {
        ResponseKind::Metadata(r) => r.brokers.iter().map(|b| b.port).collect(),
        other => panic!("not a Metadata response: {other:?}"),
    }
}

fn sasl_plaintext_plain() -> Vec<String> {
    vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".into(),
        "advertised.listeners=PLAINTEXT://localhost:0,SASL_PLAINTEXT://localhost:0".into(),
        "sasl.enabled.mechanisms=PLAIN".into(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}"),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn each_listener_answers_with_its_own_endpoints_and_plain_logs_in() {
    for store in STORES {
        each_listener_answers_on(store).await;
    }
}

async fn each_listener_answers_on(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) =
        start_broker_on(store, dir.path(), &refs(&sasl_plaintext_plain())).await
    else {
        return;
    };
    let plain_port = broker.port_of("PLAINTEXT").unwrap();
    let sasl_port = broker.port_of("SASL_PLAINTEXT").unwrap();

    let mut anonymous = connect(plain_port, Security::default()).await.unwrap();
    assert_eq!(
        metadata_ports(&mut anonymous).await,
        vec![i32::from(plain_port)]
    );

    let alice = Security {
        tls: None,
        sasl: login(Mechanism::Plain, "alice", "alice-secret"),
    };
    let mut conn = connect(sasl_port, alice).await.unwrap();
    assert_eq!(
        metadata_ports(&mut conn).await,
        vec![i32::from(sasl_port)],
        "a client on the SASL listener is sent to the SASL listener"
    );

    // A wrong password and an unknown user read the same, and arrive only after the delay.
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let started = Instant::now();
        let err = connect(
            sasl_port,
            Security {
                tls: None,
                sasl: login(Mechanism::Plain, user, password),
            },
        )
        .await
        .err()
        .expect("a wrong password is refused");
        let shown = err.to_string();
        assert!(
            shown.contains("SaslAuthenticationFailed")
                && shown.contains("Authentication failed: Invalid username or password"),
            "{shown}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "connection.failed.authentication.delay.ms is 100 by default"
        );
    }
    // The good client is unaffected.
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(sasl_port)]);
}

#[tokio::test]
async fn sasl_refuses_what_comes_before_or_instead_of_authentication() {
    for store in STORES {
        sasl_refusals_on(store).await;
    }
}

async fn sasl_refusals_on(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) =
        start_broker_on(store, dir.path(), &refs(&sasl_plaintext_plain())).await
    else {
        return;
    };
    let port = broker.port_of("SASL_PLAINTEXT").unwrap();

    // Any request but ApiVersions and SaslHandshake first: closed, no answer.
    let mut c = Conn::connect(port).await;
    c.send_request(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default()),
    )
    .await;
    assert!(
        c.is_closed().await,
        "Metadata before authentication is refused"
    );

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
    let mut c = Conn::connect(port).await;
    let r = c
        .send(
            1,
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
        )
        .await;
    assert_eq!(r.error_code, UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(r.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    assert!(c.is_closed().await);

    // Garbage tokens: refused with SASL_AUTHENTICATION_FAILED, then closed.
    for token in [
        &b""[..],
        b"\xff\xfe\x00\x00",
        b"no-nul-separators-at-all",
        &vec![0u8; 100_000],
    ] {
        let mut c = Conn::connect(port).await;
        let r = c
            .send(
                1,
                SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
            )
            .await;
        assert_eq!(r.error_code, 0);
        let r = c
            .send(
                2,
                SaslAuthenticateRequest::default()
                    .with_auth_bytes(bytes::Bytes::copy_from_slice(token)),
            )
            .await;
        assert_eq!(
            r.error_code,
            SASL_AUTHENTICATION_FAILED,
            "{} bytes",
            token.len()
        );
        assert!(c.is_closed().await);
    }

    // A token larger than sasl.server.max.receive.size: closed.
    let mut c = Conn::connect(port).await;
    c.send(
        1,
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )
    .await;
    c.send_request(
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default().with_auth_bytes(vec![b'x'; 600_000].into()),
        ),
    )
    .await;
    assert!(
        c.is_closed().await,
        "an oversize token closes the connection"
    );

    // After all that, a good client logs in.
    let mut conn = connect(
        port,
        Security {
            tls: None,
            sasl: login(Mechanism::Plain, "admin", "admin-secret"),
        },
    )
    .await
    .unwrap();
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(port)]);

    // SaslHandshake on an authenticated connection without session expiry, and on a listener
    // without SASL: ILLEGAL_SASL_STATE from the API layer, connection open.
    let mut c = Conn::connect(broker.port_of("PLAINTEXT").unwrap()).await;
    let r = c
        .send(
            1,
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await;
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    assert!(!c.is_closed().await);
}

fn ssl_listener(pki: &Pki, client_auth: Option<&str>) -> Vec<String> {
    let mut o = vec![
        "listeners=SSL://127.0.0.1:0".to_string(),
        "advertised.listeners=SSL://localhost:0".to_string(),
        "security.inter.broker.protocol=SSL".to_string(),
    ];
    o.extend(pki.broker_tls("ssl"));
    if let Some(auth) = client_auth {
        o.push(format!("ssl.client.auth={auth}"));
    }
    o
}

#[tokio::test]
async fn tls_listener_serves_tls_clients_and_closes_on_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut o = ssl_listener(&pki, None);
    // Bounds the handshake a silent client gets.
    o.push("connections.max.idle.ms=1500".into());
    let broker = start_broker(&dir.path().join("data"), &refs(&o)).await;
    let port = broker.port;

    let mut conn = connect(
        port,
        Security {
            tls: Some(tls_client(&pki, None)),
            sasl: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(port)]);

    // A plaintext Kafka client on the TLS port gets no Kafka answer: at most a TLS alert
    // (record type 0x15), then the end of the stream.
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = odradek::protocol::frame::encode_request(
        ApiKey::ApiVersions,
        0,
        1,
        None,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    )
    .unwrap();
    raw.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer))
        .await
        .expect("the broker closes the connection")
        .ok();
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "a plaintext client got {answer:?}"
    );

    // A client that never finishes the handshake is closed after the bound.
    let started = Instant::now();
    let mut c = Conn::connect(port).await;
    c.send_raw(&[0x16, 0x03, 0x01]).await; // the start of a ClientHello, and nothing more
    assert!(c.is_closed().await);
    assert!(started.elapsed() < Duration::from_secs(10));

    // A client trusting another CA refuses the broker.
    let rogue = TlsSettings {
        truststore_type: StoreType::Pem,
        truststore_certificates: Some(pki.rogue_ca.cert.clone()),
        ..TlsSettings::default()
    };
    assert!(
        connect(
            port,
            Security {
                tls: Some(rogue.client_config().unwrap()),
                sasl: None
            }
        )
        .await
        .is_err()
    );
    // The first connection has idled out by now (connections.max.idle.ms); a new one works.
    let mut conn = connect(
        port,
        Security {
            tls: Some(tls_client(&pki, None)),
            sasl: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(port)]);
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let o = ssl_listener(&pki, Some("required"));
    let broker = start_broker(&dir.path().join("data"), &refs(&o)).await;
    let port = broker.port;

    let with = |cert| Security {
        tls: Some(tls_client(&pki, cert)),
        sasl: None,
    };
    let mut conn = connect(port, with(Some(&pki.client))).await.unwrap();
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(port)]);

    // No certificate, or one from a CA the broker does not trust: no connection. The TLS
    // handshake of TLS 1.3 completes on the client's side before the server checks the
    // certificate, so the refusal shows at the first request.
    for cert in [None, Some(&pki.rogue_client)] {
        let refused = match connect(port, with(cert)).await {
            Err(_) => true,
            Ok(mut c) => c
                .call(
                    ApiKey::Metadata,
                    RequestKind::Metadata(MetadataRequest::default()),
                )
                .await
                .is_err(),
        };
        assert!(refused, "a client without a trusted certificate was served");
    }
    assert_eq!(metadata_ports(&mut conn).await, vec![i32::from(port)]);
}

#[tokio::test]
async fn unusable_keystores_stop_startup_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let jks = dir.path().join("broker.jks");
    // A JKS file starts with the magic 0xFEEDFEED.
    std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
    let cases = [
        (
            vec![
                format!("ssl.keystore.location={}", jks.display()),
                "ssl.keystore.password=secret".to_string(),
            ],
            "PKCS12",
        ),
        (
            vec![
                "ssl.keystore.type=PEM".to_string(),
                format!(
                    "ssl.keystore.location={}",
                    dir.path().join("missing.pem").display()
                ),
            ],
            "missing.pem",
        ),
        (
            vec![
                "ssl.keystore.type=PEM".to_string(),
                format!("ssl.keystore.location={}", pki.ca.cert_file.display()),
            ],
            "ssl.keystore",
        ),
    ];
    for (extra, expect) in cases {
        let mut o = vec![
            "listeners=SSL://127.0.0.1:0".to_string(),
            "advertised.listeners=SSL://localhost:0".to_string(),
            "security.inter.broker.protocol=SSL".to_string(),
            format!("log.dirs={}", dir.path().join("data").display()),
            "metrics.port=0".into(),
            "ssl.truststore.type=PEM".into(),
            format!("ssl.truststore.location={}", pki.ca.cert_file.display()),
        ];
        o.extend(extra);
        let err = match odradek::config::BrokerConfig::load(None, &o) {
            Err(e) => e.to_string(),
            Ok(config) => match odradek::server::Broker::start(config).await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("started with {o:?}"),
            },
        };
        assert!(err.contains(expect), "{expect}: {err}");
    }

    // The broker process says so and exits non-zero.
    let data = dir.path().join("process");
    let args = [
        "listeners=SSL://127.0.0.1:0".to_string(),
        "advertised.listeners=SSL://localhost:0".to_string(),
        "security.inter.broker.protocol=SSL".to_string(),
        format!("log.dirs={}", data.display()),
        "metrics.port=0".to_string(),
        format!("ssl.keystore.location={}", jks.display()),
        "ssl.keystore.password=secret".to_string(),
    ];
    let mut argv = vec!["broker".to_string()];
    for a in &args {
        argv.push("--override".into());
        argv.push(a.clone());
    }
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        crate::common::odradek(&argv, None)
    })
    .await
    .unwrap();
    assert!(!ok, "the broker started with a JKS keystore: {out}");
    assert!(err.contains("ssl.keystore"), "{err}");
}

/// A session lasts `connections.max.reauth.ms` from the end of its authentication, which is
/// when the client starts counting the lifetime it is told (it logs in again at 85-95% of it):
/// time spent before or during the exchange does not shorten it. It still ends on time.
#[tokio::test]
async fn a_session_lasts_its_lifetime_from_the_end_of_authentication() {
    const LIFETIME: Duration = Duration::from_millis(4000);
    let dir = tempfile::tempdir().unwrap();
    let mut o = sasl_plaintext_plain();
    o.push(format!(
        "listener.name.sasl_plaintext.connections.max.reauth.ms={}",
        LIFETIME.as_millis()
    ));
    let broker = start_broker(dir.path(), &refs(&o)).await;
    let mut c = Conn::connect(broker.port_of("SASL_PLAINTEXT").unwrap()).await;
    let r = c
        .send(
            1,
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        )
        .await;
    assert_eq!(r.error_code, 0);
    // A slow client (a loaded machine, a far network, a costly SCRAM proof): half the
    // lifetime passes between the handshake and the token.
    tokio::time::sleep(LIFETIME / 2).await;
    let r = c
        .send(
            2,
            SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from_static(b"\0alice\0alice-secret")),
        )
        .await;
    let authenticated = Instant::now();
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.session_lifetime_ms, LIFETIME.as_millis() as i64);

    // Three quarters of the lifetime later (before a Java client would log in again) the
    // session is still open.
    tokio::time::sleep_until((authenticated + LIFETIME * 3 / 4).into()).await;
    let r = c
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(matches!(r, ResponseKind::Metadata(_)));

    // Once the lifetime is over, the next request closes the connection.
    let deadline = authenticated + LIFETIME + Duration::from_secs(10);
    loop {
        c.send_request(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
        if c.read_frame().await.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session outlived its lifetime"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn plain_handshake(c: &mut Conn) -> i16 {
    c.send(
        1,
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    )
    .await
    .error_code
}

/// KIP-368 as Kafka's KafkaChannel allows it: the first re-authentication of a session may
/// start at once; another only a second after the previous one started (before that the
/// SaslHandshake goes to the API layer: ILLEGAL_SASL_STATE, connection open).
#[tokio::test]
async fn re_authentication_starts_at_most_once_a_second_the_first_at_any_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = sasl_plaintext_plain();
    o.push("listener.name.sasl_plaintext.connections.max.reauth.ms=60000".into());
    let broker = start_broker(dir.path(), &refs(&o)).await;
    let mut c = Conn::connect(broker.port_of("SASL_PLAINTEXT").unwrap()).await;
    let token = || {
        SaslAuthenticateRequest::default()
            .with_auth_bytes(bytes::Bytes::from_static(b"\0alice\0alice-secret"))
    };
    assert_eq!(plain_handshake(&mut c).await, 0);
    assert_eq!(c.send(2, token()).await.error_code, 0);
    // At once: the first re-authentication.
    let first = Instant::now();
    assert_eq!(
        plain_handshake(&mut c).await,
        0,
        "the first re-authentication"
    );
    let r = c.send(2, token()).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.session_lifetime_ms, 60_000);
    // Again within the second: refused by the API layer, and the session goes on.
    let again = plain_handshake(&mut c).await;
    if first.elapsed() < Duration::from_millis(900) {
        assert_eq!(again, 34, "ILLEGAL_SASL_STATE within a second");
        let r = c
            .call(
                ApiKey::Metadata,
                12,
                RequestKind::Metadata(MetadataRequest::default()),
            )
            .await;
        assert!(matches!(r, ResponseKind::Metadata(_)));
        // The broker counts the second from when it read the handshake, a little after
        // `first`: poll until it accepts, which must not be before the second is up.
        let deadline = first + Duration::from_secs(10);
        loop {
            match plain_handshake(&mut c).await {
                0 => break,
                code => assert_eq!(code, 34, "ILLEGAL_SASL_STATE within a second"),
            }
            assert!(
                Instant::now() < deadline,
                "no re-authentication a second later"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(first.elapsed() >= Duration::from_secs(1));
    } else {
        assert_eq!(again, 0, "a second later");
    }
    let r = c.send(2, token()).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
}
