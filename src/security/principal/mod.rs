//! The principal of a TLS client certificate, as Kafka's `DefaultKafkaPrincipalBuilder` makes it.
//!
//! Kafka takes the subject of the verified peer certificate as Java's
//! `X500Principal.getName()` renders it (RFC 2253), passes that string through
//! `ssl.principal.mapping.rules` and calls the result `User:<name>`. ACLs and quotas are keyed
//! on that string, so both halves must match Java byte for byte:
//!
//! - [`distinguished_name`] renders a subject as OpenJDK 17 does (checked against
//!   `X500Principal.getName()` of OpenJDK 17.0.15 for every case in the tests). The certificate
//!   is parsed with `x509-parser` (already in the tree through `p12-keystore`, and it hands out
//!   the subject's exact DER); the Name itself is walked here, because Java's `#hex` form needs
//!   the original DER bytes of each attribute value, tag and length included.
//! - [`PrincipalMapper`] is Kafka's `SslPrincipalMapper`: the same rule grammar, whole-DN
//!   matching, Java's `Matcher.replaceAll` semantics for the replacement (`$n`, `${name}`,
//!   `\` escapes, empty matches) and Kafka's pre-pass that turns references to groups the regex
//!   does not have into literal text.
//!
//! Known differences from Java, all in corners no real DN or rule reaches:
//! - Rules are compiled by the `regex` crate: no look-around or back-references (a rule using
//!   them is refused at parse time), and `\w`, `\d`, `\s`, `\b` are Unicode-aware where Java's
//!   are ASCII-only.
//! - OpenJDK 22+ decodes BMPString/T61String values with their own charsets; 17 (what Kafka 3.9
//!   is mostly run on) decodes every string type as UTF-8, and so does this module.
//! - OID arcs wider than 128 bits are refused (Java prints them).

use std::fmt;

use regex::Regex;
use rustls::pki_types::CertificateDer;

use super::KafkaPrincipal;

/// The subject DN of a DER certificate, rendered as Java's `X500Principal.getName()`.
pub fn distinguished_name(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("cannot parse the peer certificate: {e}"))?;
    render_name(cert.subject().as_raw())
}

