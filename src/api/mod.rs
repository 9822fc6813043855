//! Request handling: one module per API family, routed from one table (`routes.rs`) that is
//! also what ApiVersions advertises, so nothing unimplemented can be advertised.

pub mod acls;
pub mod alter_configs;
pub mod alter_partition;
pub mod api_versions;
pub mod auth;
pub mod client_quotas;
pub mod cluster;
pub mod configs;
pub mod controller_ops;
pub mod delegation_tokens;
pub mod delete_records;
pub mod describe_producers;
pub mod errors;
pub mod fetch;
pub mod fetch_response;
pub mod fetch_session;
pub mod groups;
pub mod incremental_alter_configs;
pub mod leader_and_isr;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod offsets_for_leader_epoch;
pub mod produce;
pub mod producer_ids;
pub mod refusal;
pub mod routes;
pub mod sasl;
pub mod scram_credentials;
pub mod stop_replica;
pub mod throttle;
pub mod topics;
pub mod transactions;
pub mod update_metadata;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// A request being handled: resolves to the encoded response and how long the connection
/// must then stay muted.
pub type PendingResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, Closing>> + Send>>;

/// A request [`Api::dispatch`] accepted: its response to come, and whether its handler has
/// already run up to its first wait (see there).
pub struct Dispatched {
    pub response: PendingResponse,
    pub started: bool,
}

/// Why a connection is closed instead of answered.
#[derive(Debug, thiserror::Error)]
pub enum Closing {
    /// Kafka closes the connection here on purpose: how an acks=0 producer learns that its
    /// request failed.
    #[error("{0}")]
    Deliberate(String),
    /// A response we could not produce or encode: our bug. Closing beats leaving the client
    /// waiting for an answer that never comes.
    #[error("{0}")]
    Failed(String),
}

/// A handled request's answer.
#[derive(Debug, Default)]
pub struct Reply {
    /// The encoded response; `None` when none is owed (acks=0 produce).
    pub bytes: Option<BytesMut>,
    /// Bytes of segment files that belong inside `bytes`, each at its position there, in
    /// order (a Fetch response's records, sent from the file): the frame is `bytes` with
    /// them inserted, and its size prefix counts them.
    pub regions: Vec<(usize, FileRegion)>,
    /// How long the connection reads no further request after this answer is sent: the
    /// client's quota throttle (KIP-219); zero almost always.
    pub mute: std::time::Duration,
}

impl Reply {
    pub fn now(bytes: Option<BytesMut>) -> Reply {
        Reply {
            bytes,
            regions: Vec::new(),
            mute: std::time::Duration::ZERO,
        }
    }
}

/// A handler's response, with the records that stay in segment files until they are sent
/// (only Fetch has any: see `fetch_response`).
#[derive(Debug)]
pub struct Answer {
    pub response: ResponseKind,
    /// As [`fetch_response::FetchAnswer::regions`]; empty for every other API.
    pub regions: Vec<Option<FileRegion>>,
}

impl From<ResponseKind> for Answer {
    fn from(response: ResponseKind) -> Answer {
        Answer {
            response,
            regions: Vec::new(),
        }
    }
}

impl Answer {
    /// The answer of a handler returning `body` for the response variant `wrap`.
    pub fn of<T, B: IntoAnswer<T>>(wrap: impl FnOnce(T) -> ResponseKind, body: B) -> Answer {
        body.into_answer(wrap)
    }
}

/// What a handler may return for a response of body `T`: the body, or (Fetch) the body with
/// records in files.
pub trait IntoAnswer<T> {
    fn into_answer(self, wrap: impl FnOnce(T) -> ResponseKind) -> Answer;
}

impl<T> IntoAnswer<T> for T {
    fn into_answer(self, wrap: impl FnOnce(T) -> ResponseKind) -> Answer {
        wrap(self).into()
    }
}

