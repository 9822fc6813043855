//! The SCRAM messages' grammar, as Kafka's `ScramMessages` matches it, field by field.

use super::*;

// ---------------------------------------------------------------------------------------------
// Message syntax
//
// Kafka matches each message against a regular expression over ASCII (ScramMessages); these
// helpers are that grammar, field by field. Every message is ASCII without NUL, and fields are
// separated by commas that no field may contain, so splitting on ',' is exact.

/// A SCRAM message as text: ASCII 0x01..=0x7F only, as Kafka's patterns require.
pub(super) fn message_text(token: &[u8]) -> Option<&str> {
    if token.iter().all(|b| (0x01..=0x7f).contains(b)) {
        std::str::from_utf8(token).ok()
    } else {
        None
    }
}

/// A nonce: one or more printable characters (0x21..=0x7E) other than ','.
pub(super) fn is_nonce(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A user name as SCRAM writes it, `,` as `=2C` and `=` as `=3D`; any other `=` is invalid.
/// Returns the name unescaped.
pub(super) fn parse_saslname(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        let (plain, escape) = rest.split_at(at);
        name.push_str(plain);
        rest = if let Some(after) = escape.strip_prefix("=2C") {
            name.push(',');
            after
        } else if let Some(after) = escape.strip_prefix("=3D") {
            name.push('=');
            after
        } else {
            return None;
        };
    }
    name.push_str(rest);
    Some(name)
}

/// The inverse of [`parse_saslname`].
pub(super) fn to_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Base64 in the canonical padded form Kafka's patterns accept (possibly empty), decoded.
pub(super) fn parse_base64(text: &str) -> Option<Vec<u8>> {
    let canonical = text.len().is_multiple_of(4) && {
        let body = text.trim_end_matches('=');
        let padding = text.len() - body.len();
        padding <= 2
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if canonical {
        JAVA_BASE64.decode(text).ok()
    } else {
        None
    }
}

/// Extensions after the fixed attributes: `key=value` with a key of letters and a non-empty
/// value. A repeated key keeps its last value, as in Kafka's map.
pub(super) fn parse_extensions<'a>(fields: &[&'a str]) -> Option<BTreeMap<&'a str, &'a str>> {
    let mut extensions = BTreeMap::new();
    for field in fields {
        let (key, value) = field.split_once('=')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || value.is_empty() {
            return None;
        }
        extensions.insert(key, value);
    }
    Some(extensions)
}

/// The value of attribute `name` in `field` (`r=abc` -> `abc` for `r`).
pub(super) fn attribute(field: &str, name: char) -> Option<&str> {
    field.strip_prefix(name)?.strip_prefix('=')
}

/// A parsed client-first message.
pub(super) struct ClientFirst<'a> {
    pub(super) authzid: Option<String>,
    pub(super) user: String,
    pub(super) nonce: &'a str,
    /// Everything after the gs2 header: part of the AuthMessage, exactly as the client sent it.
    pub(super) bare: &'a str,
    pub(super) token_auth: bool,
}

impl<'a> ClientFirst<'a> {
    /// `n,[a=<authzid>],[m=<reserved>,]n=<saslname>,r=<nonce>[,<ext>=<value>]...`
    pub(super) fn parse(token: &'a [u8]) -> Result<ClientFirst<'a>, AuthError> {
        let bad =
            |why: &str| AuthError::Invalid(format!("Invalid SCRAM client first message: {why}"));
        let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
        let fields: Vec<&str> = text.split(',').collect();
        let (gs2_flag, authzid_field) = match fields.as_slice() {
            [flag, authzid, ..] => (*flag, *authzid),
            _ => return Err(bad("no gs2 header")),
        };
        if gs2_flag != "n" {
            // `y` and `p=` ask about channel binding, which Kafka does not support.
            return Err(bad("only gs2 header 'n' (no channel binding) is supported"));
        }
        let authzid = if authzid_field.is_empty() {
            None
        } else {
            let value = attribute(authzid_field, 'a').ok_or_else(|| bad("bad authzid"))?;
            Some(parse_saslname(value).ok_or_else(|| bad("bad authzid"))?)
        };
        // Empty only when nothing follows the header, which fails below.
        let bare = text
            .get(gs2_flag.len() + 1 + authzid_field.len() + 1..)
            .unwrap_or_default();
        let mut rest = fields.get(2..).unwrap_or_default();
        // The reserved `m=` attribute: Kafka's pattern allows it and then ignores it.
        if let Some(reserved) = rest.first().and_then(|f| attribute(f, 'm')) {
            if reserved.is_empty() {
                return Err(bad("empty reserved attribute"));
            }
            rest = rest.get(1..).unwrap_or_default();
        }
        let (user, nonce, extensions) = match rest {
            [user, nonce, extensions @ ..] => (*user, *nonce, extensions),
            _ => return Err(bad("missing user name or nonce")),
        };
        let user = attribute(user, 'n')
            .and_then(parse_saslname)
            .ok_or_else(|| bad("bad user name"))?;
        let nonce = attribute(nonce, 'r')
            .filter(|n| is_nonce(n))
            .ok_or_else(|| bad("bad nonce"))?;
        let extensions = parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
        // Only `tokenauth` means anything (Java's Boolean.parseBoolean); others are ignored.
        let token_auth = extensions
            .get("tokenauth")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(ClientFirst {
            authzid,
            user,
            nonce,
            bare,
            token_auth,
        })
    }
}

/// A parsed client-final message.
pub(super) struct ClientFinal<'a> {
    pub(super) nonce: &'a str,
    pub(super) proof: Vec<u8>,
    /// Everything before `,p=`: part of the AuthMessage.
    pub(super) without_proof: &'a str,
}

impl<'a> ClientFinal<'a> {
    /// `c=<b64>,r=<nonce>[,<ext>=<value>]...,p=<b64>`
    pub(super) fn parse(token: &'a [u8]) -> Result<ClientFinal<'a>, AuthError> {
        let bad =
            |why: &str| AuthError::Invalid(format!("Invalid SCRAM client final message: {why}"));
        let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
        let fields: Vec<&str> = text.split(',').collect();
        let [binding, nonce, extensions @ .., proof] = fields.as_slice() else {
            return Err(bad("missing attributes"));
        };
        // The channel binding must be Base64 but, as in Kafka, its value is not checked.
        attribute(binding, 'c')
            .and_then(parse_base64)
            .ok_or_else(|| bad("bad channel binding"))?;
        let nonce = attribute(nonce, 'r')
            .filter(|n| is_nonce(n))
            .ok_or_else(|| bad("bad nonce"))?;
        parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
        let proof = attribute(proof, 'p')
            .and_then(parse_base64)
            .ok_or_else(|| bad("bad proof"))?;
        // The proof is the last field, so the text before it ends at the last comma.
        let without_proof = text.rsplit_once(',').map_or(text, |(head, _)| head);
        Ok(ClientFinal {
            nonce,
            proof,
            without_proof,
        })
    }
}

pub(super) fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    client_final_without_proof: &str,
) -> Vec<u8> {
    [client_first_bare, server_first, client_final_without_proof]
        .join(",")
        .into_bytes()
}
