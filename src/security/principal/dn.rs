//! A DER `Name` rendered as Java's `X500Principal.getName()` does (RFC 2253), byte for byte as
//! OpenJDK 17 prints it: the string Kafka's ACLs and quotas are keyed on.

/// Renders a DER `Name` (SEQUENCE OF RelativeDistinguishedName) as Java does: RDNs most
/// specific first (reverse of the DER order) joined by `,`; the AVAs of a multi-valued RDN in
/// their DER order joined by `+`.
pub(super) fn render_name(name_der: &[u8]) -> Result<String, String> {
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

    #[test]
    fn malformed_names_are_errors_not_panics() {
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
