//! SaslHandshake and SaslAuthenticate as the API layer sees them: only on a connection that is
//! already authenticated, or on a listener without SASL. The exchange itself happens before
//! any request reaches this layer (`network::sasl`); here both are refused with
//! ILLEGAL_SASL_STATE and the connection stays open, as in Kafka's `KafkaApis`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

pub fn handshake(_request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let mut r = SaslHandshakeResponse::default();
    r.error_code = ResponseError::IllegalSaslState.code();
    r
}

pub fn authenticate(_request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let mut r = SaslAuthenticateResponse::default();
    r.error_code = ResponseError::IllegalSaslState.code();
    r.error_message = Some(StrBytes::from_static_str(
        "SaslAuthenticate request received after successful authentication",
    ));
    r
}