/// `User:ANONYMOUS` without a verified peer certificate, else `User:<mapped subject DN>`.
///
/// `peer_certs` is what rustls reports after the handshake (`peer_certificates()`): the peer's
/// end-entity certificate first. rustls only reports certificates it verified, so their
/// presence is the "verified peer" Kafka asks `SSLSession.getPeerPrincipal()` for.
pub fn ssl_principal(
    peer_certs: Option<&[CertificateDer<'_>]>,
    mapper: &PrincipalMapper,
) -> Result<KafkaPrincipal, String> {
    let Some(end_entity) = peer_certs.and_then(|certs| certs.first()) else {
        return Ok(KafkaPrincipal::anonymous());
    };
    let dn = distinguished_name(end_entity)?;
    mapper.map(&dn).map(KafkaPrincipal::user)
}

// ---------------------------------------------------------------------------------------------
// RFC 2253 rendering
// ---------------------------------------------------------------------------------------------

/// Renders a DER `Name` (SEQUENCE OF RelativeDistinguishedName) as Java does: RDNs most
/// specific first (reverse of the DER order) joined by `,`; the AVAs of a multi-valued RDN in
/// their DER order joined by `+`.
fn render_name(name_der: &[u8]) -> Result<String, String> {
    let (name, rest) = read_tlv(name_der)?;
    if name.tag != TAG_SEQUENCE || !rest.is_empty() {
        return Err("the subject is not a DER SEQUENCE".into());
    }
    let mut rdns = Vec::new();
    let mut input = name.content;
    while !input.is_empty() {
        let (set, rest) = read_tlv(input)?;
        input = rest;
        if set.tag != TAG_SET {
            return Err("a relative distinguished name is not a SET".into());
        }
        let mut avas = Vec::new();
        let mut members = set.content;
        while !members.is_empty() {
            let (ava, rest) = read_tlv(members)?;
            members = rest;
            avas.push(render_ava(ava)?);
        }
        if avas.is_empty() {
            return Err("an empty relative distinguished name".into());
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// Java's RFC 2253 keywords (`AVAKeyword` entries marked RFC 2253 compliant); every other
/// attribute type is printed as its dotted OID.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
/// The string types Java renders as text (`AVA.isDerString`, non-canonical): PrintableString,
/// T61String, IA5String, GeneralString, BMPString, UTF8String. Anything else is `#hex`.
const STRING_TAGS: &[u8] = &[0x13, 0x14, 0x16, 0x1b, 0x1e, 0x0c];

fn render_ava(ava: Tlv<'_>) -> Result<String, String> {
    if ava.tag != TAG_SEQUENCE {
        return Err("an attribute is not a SEQUENCE".into());
    }
    let (oid, rest) = read_tlv(ava.content)?;
    if oid.tag != TAG_OID {
        return Err("an attribute type is not an OID".into());
    }
    let (value, rest) = read_tlv(rest)?;
    if !rest.is_empty() {
        return Err("trailing data in an attribute".into());
    }
    let dotted = oid_to_dotted(oid.content)?;
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == dotted).map(|(_, k)| *k);
    let mut out = String::new();
    match keyword {
        Some(keyword) if STRING_TAGS.contains(&value.tag) => {
            out.push_str(keyword);
            out.push('=');
            // OpenJDK 17 decodes the content of every string type as UTF-8, replacing
            // malformed sequences with U+FFFD (as `from_utf8_lossy` does).
            escape_value(&String::from_utf8_lossy(value.content), &mut out);
        }
        _ => {
            out.push_str(keyword.unwrap_or(&dotted));
            out.push_str("=#");
            for b in value.whole {
                out.push_str(&format!("{b:02x}"));
            }
        }
    }
    Ok(out)
}

/// Java's escaping: a backslash before each of `,=+<>#;"\` wherever it occurs, NUL as `\00`,
/// then a backslash before every leading and every trailing space or carriage return (counted
/// on the already escaped text, as Java does).
fn escape_value(value: &str, out: &mut String) {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if ",=+<>#;\"\\".contains(c) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.push_str("\\00");
        } else {
            escaped.push(c);
        }
    }
    let chars: Vec<char> = escaped.chars().collect();
    let is_blank = |c: char| c == ' ' || c == '\r';
    let lead = chars.iter().take_while(|c| is_blank(**c)).count();
    let trail_start = chars.len() - chars.iter().rev().take_while(|c| is_blank(**c)).count();
    for (i, c) in chars.iter().enumerate() {
        if i < lead || i >= trail_start {
            out.push('\\');
        }
        out.push(*c);
    }
}

/// One DER element: its (first) tag byte, its content, and the whole encoding.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads one definite-length DER element from the front of `input`.
fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let truncated = || "truncated DER in the subject".to_string();
    let tag = *input.first().ok_or_else(truncated)?;
    let mut pos = 1;
    if tag & 0x1f == 0x1f {
        // High tag number form: base-128 continuation bytes.
        loop {
            let b = *input.get(pos).ok_or_else(truncated)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let first_len = *input.get(pos).ok_or_else(truncated)?;
    pos += 1;
    let len = if first_len & 0x80 == 0 {
        usize::from(first_len)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 {
            return Err("unsupported DER length in the subject".into());
        }
        let mut len = 0usize;
        for _ in 0..n {
            let b = *input.get(pos).ok_or_else(truncated)?;
            pos += 1;
            len = (len << 8) | usize::from(b);
        }
        len
    };
    let end = pos.checked_add(len).ok_or_else(truncated)?;
    if end > input.len() {
        return Err(truncated());
    }
    Ok((
        Tlv {
            tag,
            content: &input[pos..end],
            whole: &input[..end],
        },
        &input[end..],
    ))
}

/// The dotted form of an OID's content octets.
fn oid_to_dotted(content: &[u8]) -> Result<String, String> {
    let mut arcs: Vec<u128> = Vec::new();
    let mut current: u128 = 0;
    let mut in_arc = false;
    for &b in content {
        if !in_arc && b == 0x80 {
            return Err("non-minimal OID encoding in the subject".into());
        }
        current = current
            .checked_mul(128)
            .map(|v| v | u128::from(b & 0x7f))
            .ok_or("an OID arc in the subject is too large")?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(current);
            current = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return Err("truncated OID in the subject".into());
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in &arcs[1..] {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// ssl.principal.mapping.rules
// ---------------------------------------------------------------------------------------------

/// `ssl.principal.mapping.rules`, parsed: a list of rules tried in order, the first that yields
/// a name wins.
#[derive(Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Clone)]
enum Rule {
    /// `DEFAULT`: the DN unchanged.
    Default,
    /// `RULE:<regex>/<replacement>/[L|U]`.
    Replace {
        /// The regex as written (escapes kept), for messages.
        source: String,
        /// The regex, for the replacement pass.
        pattern: Regex,
        /// `^(?:regex)\z`: the rule applies only if the regex matches the whole DN.
        whole: Regex,
        /// The replacement as written (Java replacement syntax).
        replacement: String,
        case: Case,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalMapper {
    /// Parses `ssl.principal.mapping.rules`.
    ///
    /// Kafka's grammar: rules separated by commas (with optional whitespace around them);
    /// each is `DEFAULT` or `RULE:<regex>/<replacement>/` optionally followed by `L` or `U`.
    /// Inside the regex and the replacement a backslash escapes the next character, so `\/` is a
    /// slash that does not end the part; the regex runs to the first unescaped `/`, which is
    /// why it may contain commas. Empty entries (`a,,b`, a trailing comma) are ignored;
    /// anything else is an error, as in Kafka.
    pub fn parse(rules: &str) -> Result<PrincipalMapper, String> {
        // Java's String.trim(): every char up to U+0020.
        let mut rest = rules.trim_matches(|c: char| c <= ' ');
        let mut parsed = Vec::new();
        loop {
            rest = skip_java_space(rest);
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix("DEFAULT")
                && let Some(next) = after_rule(after)
            {
                parsed.push(Rule::Default);
                rest = next;
                continue;
            }
            if let Some(body) = rest.strip_prefix("RULE:")
                && let Some((regex, replacement, case, after)) = scan_rule(body)
            {
                let Some(next) = after_rule(after) else {
                    // `after` is a suffix of `rest`; the regex may hold commas, so the
                    // entry runs to the first comma after the rule, not in `rest`.
                    let tail = until_comma(after);
                    let entry = &rest[..rest.len() - after.len() + tail.len()];
                    return Err(format!(
                        "invalid rule `{entry}` in ssl.principal.mapping.rules: unexpected `{tail}` after the rule"
                    ));
                };
                parsed.push(Rule::replace(regex, replacement, case)?);
                rest = next;
                continue;
            }
            let entry = until_comma(rest);
            if !entry.is_empty() {
                return Err(format!(
                    "invalid rule `{entry}` in ssl.principal.mapping.rules: expected DEFAULT or RULE:<regex>/<replacement>/[L|U]"
                ));
            }
            // An empty entry: skip its comma.
            rest = &rest[1..];
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The mapped name of `dn`, or `None` when no rule yields one (Kafka then fails the
    /// connection). A rule whose replacement is invalid for this DN (a `$n` naming a group its
    /// regex lacks when it has none at all, a dangling `\`) also ends the search with `None`, as
    /// the exception it raises in Kafka does.
    pub fn apply(&self, dn: &str) -> Option<String> {
        match self.map(dn) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::debug!("{e}");
                None
            }
        }
    }

    /// [`apply`](Self::apply) with the reason when there is no name.
    pub fn map(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule.apply(dn) {
                Ok(Some(name)) => return Ok(name),
                Ok(None) => continue,
                Err(e) => {
                    return Err(format!(
                        "failed to map `{dn}` with the SSL principal mapping rule {rule}: {e}"
                    ));
                }
            }
        }
        Err(format!("no rule applies to `{dn}`, rules {self}"))
    }
}

impl Default for PrincipalMapper {
    /// `DEFAULT`: the DN unchanged.
    fn default() -> Self {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }
}

impl fmt::Display for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rule}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for PrincipalMapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrincipalMapper({self})")
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Default => f.write_str("DEFAULT"),
            Rule::Replace {
                source,
                replacement,
                case,
                ..
            } => {
                write!(f, "RULE:{source}/{replacement}/")?;
                match case {
                    Case::Keep => Ok(()),
                    Case::Lower => f.write_str("L"),
                    Case::Upper => f.write_str("U"),
                }
            }
        }
    }
}

/// Java regex `\s`: `[ \t\n\x0B\f\r]`.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
}

fn skip_java_space(s: &str) -> &str {
    s.trim_start_matches(is_java_space)
}

/// After a complete rule: optional whitespace, then a comma (consumed) or the end. `None` if
/// something else follows.
fn after_rule(s: &str) -> Option<&str> {
    let s = skip_java_space(s);
    if s.is_empty() {
        Some(s)
    } else {
        s.strip_prefix(',')
    }
}

/// The text up to the next comma (for messages and empty entries).
fn until_comma(s: &str) -> &str {
    s.split(',')
        .next()
        .unwrap_or("")
        .trim_end_matches(is_java_space)
}

/// Splits `<regex>/<replacement>/[L|U]<rest>`. Each part runs to the first slash not escaped
/// by a backslash; escapes are kept as written (the regex engine and the replacement syntax
/// both read `\/` as a slash). `None` if a part is unterminated.
fn scan_rule(body: &str) -> Option<(&str, &str, Case, &str)> {
    fn part(s: &str) -> Option<(&str, &str)> {
        let mut chars = s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                // An escape takes the next character, whatever it is (but there must be one).
                '\\' => {
                    chars.next()?;
                }
                '/' => return Some((&s[..i], &s[i + 1..])),
                _ => {}
            }
        }
        None
    }
    let (regex, rest) = part(body)?;
    let (replacement, rest) = part(rest)?;
    let (case, rest) = if let Some(r) = rest.strip_prefix('L') {
        (Case::Lower, r)
    } else if let Some(r) = rest.strip_prefix('U') {
        (Case::Upper, r)
    } else {
        (Case::Keep, rest)
    };
    Some((regex, replacement, case, rest))
}

