//! `sasl.jaas.config` values, read as Kafka's `JaasConfig` reads them.
//!
//! Java configures SASL through JAAS "login modules". Kafka lets a broker or client give the
//! module inline, as a config value:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";
//! ```
//!
//! that is `<class> <flag> [<key>=<value>]... ;`, once or more. For the broker, a PLAIN entry's
//! `user_<name>` options are the users it accepts, and `username`/`password` are the
//! credentials it uses itself when it connects to other brokers.
//!
//! Kafka tokenizes the value with Java's `StreamTokenizer`, and the quirks of that tokenizer
//! are part of the format, so this module reproduces them: whitespace is any character up to
//! space; `//`, `/* */` and a lone `/` start comments; values are either quoted (`"` or `'`, with
//! C-style escapes, ending at the closing quote or the end of the line) or bare words (a letter,
//! `_`, `$` or non-ASCII character, then letters, digits, `.`, `-`, `_`, `$`...); a bare value
//! that starts like a number (`8192`, `-1`, `.5`) is read as a number, which Kafka rejects, so
//! numbers must be quoted.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// How a module's success or failure counts (JAAS control flags). The broker keeps the flag for
/// completeness; with one module per mechanism, as Kafka brokers have, it does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    Required,
    Requisite,
    Sufficient,
    Optional,
}

impl ControlFlag {
    /// Case-insensitive, as Kafka upper-cases the flag before matching.
    pub fn from_name(name: &str) -> Option<ControlFlag> {
        match name.to_uppercase().as_str() {
            "REQUIRED" => Some(ControlFlag::Required),
            "REQUISITE" => Some(ControlFlag::Requisite),
            "SUFFICIENT" => Some(ControlFlag::Sufficient),
            "OPTIONAL" => Some(ControlFlag::Optional),
            _ => None,
        }
    }
}

/// One `<class> <flag> options... ;` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginModule {
    pub class: String,
    pub flag: ControlFlag,
    pub options: BTreeMap<String, String>,
}

// Options hold passwords: show their names only.
impl fmt::Debug for LoginModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginModule")
            .field("class", &self.class)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A parsed `sasl.jaas.config` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    pub modules: Vec<LoginModule>,
}

impl JaasConfig {
    pub fn parse(text: &str) -> Result<JaasConfig, String> {
        let mut tokens = Tokenizer::new(text);
        let mut modules = Vec::new();
        while let Some(first) = tokens.next_token() {
            modules.push(parse_module(first, &mut tokens)?);
        }
        if modules.is_empty() {
            return Err("Login module not specified in JAAS config".into());
        }
        Ok(JaasConfig { modules })
    }

    /// The first value of option `key` among the modules, in order.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.modules
            .iter()
            .find_map(|m| m.options.get(key).map(String::as_str))
    }

    /// The users a PLAIN listener accepts: `user_<name>="<password>"` options of the
    /// `PlainLoginModule` entries (other modules' options do not count, as in Kafka; the first
    /// entry naming a user wins).
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        let mut users = BTreeMap::new();
        for module in self
            .modules
            .iter()
            .filter(|m| m.class == PLAIN_LOGIN_MODULE)
        {
            for (key, password) in &module.options {
                if let Some(user) = key.strip_prefix("user_").filter(|u| !u.is_empty()) {
                    users
                        .entry(user.to_string())
                        .or_insert_with(|| password.clone());
                }
            }
        }
        users
    }

    /// The `username` option: who the broker is when it authenticates to other brokers.
    pub fn username(&self) -> Option<&str> {
        self.option("username")
    }

    /// The `password` option that goes with [`username`](JaasConfig::username).
    pub fn password(&self) -> Option<&str> {
        self.option("password")
    }
}

impl FromStr for JaasConfig {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        JaasConfig::parse(text)
    }
}

