//! What both ends of a Kafka connection share: the wire framing, and the rules of incremental
//! fetch sessions. The broker's listeners (`network`) and request handlers (`api`) and its
//! connections to other brokers (`client`, the follower fetcher) use them from here, so that a
//! size limit, a header rule or an epoch rule is decided once. A leaf: it depends on no other
//! module of odradek.

pub mod errors;
pub mod fetch_metadata;
pub mod frame;