impl Rule {
    fn replace(regex: &str, replacement: &str, case: Case) -> Result<Rule, String> {
        let invalid = |e: regex::Error| {
            format!("invalid regex `{regex}` in ssl.principal.mapping.rules: {e}")
        };
        let pattern = Regex::new(regex).map_err(invalid)?;
        let whole = Regex::new(&format!("^(?:{regex})\\z")).map_err(invalid)?;
        Ok(Rule::Replace {
            source: regex.to_string(),
            pattern,
            whole,
            replacement: replacement.to_string(),
            case,
        })
    }

    /// `Ok(None)`: the rule does not apply; `Err`: it applies but Java would throw.
    fn apply(&self, dn: &str) -> Result<Option<String>, String> {
        let Rule::Replace {
            pattern,
            whole,
            replacement,
            case,
            ..
        } = self
        else {
            return Ok(Some(dn.to_string()));
        };
        if !whole.is_match(dn) {
            return Ok(None);
        }
        let groups = pattern.captures_len() - 1;
        let replacement = escape_literal_back_references(replacement, groups)?;
        let replaced = java_replace_all(pattern, dn, &replacement)?;
        Ok(Some(match case {
            Case::Keep => replaced,
            Case::Lower => replaced.to_lowercase(),
            Case::Upper => replaced.to_uppercase(),
        }))
    }
}

