//! The one way odradek connects to a Kafka broker: the replica fetchers, the controller's
//! channel, the transaction markers, controlled shutdown and the bundled tools all open a
//! [`Connection`] to an [`address`], introducing themselves with a [`ClientId`]. Versions are
//! negotiated with ApiVersions, capped toward other brokers by the inter-broker protocol version
//! ([`Ibp`], the one table of inter-broker request versions); several requests may be in flight
//! on a [`Pipeline`].
//!
//! Below everything but `security` (TLS and SASL's client side) and the leaves: it uses the
//! shared framing in `protocol` and nothing else of odradek.

mod address;
mod connection;
mod security;
mod versions;

pub use address::{address, parse_addresses};
pub use connection::{Connection, Pipeline, Responses, TaggedFrame};
pub use security::{SaslCredentials, Security};
pub use versions::{Ibp, fit};

use kafka_protocol::protocol::StrBytes;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("protocol error talking to {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// The broker refused the SASL login (wrong credentials, a mechanism it does not enable):
    /// retrying changes nothing until someone fixes the configuration, so callers say so loudly.
    #[error("authentication with {addr} failed: {reason}")]
    Authentication { addr: String, reason: String },
}

impl ClientError {
    /// Whether the broker refused to authenticate this client.
    pub fn is_authentication(&self) -> bool {
        matches!(self, ClientError::Authentication { .. })
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Kafka's name for an error code a broker answered with, enough for a person reading a log
/// or a tool's output.
pub fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error {code}"),
    }
}

/// Who a connection says it is: the client id in every request header, and the software name
/// ApiVersions reports (KIP-511). Brokers name their inter-broker clients as Kafka's do, so that
/// request logs and per-client metrics read the same with odradek in the cluster.
#[derive(Debug, Clone)]
pub struct ClientId {
    id: StrBytes,
    software_name: &'static str,
}

/// ApiVersions' software name for a broker's own connections to other brokers.
const BROKER_SOFTWARE_NAME: &str = "odradek";

impl ClientId {
    /// The bundled command-line tools.
    pub fn tools() -> ClientId {
        ClientId {
            id: StrBytes::from_static_str("odradek-tools"),
            software_name: "odradek-tools",
        }
    }

    /// Fetcher `fetcher` of broker `broker_id` (Kafka's ReplicaFetcherManager:
    /// `broker-<id>-fetcher-<n>`).
    pub fn replica_fetcher(broker_id: i32, fetcher: usize) -> ClientId {
        ClientId::of_broker(format!("broker-{broker_id}-fetcher-{fetcher}"))
    }

    /// The controller's channel to brokers and a broker's ControlledShutdown to the controller:
    /// Kafka's ControllerChannelManager and controlled shutdown send the bare broker id.
    pub fn broker(broker_id: i32) -> ClientId {
        ClientId::of_broker(broker_id.to_string())
    }

    /// WriteTxnMarkers from the transaction coordinator on broker `broker_id` (Kafka's
    /// TransactionMarkerChannelManager: `broker-<id>-txn-marker-sender`).
    pub fn txn_marker_sender(broker_id: i32) -> ClientId {
        ClientId::of_broker(format!("broker-{broker_id}-txn-marker-sender"))
    }

    fn of_broker(id: String) -> ClientId {
        ClientId {
            id: StrBytes::from_string(id),
            software_name: BROKER_SOFTWARE_NAME,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::ClientId;

    #[test]
    fn brokers_name_their_clients_as_kafka_does() {
        assert_eq!(
            ClientId::replica_fetcher(2, 0).as_str(),
            "broker-2-fetcher-0"
        );
        assert_eq!(ClientId::broker(1).as_str(), "1");
        assert_eq!(
            ClientId::txn_marker_sender(3).as_str(),
            "broker-3-txn-marker-sender"
        );
        assert_eq!(ClientId::tools().as_str(), "odradek-tools");
    }
}
