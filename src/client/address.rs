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

/// A `bootstrap.servers` list, `host1:port1,host2:port2`, as `host:port` addresses to try in
/// turn. Entries are trimmed and empty ones skipped; an IPv6 host is written bracketed
/// (`[::1]:9092`) or bare, its port after the last colon, as Kafka's `Utils.getHost` reads it.
/// An entry without a host or a port is an error naming it, as Kafka's
/// `ClientUtils.parseAndValidateAddresses` refuses it, and so is a list with no entry.
pub fn parse_addresses(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = match entry.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once("]:"),
            None => entry.rsplit_once(':'),
        }
        .ok_or_else(|| format!("{entry:?} is not host:port"))?;
        if host.is_empty() || host.contains(['[', ']', '/']) || host.contains(char::is_whitespace) {
            return Err(format!("{entry:?} has no valid host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{entry:?}: port {port:?} is not a number from 0 to 65535"))?;
        out.push(address(host, port));
    }
    if out.is_empty() {
        return Err(format!("{list:?} names no host:port"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{address, parse_addresses};

    #[test]
    fn a_server_list_is_split_into_addresses_in_order() {
        assert_eq!(
            parse_addresses("127.0.0.1:9092").unwrap(),
            ["127.0.0.1:9092"]
        );
        assert_eq!(
            parse_addresses(" broker-1:9092, 127.0.0.1:9093 ,,").unwrap(),
            ["broker-1:9092", "127.0.0.1:9093"]
        );
        assert_eq!(
            parse_addresses("[::1]:9092,localhost:19092,[fe80::1%eth0]:9093").unwrap(),
            ["[::1]:9092", "localhost:19092", "[fe80::1%eth0]:9093"]
        );
        // A bare IPv6 host: the port is after the last colon.
        assert_eq!(parse_addresses("::1:9092").unwrap(), ["[::1]:9092"]);
        let parsed: std::net::SocketAddr =
            parse_addresses("[::1]:9092").unwrap()[0].parse().unwrap();
        assert_eq!(parsed.port(), 9092);
    }

    #[test]
    fn entries_without_host_or_port_are_refused() {
        for bad in [
            "",
            " , ",
            "localhost",
            "localhost:",
            ":9092",
            "localhost:99999",
            "localhost:http",
            "[::1]",
            "[::1]9092",
            "127.0.0.1:9092,broker",
        ] {
            assert!(parse_addresses(bad).is_err(), "{bad:?} accepted");
        }
    }

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