/// Kafka's pre-pass over the replacement: a `$n` whose number (after dropping trailing digits
/// while it is above the group count and at least 10, as Java's parser would) still names a
/// group the regex lacks becomes the literal text `\$n`. References starting with 0 are left
/// alone, and nothing is done when the regex has no groups at all.
///
/// Kafka finds the references in the original text but inserts each backslash at that
/// original position of the already modified text, so from the second insertion on the
/// backslash lands one character earlier per earlier insertion. That is reproduced (on
/// chars, where Java counts UTF-16 units: the same outside the astral planes), because the
/// outcome decides whether a connection is accepted.
fn escape_literal_back_references(replacement: &str, groups: usize) -> Result<String, String> {
    if groups == 0 {
        return Ok(replacement.to_string());
    }
    let original: Vec<char> = replacement.chars().collect();
    let mut value = original.clone();
    let mut i = 0;
    while i < original.len() {
        if original[i] != '$' || !original.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + original[start..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
        i = end;
        if original[start] == '0' {
            continue;
        }
        let digits: String = original[start..end].iter().collect();
        // Java's Integer.parseInt: more than i32::MAX throws, and so fails the connection.
        let mut index: usize = digits
            .parse::<i32>()
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("group reference ${digits} is out of range"))?;
        while index > groups && index >= 10 {
            index /= 10;
        }
        if index > groups {
            let at = (start - 1).min(value.len());
            value.insert(at, '\\');
        }
    }
    Ok(value.into_iter().collect())
}

