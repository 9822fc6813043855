//! User names as ZooKeeper node names, as Kafka's `Sanitizer`.
//!
//! A principal name may hold any character, but a znode name cannot contain `/` and Kafka also
//! uses the same form in JMX metric names, where `*` is a wildcard. Kafka therefore stores
//! `/config/users/<name>` under the name URL-encoded the way Java's `URLEncoder` does it
//! (UTF-8, `%XX` in upper case), then replaces the two characters URLEncoder leaves that are
//! still awkward: `*` becomes `%2A`, and the `+` URLEncoder writes for a space becomes `%20`.
//! What remains unencoded is ASCII letters, digits, `.`, `-` and `_`.

/// The znode name for a user name (`user@example.com` -> `user%40example.com`).
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_') {
            out.push(char::from(byte));
        } else {
            // Everything else, space and `*` included, as %XX of its UTF-8 bytes.
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The user name for a znode name: URL decoding as Java's `URLDecoder` (`+` is a space, `%XX`
/// sequences are UTF-8 bytes, undecodable bytes become U+FFFD). A name that is not valid URL
/// encoding (a `%` without two hex digits), which Kafka would refuse with an exception, is
/// taken literally; see [`try_desanitize`] to tell the two apart.
pub fn desanitize(name: &str) -> String {
    try_desanitize(name).unwrap_or_else(|_| name.to_string())
}

/// [`desanitize`], failing on a malformed `%` escape as Java's `URLDecoder` does.
pub fn try_desanitize(name: &str) -> Result<String, String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("malformed escape at byte {i} of {name:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_like_kafka() {
        let cases = [
            ("alice", "alice"),
            ("user@example.com", "user%40example.com"),
            ("a b", "a%20b"),
            ("a*b", "a%2Ab"),
            ("a+b", "a%2Bb"),
            ("a%b", "a%25b"),
            ("CN=x,O=y", "CN%3Dx%2CO%3Dy"),
            ("a/b:c", "a%2Fb%3Ac"),
            ("A.z-0_9", "A.z-0_9"),
            ("émile", "%C3%A9mile"),
            ("用户", "%E7%94%A8%E6%88%B7"),
            ("😀", "%F0%9F%98%80"),
            ("<default>", "%3Cdefault%3E"),
            ("", ""),
        ];
        for (name, sanitized) in cases {
            assert_eq!(sanitize(name), sanitized, "sanitize({name:?})");
            assert_eq!(desanitize(sanitized), name, "desanitize({sanitized:?})");
        }
    }

    #[test]
    fn desanitize_reads_what_urlencoder_writes() {
        // URLEncoder's own forms, which other tools may have written.
        assert_eq!(desanitize("a+b"), "a b");
        assert_eq!(desanitize("a*b"), "a*b");
        assert_eq!(desanitize("%c3%a9"), "é");
        assert_eq!(desanitize("%FF"), "\u{fffd}");
    }

    #[test]
    fn malformed_escapes() {
        for name in ["%", "a%2", "%zz", "%+1", "%é1", "a%"] {
            assert!(try_desanitize(name).is_err(), "{name:?}");
            assert_eq!(desanitize(name), name);
        }
    }
}