impl IntoAnswer<kafka_protocol::messages::FetchResponse> for fetch_response::FetchAnswer {
    fn into_answer(
        self,
        wrap: impl FnOnce(kafka_protocol::messages::FetchResponse) -> ResponseKind,
    ) -> Answer {
        Answer {
            response: wrap(self.response),
            regions: self.regions,
        }
    }
}

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::log::FileRegion;
use crate::metadata::MetadataCache;
use crate::metadata::acls::AclManager;
use crate::metadata::delegation_tokens::TokenManager;
use crate::protocol::frame::{self, FrameError};
use crate::replica::ReplicaManager;
use crate::replica::config_changes::ConfigManager;
use crate::security::acl::Authorizer;
use crate::security::{KafkaPrincipal, SecurityProtocol};
use crate::txn::TransactionCoordinator;
use crate::txn::producer_ids::ProducerIdManager;
use errors::KafkaCode;
pub use routes::{Acl, ROUTES, Route, supported_versions};

/// What a handler knows of the connection a request came on, besides the request header.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The peer's address; None for requests that did not come over the network (the
    /// controller in this broker talking to it).
    pub address: Option<std::net::SocketAddr>,
    /// The listener the request came in on: clients are told the brokers' endpoints on it.
    /// None for requests from this broker's own controller.
    pub listener: Option<Arc<str>>,
    /// Who the connection authenticated as; None for requests from this broker itself.
    pub principal: Option<Arc<KafkaPrincipal>>,
    /// The security protocol of the listener; None for requests from this broker itself.
    pub protocol: Option<SecurityProtocol>,
    /// The connection logged in with a delegation token (Kafka's
    /// `KafkaPrincipal.tokenAuthenticated`).
    pub token_authenticated: bool,
}

impl ClientInfo {
    /// The listener whose endpoints answer this client: its own, or for requests from inside
    /// the broker the inter-broker listener.
    pub fn listener<'a>(&'a self, config: &'a BrokerConfig) -> &'a str {
        self.listener
            .as_deref()
            .unwrap_or(&config.inter_broker_listener)
    }

    /// The client's IP as Java's `InetAddress.getHostAddress` writes it, which is what ACL
    /// hosts are compared with: "127.0.0.1", or IPv6 in eight groups without "::".
    pub fn host_address(&self) -> String {
        let host = self.host();
        host.strip_prefix('/').unwrap_or(&host).to_string()
    }

    /// The client's host as Kafka reports it (`InetAddress.toString` of an address it did not
    /// resolve: "/127.0.0.1"), e.g. in DescribeGroups and in `__consumer_offsets` members.
    pub fn host(&self) -> String {
        match self.address.map(|a| a.ip()) {
            None => String::new(),
            Some(std::net::IpAddr::V4(ip)) => format!("/{ip}"),
            // Java writes IPv6 addresses in full, without the "::" shorthand.
            Some(std::net::IpAddr::V6(ip)) => {
                let parts: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
                format!("/{}", parts.join(":"))
            }
        }
    }
}

pub struct Api {
    pub config: Arc<BrokerConfig>,
    pub cache: Arc<MetadataCache>,
    pub replicas: Arc<ReplicaManager>,
    pub controller: Arc<Controller>,
    pub producer_ids: ProducerIdManager,
    pub groups: Arc<GroupCoordinator>,
    pub txn: Arc<TransactionCoordinator>,
    pub configs: Arc<ConfigManager>,
    pub fetch_sessions: Arc<fetch_session::FetchSessionCache>,
    /// ACL checks (`authorizer.class.name`); None: every request is allowed, as in Kafka.
    pub authorizer: Option<Arc<Authorizer>>,
    /// The ACLs in the metadata store, which the ACL APIs write; present with the authorizer.
    pub acls: Option<Arc<AclManager>>,
    /// Delegation tokens (KIP-48): the store side and the cache logins use.
    pub tokens: Arc<TokenManager>,
}

impl Api {
    /// The highest version of `key` this broker answers: the routing table's, unless the broker
    /// stands in for an older Kafka release (`odradek.test.advertise.ibp.versions`).
    pub fn max_version(&self, key: ApiKey, table_max: i16) -> i16 {
        match self
            .config
            .inter_broker_protocol_version
            .inter_broker_max(key)
        {
            Some(v) if self.config.advertise_ibp_versions => table_max.min(v),
            _ => table_max,
        }
    }

