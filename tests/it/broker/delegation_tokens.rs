//! Delegation tokens (KIP-48) over the wire, on both metadata stores: Create, Describe, Renew
//! and Expire with Kafka's rules and error codes, the token as Kafka stores it, and SCRAM logins
//! with the token (`tokenauth=true`) through odradek's own client.

use crate::common;

use std::time::{Duration, Instant};

use common::delegation_tokens::*;
use common::scram::{sasl_port, znode};
use common::wire::{Conn, STORES, Store, start_broker_on};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;

const NOT_ALLOWED: i16 = 64;

/// The secret key as DescribeConfigs of broker 0 shows it: (value, is_sensitive), with the
/// synonyms' values.
async fn described_secret(c: &mut Conn, key: &str) -> (Option<String>, bool, Vec<Option<String>>) {
    let mut resource = describe_configs_request::DescribeConfigsResource::default();
    resource.resource_type = 4; // BROKER
    resource.resource_name = common::wire::s("0");
    resource.configuration_keys = Some(vec![common::wire::s(key)]);
    let mut request = DescribeConfigsRequest::default();
    request.resources.push(resource);
    request.include_synonyms = true;
    let response = c.send(4, request).await;
    let result = &response.results[0];
    assert_eq!(result.error_code, 0);
    let entry = result
        .configs
        .iter()
        .find(|e| e.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"));
    (
        entry.value.as_ref().map(|v| v.to_string()),
        entry.is_sensitive,
        entry
            .synonyms
            .iter()
            .map(|s| s.value.as_ref().map(|v| v.to_string()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_follow_kafkas_rules_and_log_in_as_their_owner() {
    assert_eq!(
        ResponseError::DelegationTokenRequestNotAllowed.code(),
        NOT_ALLOWED
    );
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let config = broker_config(&[&format!("delegation.token.secret.key={SECRET}")]);
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &refs(&config)).await else {
            continue;
        };
        let mut plain = Conn::connect(broker.port).await;
        add_users(&mut plain, &["alice", "bob", "carol"]).await;
        let port = sasl_port(&broker);
        // The secret signs every token: DescribeConfigs names it but never shows it.
        let (value, sensitive, synonyms) =
            described_secret(&mut plain, "delegation.token.secret.key").await;
        assert_eq!((value, sensitive), (None, true), "{store:?}");
        assert!(synonyms.iter().all(Option::is_none), "{synonyms:?}");

        // Never on PLAINTEXT.
        for version in [0, 3] {
            let r = plain.send(version, create_request(&[], -1)).await;
            assert_eq!(r.error_code, NOT_ALLOWED, "{store:?} create v{version}");
            assert_eq!(r.issue_timestamp_ms, -1);
        }
        let mut d = DescribeDelegationTokenRequest::default();
        d.owners = None;
        assert_eq!(plain.send(3, d).await.error_code, NOT_ALLOWED);
        let r = plain.send(2, RenewDelegationTokenRequest::default()).await;
        assert_eq!((r.error_code, r.expiry_timestamp_ms), (NOT_ALLOWED, -1));
        let r = plain.send(2, ExpireDelegationTokenRequest::default()).await;
        assert_eq!((r.error_code, r.expiry_timestamp_ms), (NOT_ALLOWED, -1));

        // alice creates a token bob may renew.
        let mut alice = user(port, "alice").await;
        let before = now_ms();
        let created = create(&mut alice, &[("User", "bob")], -1).await;
        assert_eq!(created.error_code, 0, "{store:?}");
        let id = created.token_id.to_string();
        assert_eq!(id.len(), 22, "a base64url UUID: {id}");
        assert_eq!(
            (
                created.principal_type.as_str(),
                created.principal_name.as_str()
            ),
            ("User", "alice")
        );
        assert_eq!(created.token_requester_principal_name.as_str(), "alice");
        assert_eq!(created.hmac.to_vec(), kafka_hmac(&id));
        assert!(created.issue_timestamp_ms >= before);
        assert_eq!(
            created.expiry_timestamp_ms - created.issue_timestamp_ms,
            24 * 3_600_000
        );
        assert_eq!(
            created.max_timestamp_ms - created.issue_timestamp_ms,
            7 * 24 * 3_600_000
        );
        let hmac = created.hmac.to_vec();

        // Stored as Kafka stores it, with the change notification naming it.
        let store_handle = broker.api().configs.store().clone();
        let json: serde_json::Value = serde_json::from_str(
            &znode(&store_handle, &format!("/delegation_token/tokens/{id}"))
                .await
                .expect("the token's znode"),
        )
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":3,"owner":"User%3Aalice","tokenRequester":"User%3Aalice",
                "renewers":["User%3Abob"],"issueTimestamp":created.issue_timestamp_ms,
                "maxTimestamp":created.max_timestamp_ms,
                "expiryTimestamp":created.expiry_timestamp_ms,"tokenId":id})
        );
        assert_eq!(
            znode(
                &store_handle,
                "/delegation_token/token_changes/token_change_0000000000"
            )
            .await
            .as_deref(),
            Some(id.as_str())
        );

        // Renewers must be users.
        let r = create(&mut alice, &[("Group", "g")], -1).await;
        assert_eq!(
            r.error_code,
            ResponseError::InvalidPrincipalType.code(),
            "{store:?}"
        );

        // Describe: everyone's (no authorizer allows all), filtered by owner or renewer.
        assert_eq!(described_ids(&mut alice, None).await, vec![id.clone()]);
        assert_eq!(
            described_ids(&mut alice, Some(&["bob"])).await,
            vec![id.clone()]
        );
        assert!(described_ids(&mut alice, Some(&["dave"])).await.is_empty());
        assert!(described_ids(&mut alice, Some(&[])).await.is_empty());
        let described = describe(&mut alice, None).await;
        let t = &described.tokens[0];
        assert_eq!(t.hmac.to_vec(), hmac);
        assert_eq!(t.renewers.len(), 1);
        assert_eq!(t.renewers[0].principal_name.as_str(), "bob");
        assert_eq!(t.token_requester_principal_name.as_str(), "alice");

        // A token for another owner (v3; CREATE_TOKENS on User:bob, which no authorizer
        // allows): it logs in as bob, who renews it; alice, who asked for it, describes it but
        // may not renew it.
        let for_bob = create_owned_by(&mut alice, "bob").await;
        assert_eq!(for_bob.error_code, 0, "{store:?}");
        assert_eq!(
            (
                for_bob.principal_name.as_str(),
                for_bob.token_requester_principal_name.as_str()
            ),
            ("bob", "alice")
        );
        let bob_token = describe(&mut alice, Some(&["alice"])).await;
        assert!(
            bob_token
                .tokens
                .iter()
                .any(|t| t.token_id == for_bob.token_id && t.principal_name.as_str() == "bob"),
            "the requester is matched as an owner: {bob_token:?}"
        );
        assert_eq!(
            renew(&mut alice, &for_bob.hmac, 1000).await.0,
            ResponseError::DelegationTokenOwnerMismatch.code()
        );
        let mut as_bob_token = connect(port, &for_bob.token_id, &b64(&for_bob.hmac), true)
            .await
            .unwrap_or_else(|e| panic!("{store:?} bob's token login: {e}"));
        assert_eq!(
            describe(&mut as_bob_token, None).await.error_code,
            NOT_ALLOWED
        );
        drop(as_bob_token);
        let mut bob_conn = user(port, "bob").await;
        assert_eq!(renew(&mut bob_conn, &for_bob.hmac, 1000).await.0, 0);
        assert_eq!(expire(&mut bob_conn, &for_bob.hmac, -1).await.0, 0);
        drop(bob_conn);

        // Only the owner and the renewers renew; an unknown HMAC is no token.
        let mut carol = user(port, "carol").await;
        assert_eq!(
            renew(&mut carol, &hmac, 1000).await,
            (ResponseError::DelegationTokenOwnerMismatch.code(), -1)
        );
        assert_eq!(
            expire(&mut carol, &hmac, -1).await,
            (ResponseError::DelegationTokenOwnerMismatch.code(), -1)
        );
        assert_eq!(
            renew(&mut carol, b"not a token", 1000).await,
            (ResponseError::DelegationTokenNotFound.code(), -1)
        );
        let mut bob = user(port, "bob").await;
        let asked = now_ms();
        let (code, expiry) = renew(&mut bob, &hmac, 60_000).await;
        assert_eq!(code, 0);
        assert!(
            (asked + 60_000..=now_ms() + 60_000).contains(&expiry),
            "{expiry}"
        );
        // Never past the max lifetime.
        let (code, expiry) = renew(&mut alice, &hmac, i64::MAX / 2).await;
        assert_eq!((code, expiry), (0, created.max_timestamp_ms));
        // A positive expiry period sets a new expiry.
        let (code, expiry) = expire(&mut alice, &hmac, 120_000).await;
        assert_eq!(code, 0);
        assert!(expiry <= now_ms() + 120_000 && expiry > asked, "{expiry}");

        // The token logs in (SCRAM with tokenauth=true); a token connection may not manage
        // tokens, and the wrong password or a plain login with the token id fails.
        let password = b64(&hmac);
        let mut as_token = connect(port, &id, &password, true)
            .await
            .unwrap_or_else(|e| panic!("{store:?} token login: {e}"));
        let r = create(&mut as_token, &[], -1).await;
        assert_eq!(r.error_code, NOT_ALLOWED, "a token cannot create tokens");
        assert_eq!(describe(&mut as_token, None).await.error_code, NOT_ALLOWED);
        assert_eq!(renew(&mut as_token, &hmac, 1000).await.0, NOT_ALLOWED);
        assert!(connect(port, &id, "wrong", true).await.is_err());
        assert!(connect(port, &id, &password, false).await.is_err());
        // The owner may act through it: a topic is created and listed.
        let mut topics = CreateTopicsRequest::default();
        let mut topic = create_topics_request::CreatableTopic::default();
        topic.name = common::wire::topic_name("by-token");
        topic.num_partitions = 1;
        topic.replication_factor = 1;
        topics.topics.push(topic);
        match as_token
            .call(ApiKey::CreateTopics, topics.into())
            .await
            .unwrap()
        {
            ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0),
            other => panic!("{other:?}"),
        }

        // Expired now by its owner: gone from the store and every answer; no new login.
        let (code, at) = expire(&mut alice, &hmac, -1).await;
        assert_eq!(code, 0);
        assert!(at >= asked);
        assert!(
            znode(&store_handle, &format!("/delegation_token/tokens/{id}"))
                .await
                .is_none()
        );
        assert!(described_ids(&mut alice, None).await.is_empty());
        assert_eq!(
            renew(&mut alice, &hmac, 1000).await,
            (ResponseError::DelegationTokenNotFound.code(), -1)
        );
        assert!(connect(port, &id, &password, true).await.is_err());

        // A token past its expiry logs in no more and cannot be renewed.
        let short = create(&mut alice, &[], 1500).await;
        assert_eq!(short.error_code, 0);
        assert_eq!(short.max_timestamp_ms - short.issue_timestamp_ms, 1500);
        let short_password = b64(&short.hmac);
        // A connection that logged in with it, and never logs in again, is closed once the
        // token has expired: the session lasts as long as the token.
        let mut open = connect(port, &short.token_id, &short_password, true)
            .await
            .expect("a fresh token logs in");
        open.never_reauthenticate();
        assert!(
            open.call(ApiKey::Metadata, MetadataRequest::default().into())
                .await
                .is_ok()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while now_ms() <= short.expiry_timestamp_ms {
            assert!(Instant::now() < deadline, "the token never expired");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            connect(port, &short.token_id, &short_password, true)
                .await
                .is_err(),
            "{store:?}: an expired token logged in"
        );
        assert!(
            open.call(ApiKey::Metadata, MetadataRequest::default().into())
                .await
                .is_err(),
            "{store:?}: the token's connection outlived it"
        );
        assert_eq!(
            renew(&mut alice, &short.hmac, 1000).await,
            (ResponseError::DelegationTokenExpired.code(), -1)
        );
        // Expiring it now still works (Kafka checks that before expiry).
        assert_eq!(expire(&mut alice, &short.hmac, -1).await.0, 0);

        drop((alice, bob, carol, as_token, plain));
        broker.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_removed_by_the_expiry_check() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let config = broker_config(&[
            &format!("delegation.token.master.key={SECRET}"),
            "delegation.token.expiry.check.interval.ms=200",
        ]);
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &refs(&config)).await else {
            continue;
        };
        let mut plain = Conn::connect(broker.port).await;
        add_users(&mut plain, &["alice"]).await;
        let mut alice = user(sasl_port(&broker), "alice").await;
        let kept = create(&mut alice, &[], -1).await;
        let short = create(&mut alice, &[], 500).await;
        assert_eq!((kept.error_code, short.error_code), (0, 0), "{store:?}");
        // The legacy key signs the same way.
        assert_eq!(short.hmac.to_vec(), kafka_hmac(short.token_id.as_str()));
        let store_handle = broker.api().configs.store().clone();
        let path = format!("/delegation_token/tokens/{}", short.token_id);
        let deadline = Instant::now() + Duration::from_secs(15);
        while znode(&store_handle, &path).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "{store:?}: expired token still stored"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            described_ids(&mut alice, None).await,
            vec![kept.token_id.to_string()]
        );
        drop((alice, plain));
        broker.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_key_tokens_are_disabled() {
    let store = Store::Embedded;
    let tmp = tempfile::tempdir().unwrap();
    let (broker, _zk) = start_broker_on(store, tmp.path(), &refs(&broker_config(&[])))
        .await
        .unwrap();
    let mut plain = Conn::connect(broker.port).await;
    add_users(&mut plain, &["alice"]).await;
    let mut alice = user(sasl_port(&broker), "alice").await;
    let disabled = ResponseError::DelegationTokenAuthDisabled.code();
    let r = create(&mut alice, &[], -1).await;
    assert_eq!((r.error_code, r.max_timestamp_ms), (disabled, -1));
    assert_eq!(r.principal_name.as_str(), "alice");
    assert_eq!(describe(&mut alice, None).await.error_code, disabled);
    assert_eq!(renew(&mut alice, b"x", 1).await, (disabled, -1));
    assert_eq!(expire(&mut alice, b"x", -1).await, (disabled, -1));
    // Kafka creates no token paths when tokens are off.
    let store_handle = broker.api().configs.store().clone();
    assert!(znode(&store_handle, "/delegation_token").await.is_none());
    drop((alice, plain));
    broker.shutdown().await.unwrap();
}
