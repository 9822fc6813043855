//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka implements them.
//!
//! SCRAM proves that both ends know a password without sending it. The server never stores the
//! password either, only what it needs to check a proof:
//!
//! ```text
//! SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)      (RFC 5802's Hi)
//! ClientKey      = HMAC(SaltedPassword, "Client Key")
//! StoredKey      = H(ClientKey)                                   stored
//! ServerKey      = HMAC(SaltedPassword, "Server Key")             stored
//! ```
//!
//! Four messages go back and forth:
//!
//! ```text
//! C: client-first   n,,n=<user>,r=<client nonce>
//! S: server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! C: client-final   c=biws,r=<both nonces>,p=<base64 ClientProof>
//! S: server-final   v=<base64 ServerSignature>
//! ```
//!
//! Both sides sign the same AuthMessage (client-first without its `n,,` header, server-first and
//! client-final without the proof, joined by commas). The client sends
//! `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`; the server recovers ClientKey by
//! XORing again and checks that its hash is StoredKey. It answers with
//! `HMAC(ServerKey, AuthMessage)`, which only a holder of the stored keys can compute, so the
//! client knows it talked to the real server. Only the client and credential generation pay for
//! PBKDF2; the server's check is three HMAC/hash operations, so a broker can authenticate
//! thousands of connections a second whatever the iteration count.
//!
//! Kafka departs from the RFC in small ways that clients rely on, and this module follows
//! Kafka: no SASLprep (passwords are their UTF-8 bytes), no channel binding (the `c=` value is
//! decoded but not checked), the final nonce only has to *end with* the server's nonce, the
//! reserved `m=` attribute is accepted and ignored, failures are never reported with `e=`, and the
//! only recognised extension is `tokenauth` (delegation tokens).
//!
//! Credentials live in ZooKeeper under `/config/users/<user>` as
//! `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>` ([`ScramCredential`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::credentials::CredentialCache;
use super::delegation_token::{DelegationTokenCache, now_ms};
use super::sasl::{AuthError, Mechanism, Step};

/// The fewest iterations Kafka accepts for either mechanism, when storing a credential and when
/// authenticating with one.
pub const MIN_ITERATIONS: u32 = 4096;

/// The most iterations Kafka accepts when credentials are written through
/// AlterUserScramCredentials. Credentials written to ZooKeeper directly are not bounded.
pub const MAX_ITERATIONS: u32 = 16384;

/// The most iterations our client agrees to compute. Kafka's client has no bound; we keep one
/// so that a hostile server cannot make a broker spin for minutes, set far above what anyone
/// configures (Kafka's own tools default to 4096 and its API caps at 16384).
pub const MAX_CLIENT_ITERATIONS: u32 = 1 << 20;

/// Java's `Base64.getDecoder()`, which Kafka uses for every Base64 it reads: the standard
/// alphabet, padding optional (but correct if present), unused trailing bits ignored.
const JAVA_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------------------------
// Hash functions

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn of(mechanism: Mechanism) -> Option<Hash> {
        match mechanism {
            Mechanism::ScramSha256 => Some(Hash::Sha256),
            Mechanism::ScramSha512 => Some(Hash::Sha512),
            Mechanism::Plain => None,
        }
    }

    fn of_scram(mechanism: Mechanism) -> Result<Hash, String> {
        Hash::of(mechanism).ok_or_else(|| format!("{mechanism} is not a SCRAM mechanism"))
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data),
            Hash::Sha512 => hmac_with::<Hmac<Sha512>>(key, data),
        }
    }

    /// RFC 5802's Hi(), which is PBKDF2 with HMAC-H and one hash-length block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Hash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes long keys and pads short ones: every key length is valid, so this never
    // takes the error branch.
    let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

// ---------------------------------------------------------------------------------------------
// Random strings

/// A 130-bit random number written in base 36, as Kafka's `ScramFormatter.secureRandomString`:
/// the server's nonce, the client's nonce, and (as UTF-8 bytes) the salt of new credentials.
fn secure_random_string() -> Result<String, String> {
    let mut bytes = [0u8; 17];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    // 17 bytes are 136 bits; dropping the top 6 leaves a uniform 130-bit number.
    bytes[0] &= 0x03;
    Ok(to_base36(&bytes))
}

/// A big-endian unsigned number in lower-case base 36, without leading zeros (Java's
/// `BigInteger.toString(36)`).
fn to_base36(big_endian: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number = big_endian.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        // Long division by 36, most significant byte first.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 36) as u8;
            remainder = value % 36;
        }
        digits.push(DIGITS[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

mod client;
mod credential;
mod messages;
mod server;
#[cfg(test)]
mod tests;

pub use client::ScramClient;
pub use credential::ScramCredential;
pub use server::ScramServer;