    /// Parses one frame and starts its handler. An error here closes the connection, which is
    /// what Kafka does for frames it cannot parse and for APIs or versions it does not enable.
    /// The returned future produces the encoded response (`None` for acks=0 produce). The
    /// connection runs these one at a time, in arrival order: like Kafka, a broker handles a
    /// connection's requests sequentially, which is what keeps one producer's pipelined batches
    /// in order.
    ///
    /// With `may_start` (every earlier request of the connection answered or itself started),
    /// an acks=0/1 produce outside any quota is run at once up to its first wait, which is
    /// where its batches join their partitions' append queues: a producer's pipelined
    /// requests then reach the log in arrival order without each waiting for the one before
    /// to be answered, and share the writer's thread hop. acks=all produces are not started
    /// early, so that a batch is not appended while an earlier one may still fail its wait for
    /// the ISR, nor are throttled ones, which must wait out the mute (KIP-219).
    pub fn dispatch(
        self: Arc<Self>,
        frame: Bytes,
        client: ClientInfo,
        may_start: bool,
    ) -> Result<Dispatched, FrameError> {
        let mut start = false;
        let mut response = self.parse_and_route(frame, client, |request, quota| {
            start = may_start
                && quota.is_none()
                && matches!(request, RequestKind::Produce(r) if r.acks != -1);
        })?;
        if !start {
            return Ok(Dispatched {
                response,
                started: false,
            });
        }
        // The handler runs up to its first wait here; it is polled again, with the waker of
        // the task that awaits the response, when its turn comes.
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let response = match response.as_mut().poll(&mut context) {
            std::task::Poll::Ready(done) => Box::pin(std::future::ready(done)),
            std::task::Poll::Pending => response,
        };
        Ok(Dispatched {
            response,
            started: true,
        })
    }

