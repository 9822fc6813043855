//! Broker addresses as a connection needs them.

/// `host:port` to connect to. An IPv6 literal is bracketed (`[::1]:9092`), as Kafka's
/// `Utils.formatAddress` does: hosts arrive bare from listeners, ZooKeeper registrations and
/// Metadata responses, and without brackets the port could not be told from the address.
pub fn address(host: &str, port: impl Into<i32>) -> String {
    let port = port.into();
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::address;

    #[test]
    fn ipv4_and_host_names_are_written_as_they_are() {
        assert_eq!(address("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(
            address("broker-1.example", 9093u16),
            "broker-1.example:9093"
        );
        assert_eq!(address("localhost", 0), "localhost:0");
    }

    #[test]
    fn ipv6_literals_are_bracketed() {
        assert_eq!(address("::1", 9092), "[::1]:9092");
        assert_eq!(address("fe80::1%eth0", 9092u16), "[fe80::1%eth0]:9092");
        assert_eq!(address("2001:db8::7", 19092), "[2001:db8::7]:19092");
        // Already bracketed: not twice.
        assert_eq!(address("[::1]", 9092), "[::1]:9092");
    }

    #[test]
    fn the_bracketed_form_is_a_socket_address() {
        let parsed: std::net::SocketAddr = address("::1", 9092).parse().expect("parses");
        assert_eq!(
            parsed,
            std::net::SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 9092))
        );
    }
}