/// Java's `String.replaceAll(regex, replacement)`: every match, searched as `Matcher.find`
/// does (after an empty match the next search starts one character later; after a non-empty
/// one, at its end, where an empty match may follow), replaced per `appendReplacement`.
fn java_replace_all(pattern: &Regex, text: &str, replacement: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search_from = 0;
    let mut last_empty_at: Option<usize> = None;
    while search_from <= text.len() {
        let mut at = search_from;
        if last_empty_at == Some(at) {
            // Java: after an empty match the next search starts one character on.
            match text[at..].chars().next() {
                Some(c) => at += c.len_utf8(),
                None => break,
            }
        }
        let Some(caps) = pattern.captures_at(text, at) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        out.push_str(&text[copied..m.start()]);
        append_replacement(&caps, pattern, replacement, &mut out)?;
        copied = m.end();
        search_from = m.end();
        last_empty_at = if m.start() == m.end() {
            Some(m.end())
        } else {
            None
        };
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// Java's `Matcher.appendReplacement` syntax: `\x` is a literal `x`; `$n` is group n, taking
/// further digits while the number stays a valid group; `${name}` is a named group; a group
/// that did not participate adds nothing. Anything else after `$`, a missing group, or a
/// trailing `\` or `$` is an error (Java throws).
fn append_replacement(
    caps: &regex::Captures<'_>,
    pattern: &Regex,
    replacement: &str,
    out: &mut String,
) -> Result<(), String> {
    let groups = pattern.captures_len() - 1;
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = chars
                    .get(i + 1)
                    .ok_or("character to be escaped is missing")?;
                out.push(*c);
                i += 2;
            }
            '$' => {
                i += 1;
                let c = *chars
                    .get(i)
                    .ok_or("Illegal group reference: group index is missing")?;
                let text = if c == '{' {
                    i += 1;
                    let name_len = chars[i..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .count();
                    let name: String = chars[i..i + name_len].iter().collect();
                    i += name_len;
                    if name.is_empty() {
                        return Err("named capturing group has 0 length name".into());
                    }
                    if chars.get(i) != Some(&'}') {
                        return Err("named capturing group is missing trailing '}'".into());
                    }
                    i += 1;
                    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                        return Err(format!(
                            "capturing group name {{{name}}} starts with digit character"
                        ));
                    }
                    if !pattern.capture_names().any(|n| n == Some(name.as_str())) {
                        return Err(format!("No group with name {{{name}}}"));
                    }
                    caps.name(&name)
                } else {
                    let mut number = c.to_digit(10).ok_or("Illegal group reference")? as usize;
                    i += 1;
                    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        let longer = number * 10 + d as usize;
                        if longer > groups {
                            break;
                        }
                        number = longer;
                        i += 1;
                    }
                    if number > groups {
                        return Err(format!("No group {number}"));
                    }
                    caps.get(number)
                };
                if let Some(m) = text {
                    out.push_str(m.as_str());
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// DER Names (built by hand, including multi-valued RDNs, unsorted SETs and every string
    /// type) and what `new X500Principal(der).getName()` printed for them on OpenJDK 17.0.15.
    const OPENJDK_17_NAMES: &[(&str, &str, &str)] = &[
        (
            "basic",
            "303b310b3009060355040613025553310d300b060355040a0c0461636d65310c300a060355040b0c03656e67310f300d06035504030c06777269746572",
            "CN=writer,OU=eng,O=acme,C=US",
        ),
        (
            "multi",
            "3036310d300b060355040a0c0461636d653125300806035504030c01613008060355040b13017a300f060a0992268993f22c6401010c0162",
            "CN=a+OU=z+UID=b,O=acme",
        ),
        (
            "escapes",
            "301e311c301a06035504030c13612c622b6322645c653c663e673b683d69236a",
            "CN=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\=i\\#j",
        ),
        (
            "lead_hash",
            "300f310d300b06035504030c0423616263",
            "CN=\\#abc",
        ),
        (
            "spaces",
            "30203110300e06035504030c0720206120622020310c300a060355040b0c03202020",
            "OU=\\ \\ \\ ,CN=\\ \\ a b\\ \\ ",
        ),
        (
            "cr",
            "300f310d300b06035504030c040d20780d",
            "CN=\\\u{d}\\ x\\\u{d}",
        ),
        (
            "email",
            "3022310a300806035504030c01783114301206092a864886f70d01090116056140622e63",
            "1.2.840.113549.1.9.1=#16056140622e63,CN=x",
        ),
        (
            "bmp",
            "300f310d300b06035504031e0400e920ac",
            "CN=\\00\u{fffd} \u{fffd}",
        ),
        (
            "t61",
            "300f310d300b06035504031404636166e9",
            "CN=caf\u{fffd}",
        ),
        (
            "utf8",
            "30153113301106035504030c0a636166c3a920f09f9880",
            "CN=caf\u{e9} \u{1f600}",
        ),
        ("nul", "300e310c300a06035504030c03610062", "CN=a\\00b"),
        ("int", "300c310a30080603550403020101", "CN=#020101"),
        (
            "keywords",
            "30818d31133011060a0992268993f22c6401191603636f6d31173015060a0992268993f22c64011916076578616d706c65310d300b06035504090c044d61696e310d300b06035504070c04546f776e310e300c06035504080c05537461746531123010060a0992268993f22c6401010c027531310c300a06035504051303313233310d300b060355040c0c04626f7373",
            "2.5.4.12=#0c04626f7373,2.5.4.5=#1303313233,UID=u1,ST=State,L=Town,STREET=Main,DC=example,DC=com",
        ),
        ("empty", "3000", ""),
        (
            "univ",
            "300f310d300b06035504031c0400000061",
            "CN=#1c0400000061",
        ),
        (
            "bigoid",
            "301d311b301906146983f09da7ebcfdee0c7a1a7b2c0948cc8f9d7760c0176",
            "2.25.329800735698586629295641978511506172918=#0c0176",
        ),
        (
            "printable_latin",
            "300f310d300b06035504031304636166e9",
            "CN=caf\u{fffd}",
        ),
        ("newline", "300e310c300a06035504030c03610a62", "CN=a\u{a}b"),
        ("general", "300e310c300a06035504031b0367656e", "CN=gen"),
        ("ia5cn", "300e310c300a06035504031603696135", "CN=ia5"),
        (
            "bad_utf8",
            "3011310f300d06035504030c0661fffe62e282",
            "CN=a\u{fffd}\u{fffd}b\u{fffd}",
        ),
        ("tab_lead", "300d310b300906035504030c020978", "CN=\u{9}x"),
        ("emptyval", "300b3109300706035504030c00", "CN="),
        (
            "bmp_surrogate",
            "300f310d300b06035504031e04d83dde00",
            "CN=\u{fffd}\\=\u{fffd}\\00",
        ),
        (
            "oid_3arc",
            "300c310a300806038837030c0176",
            "2.999.3=#0c0176",
        ),
        (
            "unsorted",
            "301d311b300f060a0992268993f22c6401010c0162300806035504030c0161",
            "UID=b+CN=a",
        ),
        (
            "lead_space_hash",
            "300e310c300a06035504030c03202378",
            "CN=\\ \\#x",
        ),
        (
            "trail_cr_sp",
            "300e310c300a06035504030c0378200d",
            "CN=x\\ \\\u{d}",
        ),
        (
            "nul_trail",
            "300e310c300a06035504030c03780020",
            "CN=x\\00\\ ",
        ),
    ];

    #[test]
    fn names_render_as_openjdk_17_does() {
        for (case, der, expected) in OPENJDK_17_NAMES {
            assert_eq!(
                render_name(&unhex(der)).as_deref(),
                Ok(*expected),
                "case {case}"
            );
        }
    }

    enum Outcome {
        Named(&'static str),
        /// Kafka throws while parsing the rules.
        BadRules,
        /// No rule yields a name, or the replacement throws: the connection fails.
        NoName,
    }
    use Outcome::*;

    /// Rules, DN, and what Kafka 3.9's own `SslPrincipalMapper` (compiled from the 3.9.0 source
    /// and run on OpenJDK 17) made of them. The first three are the example of Kafka's
    /// documentation.
    const KAFKA_MAPPINGS: &[(&str, &str, Outcome)] = &[
        (
            r#"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,DEFAULT"#,
            r#"CN=kafka-server1,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown"#,
            Named(r#"kafka-server1"#),
        ),
        (
            r#"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,DEFAULT"#,
            r#"CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US"#,
            Named(r#"duke@javasoft"#),
        ),
        (
            r#"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,DEFAULT"#,
            r#"CN=writer,OU=eng,O=acme,C=US"#,
            Named(r#"CN=writer,OU=eng,O=acme,C=US"#),
        ),
        (
            r#"RULE:^CN=(.*?),OU=(.*?)$/$1/U"#,
            r#"CN=writer,OU=eng"#,
            Named(r#"WRITER"#),
        ),
        (
            r#"RULE:^CN=(.*?),OU=(.*?)$/$1/U"#,
            r#"CN=writer,O=eng"#,
            NoName,
        ),
        (
            r#"RULE:^CN=(.*?)\/x,.*$/$1\/y/"#,
            r#"CN=a/x,O=b"#,
            Named(r#"a/y"#),
        ),
        (
            r#"RULE:^CN=(.*?),O=(.*)$/$1@$3/"#,
            r#"CN=a,O=b"#,
            Named(r#"a@$3"#),
        ),
        (r#"RULE:^CN=(.*)$/$4$5/"#, r#"CN=a"#, NoName),
        (r#"RULE:^CN=(.*)$/$4-$5/"#, r#"CN=a"#, NoName),
        (r#"RULE:^CN=(.*)$/x$4y$5z$6/"#, r#"CN=a"#, NoName),
        (r#"RULE:^CN=(.*)$/$12/"#, r#"CN=a"#, Named(r#"a2"#)),
        (r#"RULE:^CN=a$/$1/"#, r#"CN=a"#, NoName),
        (r#"RULE:^CN=a$/$1/,DEFAULT"#, r#"CN=a"#, NoName),
        (r#"RULE:.*?/x/"#, r#"abc"#, Named(r#"xaxbxcx"#)),
        (r#"RULE:(.*?)/x/"#, r#"abc"#, Named(r#"xaxbxcx"#)),
        (r#"RULE:a*/x/"#, r#"aaa"#, Named(r#"xx"#)),
        (r#"RULE:a*/x/"#, r#""#, Named(r#"x"#)),
        (r#"DEFAULT"#, r#""#, Named(r#""#)),
        (
            r#"RULE:^CN=(?<name>[^,]*),.*$/${name}/"#,
            r#"CN=alice,O=x"#,
            Named(r#"alice"#),
        ),
        (r#"RULE:a/b/Lx"#, r#"a"#, BadRules),
        (r#"DEFAULTX"#, r#"a"#, BadRules),
        (r#"default"#, r#"a"#, BadRules),
        (r#"RULE:abc"#, r#"a"#, BadRules),
        (r#"RULE:a/b"#, r#"a"#, BadRules),
        (r#",DEFAULT,,"#, r#"a"#, Named(r#"a"#)),
        (
            r#"  DEFAULT  ,  RULE:^CN=(.*)$/$1/  "#,
            r#"CN=x"#,
            Named(r#"CN=x"#),
        ),
        (
            r#"  RULE:^CN=(.*)$/$1/  ,DEFAULT"#,
            r#"CN=x"#,
            Named(r#"x"#),
        ),
        (r#""#, r#"a"#, NoName),
        (r#"RULE:^(.*)$/\$1/"#, r#"abc"#, Named(r#"$1"#)),
        (r#"RULE:^(.*)$/$0/"#, r#"abc"#, Named(r#"abc"#)),
        (r#"RULE:^(.*)$/a\\/"#, r#"abc"#, Named(r#"a\"#)),
        (
            r#"RULE:^CN=([^,]*),.*$/$1/L"#,
            r#"CN=İSTANBUL Ω,O=x"#,
            Named(r#"i̇stanbul ω"#),
        ),
        (
            r#"RULE:^CN=([^,]+),O=acme$/$1/"#,
            r#"CN=bob,O=acme"#,
            Named(r#"bob"#),
        ),
        (
            r#"RULE:(?i)^cn=(.*?),.*$/$1/"#,
            r#"CN=Bob,O=acme"#,
            Named(r#"Bob"#),
        ),
        (r#"RULE:^(.*)$/$a/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/${x}/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/$99999999999/"#, r#"abc"#, NoName),
        (r#"RULE:CN=a/x/,DEFAULT"#, r#"CN=ab"#, Named(r#"CN=ab"#)),
        (r#"RULE:b/X/"#, r#"b"#, Named(r#"X"#)),
        (
            r#"RULE:(a|ab)(c|bcd)(d*)/[$1-$2-$3]/"#,
            r#"abcd"#,
            Named(r#"[a-bcd-]"#),
        ),
        (r#"RULE:(a)|(b)/[$1|$2]/"#, r#"b"#, Named(r#"[|b]"#)),
        (r#"RULE:^CN=(.*)$/$1/ L"#, r#"CN=x"#, BadRules),
        (r#"RULE:^CN=(.*)$/$1/U,RULE:x/y/"#, r#"CN=x"#, Named(r#"X"#)),
        (r#"RULE:^CN=(.*)$/$1/,"#, r#"CN=x"#, Named(r#"x"#)),
        (r#"RULE:^(.*)$/$/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/a\/"#, r#"abc"#, BadRules),
        (r#"RULE:^.*$/$10/"#, r#"abc"#, NoName),
        (
            r#"RULE:^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)$/$10$11$1/"#,
            r#"abcdefghij"#,
            Named(r#"ja1a"#),
        ),
        (r#"RULE:[ab]/X/"#, r#"a"#, Named(r#"X"#)),
        (r#"RULE:x\,y/z/"#, r#"x,y"#, Named(r#"z"#)),
        (r#"RULE:^CN=(.*)$/$1/U,junk"#, r#"CN=x"#, BadRules),
        (r#"RULE:^(.*)$/${1a}/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/${}/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/${name/"#, r#"abc"#, NoName),
        (r#"RULE:^(.*)$/$01/"#, r#"abc"#, Named(r#"abc"#)),
        (r#"RULE:^(.*)$/é$1é/U"#, r#"abc"#, Named(r#"ÉABCÉ"#)),
    ];

    #[test]
    fn mapping_matches_kafka() {
        for (rules, dn, expected) in KAFKA_MAPPINGS {
            let parsed = PrincipalMapper::parse(rules);
            match expected {
                BadRules => assert!(parsed.is_err(), "rules {rules:?} should be refused"),
                Named(name) => {
                    let mapper = parsed.unwrap_or_else(|e| panic!("rules {rules:?}: {e}"));
                    assert_eq!(
                        mapper.map(dn).as_deref(),
                        Ok(*name),
                        "rules {rules:?}, dn {dn:?}"
                    );
                    assert_eq!(mapper.apply(dn).as_deref(), Some(*name));
                }
                NoName => {
                    let mapper = parsed.unwrap_or_else(|e| panic!("rules {rules:?}: {e}"));
                    assert!(mapper.map(dn).is_err(), "rules {rules:?}, dn {dn:?}");
                    assert_eq!(mapper.apply(dn), None);
                }
            }
        }
    }

    #[test]
    fn a_newline_is_not_a_rule_separator() {
        // Kafka's splitter, whose `.` stops at line ends, quietly drops or merges entries
        // around a raw newline; here the value is refused at startup instead.
        assert!(PrincipalMapper::parse("RULE:x/y/\nDEFAULT").is_err());
        assert!(PrincipalMapper::parse("DEFAULT\nDEFAULT").is_err());
        // Newlines as whitespace around commas are fine, as in Kafka.
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/\n,\nDEFAULT").unwrap();
        assert_eq!(mapper.apply("CN=a").as_deref(), Some("a"));
    }

    /// Rules assembled at random from the grammar's pieces: parsing and mapping may refuse
    /// them, but never panic.
    #[test]
    fn random_rules_never_panic() {
        const PIECES: &[&str] = &[
            "RULE:", "DEFAULT", "/", "\\", ",", "$", "$1", "$12", "${n}", "(", ")", "(?<n>", ".*",
            "?", "a", "L", "U", " ", "\n", "{", "}", "é", "^", "\\z", "CN=", "[", "]",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let mut rules = String::new();
            for _ in 0..next(12) {
                rules.push_str(PIECES[next(PIECES.len())]);
            }
            if let Ok(mapper) = PrincipalMapper::parse(&rules) {
                for dn in ["", "a", "CN=a,O=b", "CN=é\\,x", "aaa"] {
                    let _ = mapper.map(dn);
                }
            }
        }
    }

    #[test]
    fn junk_after_a_rule_whose_regex_has_a_comma() {
        let err = PrincipalMapper::parse("RULE:a,b/c/Lxxxxxxxxxxxxxxxx,DEFAULT").unwrap_err();
        assert!(
            err.contains("`RULE:a,b/c/Lxxxxxxxxxxxxxxxx`") && err.contains("`xxxxxxxxxxxxxxxx`"),
            "{err}"
        );
    }

    #[test]
    fn rules_java_regex_features_rust_lacks_are_refused() {
        let err = PrincipalMapper::parse("RULE:^CN=(?=x).*$/$1/").unwrap_err();
        assert!(err.contains("invalid regex"), "{err}");
    }

    #[test]
    fn mapper_prints_its_rules() {
        let mapper = PrincipalMapper::parse(r"RULE:^CN=(.*?)\/x$/$1/L, DEFAULT").unwrap();
        assert_eq!(mapper.to_string(), r"[RULE:^CN=(.*?)\/x$/$1/L, DEFAULT]");
        let err = PrincipalMapper::parse("RULE:^CN=a$/b/")
            .unwrap()
            .map("CN=c")
            .unwrap_err();
        assert!(
            err.contains("CN=c") && err.contains("RULE:^CN=a$/b/"),
            "{err}"
        );
    }

    fn certificate(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in dn {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn distinguished_name_of_a_certificate() {
        use rcgen::DnType;
        let der = certificate(&[
            (DnType::CountryName, "US"),
            (DnType::OrganizationName, "acme"),
            (DnType::OrganizationalUnitName, "eng"),
            (DnType::CommonName, "writer"),
        ]);
        assert_eq!(
            distinguished_name(&der).as_deref(),
            Ok("CN=writer,OU=eng,O=acme,C=US")
        );
    }

    #[test]
    fn principal_of_a_peer() {
        use rcgen::DnType;
        let der = CertificateDer::from(certificate(&[
            (DnType::OrganizationName, "acme"),
            (DnType::CommonName, "writer"),
        ]));
        let default = PrincipalMapper::default();
        assert_eq!(
            ssl_principal(None, &default),
            Ok(KafkaPrincipal::anonymous())
        );
        assert_eq!(
            ssl_principal(Some(&[]), &default),
            Ok(KafkaPrincipal::anonymous())
        );
        let certs = [der];
        assert_eq!(
            ssl_principal(Some(&certs), &default),
            Ok(KafkaPrincipal::user("CN=writer,O=acme"))
        );
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*?),O=(.*)$/$1@$2/U").unwrap();
        assert_eq!(
            ssl_principal(Some(&certs), &mapper).map(|p| p.to_string()),
            Ok("User:WRITER@ACME".to_string())
        );
        // No rule applies: the principal cannot be built and the connection must fail.
        let mapper = PrincipalMapper::parse("RULE:^CN=reader,.*$/r/").unwrap();
        let err = ssl_principal(Some(&certs), &mapper).unwrap_err();
        assert!(err.contains("CN=writer,O=acme"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(distinguished_name(b"").is_err());
        assert!(distinguished_name(b"not a certificate").is_err());
        let certs = [CertificateDer::from(b"\x30\x03\x02\x01\x01".to_vec())];
        assert!(ssl_principal(Some(&certs), &PrincipalMapper::default()).is_err());
        // Every truncation and every single-byte corruption of a valid Name.
        let name = unhex(OPENJDK_17_NAMES[1].1);
        for len in 0..name.len() {
            assert!(render_name(&name[..len]).is_err(), "prefix {len}");
        }
        for i in 0..name.len() {
            for b in [0x00, 0x7f, 0x80, 0xff] {
                let mut bad = name.clone();
                bad[i] = b;
                let _ = render_name(&bad);
            }
        }
        assert!(oid_to_dotted(&[0x2a, 0x86]).is_err());
        assert!(oid_to_dotted(&[0x80, 0x01]).is_err());
        assert!(oid_to_dotted(&[0xff; 30]).is_err());
    }
}