fn parse_module(first: Token, tokens: &mut Tokenizer) -> Result<LoginModule, String> {
    let class = first
        .text()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("Login module class name expected in JAAS config, found {first}"))?;
    let flag_token = tokens
        .next_token()
        .ok_or("Login module control flag not specified in JAAS config")?;
    let flag_name = flag_token
        .text()
        .ok_or("Login module control flag is not available in the JAAS config")?;
    let flag = ControlFlag::from_name(&flag_name)
        .ok_or_else(|| format!("Invalid login module control flag '{flag_name}' in JAAS config"))?;
    let mut options = BTreeMap::new();
    loop {
        let token = match tokens.next_token() {
            None => return Err("JAAS config entry not terminated by semi-colon".into()),
            Some(Token::Char(';')) => break,
            Some(token) => token,
        };
        // Kafka would take a number or a symbol here as a null key; no sensible config has one.
        let key = token
            .text()
            .ok_or_else(|| format!("Option name expected in JAAS config, found {token}"))?;
        let value = match (tokens.next_token(), tokens.next_token()) {
            (Some(Token::Char('=')), Some(value)) => value.text(),
            _ => None,
        }
        .ok_or_else(|| format!("Value not specified for key '{key}' in JAAS config"))?;
        options.insert(key, value);
    }
    Ok(LoginModule {
        class,
        flag,
        options,
    })
}

/// What Java's `StreamTokenizer` returns, as far as JAAS parsing needs it.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    /// A number; its value is of no use to JAAS parsing (Kafka rejects numbers).
    Number,
    /// Any other single character: `=`, `;`, and everything that is not part of a word.
    Char(char),
}

impl Token {
    /// The string value, which only words and quoted strings have (Java's `sval`).
    fn text(&self) -> Option<String> {
        match self {
            Token::Word(s) | Token::Quoted(s) => Some(s.clone()),
            Token::Number | Token::Char(_) => None,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(s) => write!(f, "'{s}'"),
            Token::Quoted(_) => f.write_str("a quoted string"),
            Token::Number => f.write_str("a number"),
            Token::Char(c) => write!(f, "'{c}'"),
        }
    }
}

fn is_whitespace(c: char) -> bool {
    c <= ' '
}

/// Characters that start a number (and may continue a word).
fn is_numeric(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == '-'
}

/// Characters that start a word: StreamTokenizer's defaults (ASCII letters, U+00A0..U+00FF and
/// everything above U+00FF) plus the `_` and `$` Kafka adds. Kafka also adds `-`, but a `-`
/// is tried as a number first.
fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c >= '\u{a0}' || c == '_' || c == '$'
}

fn is_word_part(c: char) -> bool {
    is_word_start(c) || is_numeric(c)
}

