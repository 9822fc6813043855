//! What both ends of a Kafka connection share: the wire framing. The broker's listeners
//! (`network`) and its connections to other brokers (`client`) read and write frames here, so
//! that a size limit or a header rule is decided once. A leaf: it depends on no other module of
//! odradek.

pub mod frame;