    /// [`Api::dispatch`]'s parsing and the handler's future, not yet polled; `inspect` sees the
    /// decoded request and the quota it falls under before the future takes them.
    fn parse_and_route(
        self: Arc<Self>,
        mut frame: Bytes,
        client: ClientInfo,
        inspect: impl FnOnce(&RequestKind, Option<&throttle::RequestQuota>),
    ) -> Result<PendingResponse, FrameError> {
        let (key, version) = frame::peek_api(&frame)?;
        let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApi(key))?;
        let (min, max) = supported_versions(api_key).ok_or(FrameError::UnknownApi(key))?;
        let max = self.max_version(api_key, max);
        if api_key == ApiKey::ApiVersions && version > max {
            // KIP-511: answer in v0 with UNSUPPORTED_VERSION so the client retries with our max.
            let correlation_id = frame::correlation_id(&frame);
            let body = api_versions::unsupported_version_response();
            let out = frame::encode_response(correlation_id, 0, |b| {
                body.encode(b, 0).map_err(|e| e.to_string())
            })
            .map_err(FrameError::Malformed)?;
            return Ok(Box::pin(async move { Ok(Reply::now(Some(out))) }));
        }
        if version < min || version > max {
            return Err(FrameError::Malformed(format!(
                "{api_key:?} v{version} is not supported (v{min}-v{max})"
            )));
        }
        // What Kafka counts against a produce quota: the whole request, header and body.
        let request_size = frame.len();
        let header = frame::decode_header(&mut frame, api_key, version)?;
        let mut request = RequestKind::decode(api_key, &mut frame, version)
            .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{version} body: {e}")))?;
        // Kafka's parsing of the ACL requests refuses what their schema allows but the
        // request classes do not (UNKNOWN enum values, non-literal patterns in v0).
        acls::normalize(&mut request, version)
            .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{version}: {e}")))?;
        let quota = self
            .configs
            .quotas()
            .any_enabled()
            .then(|| throttle::RequestQuota::of(&client, header.client_id.as_deref(), &request))
            .flatten();
        inspect(&request, quota.as_ref());
        let span = tracing::debug_span!("request", api = ?api_key, version, correlation_id = header.correlation_id);
        let arrived = std::time::Instant::now();
        Ok(Box::pin(tracing::Instrument::instrument(
            async move {
                let _timer = RequestTimer {
                    api: api_key,
                    version,
                    arrived,
                };
                let outcome = throttle::run(
                    &self,
                    quota,
                    api_key,
                    request_size,
                    self.handle(&header, &client, request),
                    |r| matches!(r, Ok(Some(_))),
                )
                .await;
                let mute = std::time::Duration::from_millis(outcome.throttle_ms);
                let Some(Answer {
                    mut response,
                    regions,
                }) = outcome.output?
                else {
                    return Ok(Reply {
                        mute,
                        ..Reply::default()
                    });
                };
                throttle::set_throttle_time(&mut response, version, outcome.throttle_ms);
                let header_version = api_key.response_header_version(version);
                // A response we cannot encode is our bug; the connection is closed rather than
                // leaving the client waiting for an answer that never comes.
                let failed = |e: String| Closing::Failed(format!("{api_key:?} v{version}: {e}"));
                let mut gaps = Vec::new();
                let mut bytes = match &response {
                    ResponseKind::Fetch(fetch) if regions.iter().any(Option::is_some) => {
                        frame::encode_response(header.correlation_id, header_version, |b| {
                            gaps = fetch_response::encode(b, fetch, &regions, version)
                                .map_err(|e| e.to_string())?;
                            Ok(())
                        })
                    }
                    _ => frame::encode_response(header.correlation_id, header_version, |b| {
                        response.encode(b, version).map_err(|e| e.to_string())
                    }),
                }
                .map_err(failed)?;
                frame::count_in_size(&mut bytes, gaps.iter().map(|(_, r)| r.len))
                    .map_err(failed)?;
                Ok(Reply {
                    bytes: Some(bytes),
                    regions: gaps,
                    mute,
                })
            },
            span,
        )))
    }

    /// The error for a partition this broker does not lead: NOT_LEADER_OR_FOLLOWER when the
    /// partition exists (the client's metadata is stale), else UNKNOWN_TOPIC_OR_PARTITION.
    pub fn not_leader_error(&self, topic: &str, partition: i32) -> i16 {
        if self.replicas.is_offline(topic, partition) {
            // Its log directory failed here (Kafka's `HostedPartition.Offline`).
            ResponseError::KafkaStorageError.code()
        } else if self.cache.partition(topic, partition).is_some() {
            ResponseError::NotLeaderOrFollower.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        }
    }

    /// Fencing of LeaderAndIsr, UpdateMetadata and StopReplica: the error code when the request
    /// comes from a controller older than one already followed, or is addressed to an earlier
    /// registration of this broker.
    pub fn refuse_stale_controller(
        &self,
        api: ApiKey,
        controller_id: i32,
        controller_epoch: i32,
        broker_epoch: i64,
    ) -> Option<i16> {
        let stale = self
            .cache
            .accept_controller(controller_id, controller_epoch, broker_epoch)
            .err()?;
        tracing::warn!(
            ?api,
            controller = controller_id,
            error = %stale,
            "refused a request from a stale controller"
        );
        Some(stale.kafka_error_code())
    }

    /// A request from the controller running in this broker, handled without the network.
    pub async fn handle_local(&self, request: RequestKind, version: i16) -> Option<ResponseKind> {
        let mut header = RequestHeader::default();
        header.request_api_version = version;
        match self.handle(&header, &ClientInfo::default(), request).await {
            // The controller sends no Fetch, the only API whose answer has file regions.
            Ok(answer) => answer.map(|a| a.response),
            // No answer: the controller's channel sees the reply dropped, as when this broker
            // is gone.
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }

    async fn handle(
        &self,
        header: &RequestHeader,
        client: &ClientInfo,
        request: RequestKind,
    ) -> Result<Option<Answer>, Closing> {
        // Dispatch only decodes APIs in ROUTES, and every route has a handler, so a request
        // without a route is our bug.
        match self.route(header, client, request).await {
            Ok(Ok(response)) => Ok(Some(response)),
            Ok(Err(NoResponse::NotOwed)) => Ok(None),
            Ok(Err(NoResponse::Close(why))) => Err(Closing::Deliberate(why)),
            Err(other) => Err(Closing::Failed(format!(
                "no route for {:?}",
                std::mem::discriminant(&other)
            ))),
        }
    }
}

/// Why a request is answered with no response.
#[derive(Debug)]
pub enum NoResponse {
    /// The client expects none (acks=0 produce).
    NotOwed,
    /// The connection is closed instead, as Kafka's `closeConnection` does: how an acks=0
    /// producer learns that its request failed.
    Close(String),
}

/// Records a request's count and total time when its handling ends, however it ends.
struct RequestTimer {
    api: ApiKey,
    version: i16,
    arrived: std::time::Instant,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        crate::metrics::global().request_done(
            &format!("{:?}", self.api),
            self.version,
            self.arrived.elapsed(),
        );
    }
}