struct Tokenizer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> Tokenizer<'a> {
    fn new(text: &'a str) -> Self {
        Tokenizer {
            chars: text.chars().peekable(),
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        loop {
            let c = self.chars.next()?;
            if is_whitespace(c) {
                continue;
            }
            if is_numeric(c) {
                if c == '-'
                    && !self
                        .chars
                        .peek()
                        .is_some_and(|&n| n == '.' || n.is_ascii_digit())
                {
                    return Some(Token::Char('-'));
                }
                self.skip_number(c);
                return Some(Token::Number);
            }
            if is_word_start(c) {
                let mut word = String::from(c);
                while let Some(&n) = self.chars.peek().filter(|&&n| is_word_part(n)) {
                    word.push(n);
                    self.chars.next();
                }
                return Some(Token::Word(word));
            }
            if c == '"' || c == '\'' {
                return Some(Token::Quoted(self.quoted(c)));
            }
            if c == '/' {
                match self.chars.peek() {
                    Some('*') => {
                        self.chars.next();
                        self.skip_block_comment();
                    }
                    // `//` and, since Java's tokenizer has `/` as its comment character, a lone
                    // `/` too: the rest of the line is a comment.
                    _ => self.skip_line(),
                }
                continue;
            }
            return Some(Token::Char(c));
        }
    }

    /// Digits with at most one `.`, after a first character that was a digit, `.` or `-`.
    fn skip_number(&mut self, first: char) {
        let mut seen_dot = first == '.';
        while let Some(&c) = self.chars.peek() {
            if c.is_ascii_digit() || (c == '.' && !seen_dot) {
                seen_dot |= c == '.';
                self.chars.next();
            } else {
                break;
            }
        }
    }

    fn skip_line(&mut self) {
        while self.chars.next_if(|&c| c != '\n' && c != '\r').is_some() {}
    }

    fn skip_block_comment(&mut self) {
        let mut previous = '\0';
        for c in self.chars.by_ref() {
            if previous == '*' && c == '/' {
                return;
            }
            previous = c;
        }
    }

    /// A quoted string after its opening `quote`: up to the closing quote, the end of the line
    /// or the end of the text, with Java's escapes.
    fn quoted(&mut self, quote: char) -> String {
        let mut out = String::new();
        while let Some(c) = self.chars.next_if(|&c| c != '\n' && c != '\r') {
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(escaped) = self.chars.next() else {
                break;
            };
            match escaped {
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\u{b}'),
                '0'..='7' => {
                    // Up to three octal digits, and only two if the first is above 3 (so the
                    // value fits a byte).
                    let max_digits = if escaped <= '3' { 3 } else { 2 };
                    let mut value = escaped.to_digit(8).unwrap_or(0);
                    for _ in 1..max_digits {
                        match self.chars.peek().and_then(|d| d.to_digit(8)) {
                            Some(digit) => {
                                value = value * 8 + digit;
                                self.chars.next();
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                // `\"`, `\\` and any other escaped character stand for themselves.
                other => out.push(other),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_example() {
        let config = JaasConfig::parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(config.modules.len(), 1);
        let module = &config.modules[0];
        assert_eq!(module.class, PLAIN_LOGIN_MODULE);
        assert_eq!(module.flag, ControlFlag::Required);
        assert_eq!(
            module.options,
            options(&[
                ("username", "admin"),
                ("password", "admin-secret"),
                ("user_admin", "admin-secret"),
                ("user_alice", "alice-secret"),
            ])
        );
        assert_eq!(config.username(), Some("admin"));
        assert_eq!(config.password(), Some("admin-secret"));
        assert_eq!(
            config.plain_users(),
            options(&[("admin", "admin-secret"), ("alice", "alice-secret")])
        );
    }

    #[test]
    fn scram_module_without_options() {
        let config: JaasConfig =
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                .parse()
                .unwrap();
        assert_eq!(config.modules[0].class, SCRAM_LOGIN_MODULE);
        assert!(config.modules[0].options.is_empty());
        assert_eq!(config.username(), None);
        assert!(config.plain_users().is_empty());

        let client = JaasConfig::parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"alice-secret\";",
        )
        .unwrap();
        assert_eq!(client.username(), Some("alice"));
        assert_eq!(client.password(), Some("alice-secret"));
    }

    #[test]
    fn only_plain_modules_define_plain_users() {
        let config = JaasConfig::parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required user_eve=\"x\";\n\
             org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"first\" user_=\"nameless\";\n\
             org.apache.kafka.common.security.plain.PlainLoginModule optional user_bob=\"second\" user_carol=\"c\";",
        )
        .unwrap();
        assert_eq!(config.modules.len(), 3);
        assert_eq!(config.modules[2].flag, ControlFlag::Optional);
        assert_eq!(
            config.plain_users(),
            options(&[("bob", "first"), ("carol", "c")])
        );
    }

    #[test]
    fn quoted_values() {
        let config = JaasConfig::parse(
            r#"Module required a="with space" b="semi;colon" c="esc\"aped\\" d='single "q"' e="tab\there" f="\101\0619" g="" h="é";"#,
        )
        .unwrap();
        assert_eq!(
            config.modules[0].options,
            options(&[
                ("a", "with space"),
                ("b", "semi;colon"),
                ("c", "esc\"aped\\"),
                ("d", "single \"q\""),
                ("e", "tab\there"),
                ("f", "A19"),
                ("g", ""),
                ("h", "é"),
            ])
        );
    }

    #[test]
    fn bare_values_flags_and_layout() {
        let config = JaasConfig::parse(
            "  com.example.Login   REQUISITE\n\tdebug=true path=a.b-c_d$e key=\"8192\" // a comment\n /* block ; */ x = y ;\
             Other Sufficient;",
        )
        .unwrap();
        assert_eq!(config.modules[0].class, "com.example.Login");
        assert_eq!(config.modules[0].flag, ControlFlag::Requisite);
        assert_eq!(
            config.modules[0].options,
            options(&[
                ("debug", "true"),
                ("path", "a.b-c_d$e"),
                ("key", "8192"),
                ("x", "y")
            ])
        );
        assert_eq!(config.modules[1].flag, ControlFlag::Sufficient);
        // The last duplicate wins.
        let config = JaasConfig::parse("M required k=\"1\" k=\"2\";").unwrap();
        assert_eq!(config.option("k"), Some("2"));
    }

    #[test]
    fn errors() {
        let cases = [
            ("", "Login module not specified in JAAS config"),
            (
                "   // only a comment",
                "Login module not specified in JAAS config",
            ),
            (
                "M",
                "Login module control flag not specified in JAAS config",
            ),
            (
                "M required",
                "JAAS config entry not terminated by semi-colon",
            ),
            (
                "M required a=\"b\"",
                "JAAS config entry not terminated by semi-colon",
            ),
            (
                "M required a=\"b;",
                "JAAS config entry not terminated by semi-colon",
            ),
            (
                "M mandatory;",
                "Invalid login module control flag 'mandatory' in JAAS config",
            ),
            (
                "M ;",
                "Login module control flag is not available in the JAAS config",
            ),
            (
                "M required a;",
                "Value not specified for key 'a' in JAAS config",
            ),
            (
                "M required a=;",
                "Value not specified for key 'a' in JAAS config",
            ),
            (
                "M required a=",
                "Value not specified for key 'a' in JAAS config",
            ),
            (
                "M required iterations=8192;",
                "Value not specified for key 'iterations' in JAAS config",
            ),
            (
                "M required a=-x;",
                "Value not specified for key 'a' in JAAS config",
            ),
            (
                "M required a=b@c;",
                "Option name expected in JAAS config, found '@'",
            ),
            (
                "M required =b;",
                "Option name expected in JAAS config, found '='",
            ),
            (
                "= required;",
                "Login module class name expected in JAAS config, found '='",
            ),
            (
                "\"\" required;",
                "Login module class name expected in JAAS config, found a quoted string",
            ),
            (
                "M required; N",
                "Login module control flag not specified in JAAS config",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(
                JaasConfig::parse(text),
                Err(message.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            "\\",
            "\"",
            "'",
            "/*",
            "/",
            "-",
            ".",
            "-.",
            "M required a=\"\\",
            "M required a=\"\\7",
            "\u{0}\u{1}\u{7f}\u{80}",
            "M R a=\"\u{fffd}\";",
            "M required a=\"\\477\";",
        ];
        for text in odd {
            let _ = JaasConfig::parse(text);
        }
        // An octal escape above 3 takes two digits: \477 is '\47' then '7'.
        let config = JaasConfig::parse("M required a=\"\\477\";").unwrap();
        assert_eq!(config.option("a"), Some("'7"));
    }

    #[test]
    fn debug_hides_option_values() {
        let config = JaasConfig::parse("M required password=\"hunter2\";").unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("password"));
        assert!(!shown.contains("hunter2"));
    }
}
