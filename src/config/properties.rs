//! Reading properties: Java `.properties` text as `java.util.Properties` reads it, the
//! `--override key=value` arguments on top, and typed access to the values with Kafka's
//! trimming and range checks. Separate from what the keys mean (`broker`, `topic`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::defs;
use super::keys::is_read;
use super::{BrokerConfig, ConfigError};

pub(super) fn parse<T>(key: &str, value: &str, min: Option<T>) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let bad = |reason: String| ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    let v: T = value
        .trim()
        .parse()
        .map_err(|_| bad("not a number in range".into()))?;
    if let Some(min) = min
        && v < min
    {
        return Err(bad(format!("must be at least {min}")));
    }
    Ok(v)
}

pub(super) fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Typed access to the properties; every value is trimmed first, as Kafka's `ConfigDef` does.
pub(super) struct Props<'a>(pub(super) &'a BTreeMap<String, String>);

impl<'a> Props<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&'a str> {
        // A key read here without a row in `defs` would have no default there and be reported
        // as unknown.
        debug_assert!(is_read(key), "{key} is read but has no row in config::defs");
        self.0.get(key).map(|v| v.trim())
    }

    /// The key's value, or its default from the definition table (`defs::broker_default`).
    pub(super) fn num<T>(&self, key: &str, min: Option<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        parse(key, self.get_or_default(key)?, min)
    }

    /// For the few keys whose default is another key's value (Kafka 2.4's `advertised.port`).
    pub(super) fn num_or<T>(&self, key: &str, min: Option<T>, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        self.get(key).map_or(Ok(default), |v| parse(key, v, min))
    }

    /// A Kafka int or long that we keep unsigned: `min` must be at least 0.
    pub(super) fn unsigned<T, U>(&self, key: &str, min: T) -> Result<U, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
        U: TryFrom<T>,
    {
        let v = self.num(key, Some(min))?;
        U::try_from(v).map_err(|_| invalid(key, &v.to_string(), "out of range"))
    }

    pub(super) fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        let v = self.get_or_default(key)?;
        // Kafka accepts either case.
        if v.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(invalid(key, v, "must be true or false"))
        }
    }

    /// The value, else the default in the definition table. A key read this way without a
    /// default there is a mistake in this crate, reported rather than guessed at.
    pub(super) fn get_or_default(&self, key: &str) -> Result<&'a str, ConfigError> {
        match self.get(key) {
            Some(v) => Ok(v),
            None => defs::broker_default(key)
                .ok_or_else(|| invalid(key, "", "no default in the broker definition table")),
        }
    }
}

pub(super) fn csv(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl BrokerConfig {
    /// Reads a Java `.properties` file (if any), then applies `--override key=value` arguments,
    /// which win, and builds the configuration from the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut props = match path {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        for o in overrides {
            let (key, value) = o
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| invalid("--override", o, "expected key=value"))?;
            props.insert(key.trim().to_string(), value.trim().to_string());
        }
        Self::from_properties(&props)
    }
}

/// A Java `.properties` file: `server.properties`, or a client's (a tool's `--command-config`).
pub fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_error = |reason: String| invalid("config file", &path.display().to_string(), reason);
    let bytes = std::fs::read(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
    // Java reads .properties as ISO-8859-1; UTF-8 is what files are written in today, so use it
    // when the file is valid UTF-8 and fall back to Java's reading otherwise.
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect());
    Ok(parse_properties(&text)
        .map_err(file_error)?
        .into_iter()
        .collect())
}

/// Whitespace as `java.util.Properties` counts it.
const PROPERTIES_WS: [char; 3] = [' ', '\t', '\x0c'];

/// Parses `.properties` text as `java.util.Properties.load` does: `#` and `!` comment lines,
/// `key=value`, `key:value` and `key value`, a backslash at the end of a line continues it, and
/// `\t \n \r \f \uXXXX` escapes (any other escaped character stands for itself). Later
/// duplicates win when collected into a map. Values are not trimmed here; readers trim them.
fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = text.split('\n').enumerate();
    let mut entries = Vec::new();
    while let Some((index, line)) = lines.next() {
        let line = line.trim_start_matches(PROPERTIES_WS);
        // A comment never continues onto the next line, even if it ends with a backslash.
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = line.to_string();
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(PROPERTIES_WS)),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let at_line = |e: String| format!("line {}: {e}", index + 1);
        entries.push((
            unescape(key).map_err(at_line)?,
            unescape(value).map_err(at_line)?,
        ));
    }
    Ok(entries)
}

/// An odd number of trailing backslashes: the last one is not itself escaped.
fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the value starts after the
/// whitespace and at most one `=` or `:` that follow it.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    let mut has_separator = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            end = i;
            has_separator = true;
            break;
        }
        if !escaped && PROPERTIES_WS.contains(&c) {
            end = i;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let key = &line[..end];
    let mut rest = line[end..].trim_start_matches(PROPERTIES_WS);
    if has_separator {
        rest = rest[1..].trim_start_matches(PROPERTIES_WS);
    } else if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches(PROPERTIES_WS);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let unit = hex4(&mut chars)?;
                // Java strings are UTF-16: a character outside the BMP is two escapes.
                let code = if (0xD800..0xDC00).contains(&unit) {
                    let low = match (chars.next(), chars.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut chars)?,
                        _ => return Err("unpaired \\u surrogate".into()),
                    };
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err("unpaired \\u surrogate".into());
                    }
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                out.push(char::from_u32(code).ok_or("unpaired \\u surrogate")?);
            }
            Some(other) => out.push(other),
            // A backslash ending the file continues nothing; Java drops it.
            None => {}
        }
    }
    Ok(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, String> {
    let digits: String = chars.by_ref().take(4).collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("malformed \\u escape \\u{digits}"));
    }
    u32::from_str_radix(&digits, 16).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_properties(text).expect("valid properties")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn properties_follow_java_rules() {
        assert_eq!(
            parsed("a=1\nb:2\nc 3\nd = = 4\ne\t:\t5 \nf\n"),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "= 4"),
                pair("e", "5 "),
                pair("f", "")
            ]
        );
        // Continuations drop the next line's leading blanks; an escaped backslash does not continue.
        assert_eq!(
            parsed("a=x\\\n   y\\\n\nb=c:\\\\\nd=e"),
            vec![pair("a", "xy"), pair("b", "c:\\"), pair("d", "e")]
        );
        // Comment lines (even ending in a backslash) and blank lines are skipped.
        assert_eq!(
            parsed("  # x\\\n! y\n\n\t\nk=v\r\nl=w\rm=z"),
            vec![pair("k", "v"), pair("l", "w"), pair("m", "z")]
        );
        assert_eq!(
            parsed("k\\:e\\ y=t\\tab\\u00e9\\ud83d\\ude00\\q"),
            vec![pair("k:e y", "t\tab\u{e9}\u{1f600}q")]
        );
        assert!(parse_properties("a=\\u00zz").is_err());
        assert!(parse_properties("a=\\ud83d").is_err());
        assert!(parse_properties("a=\\u12").is_err());
    }
}
