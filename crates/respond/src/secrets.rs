//! Secrets that connectors need (API tokens, passwords), sealed at rest with
//! XChaCha20-Poly1305.
//!
//! The key comes from the environment (`RIPOSTE_SECRET_KEY`, 64 hex characters) or a key file
//! (32 raw bytes, or 64 hex characters); it is never stored next to the sealed secrets. Each
//! secret is sealed with a fresh random 24-byte nonce and its name as associated data, so a
//! sealed value moved under another name does not open.
//!
//! A [`Secret`] never shows its value in `Debug` or `Display`; the only way to read it is
//! [`Secret::expose`], which connectors call at the moment they build a request.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// The environment variable that holds the sealing key as 64 hex characters.
pub const KEY_ENV: &str = "RIPOSTE_SECRET_KEY";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no secret key: set {KEY_ENV} (64 hex characters) or give a key file (32 bytes or 64 hex characters)"
    )]
    NoKey,
    #[error("the secret key {origin} is not 32 bytes or 64 hex characters")]
    BadKey { origin: String },
    #[error("cannot read the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("secret `{name}` is not known")]
    Unknown { name: String },
    #[error(
        "secret `{name}` does not open with this key (wrong key, or the sealed value was changed or moved)"
    )]
    Open { name: String },
    #[error("secret `{name}`: sealed value is malformed ({reason})")]
    Malformed { name: String, reason: String },
    #[error("cannot make a random nonce: {0}")]
    Random(String),
    #[error("cannot seal secret `{name}`")]
    Seal { name: String },
}

/// A secret value. Its `Debug` and `Display` print `***`, so it cannot end up in a log line
/// or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself: call only where it goes onto the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The 32-byte sealing key. `Debug` does not show it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// A fresh random key (for `riposte secret keygen` and tests).
    pub fn generate() -> Result<SecretKey, SecretError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(SecretKey(k))
    }

    /// The key as 64 hex characters, to put in the environment or a key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn parse(raw: &[u8], origin: &str) -> Result<SecretKey, SecretError> {
        let bad = || SecretError::BadKey {
            origin: origin.to_string(),
        };
        if raw.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(raw);
            return Ok(SecretKey(k));
        }
        let text = std::str::from_utf8(raw).map_err(|_| bad())?.trim();
        let bytes = hex::decode(text).map_err(|_| bad())?;
        let k: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(SecretKey(k))
    }

    /// From `RIPOSTE_SECRET_KEY` when it is set, else from `file` when given.
    pub fn load(file: Option<&Path>) -> Result<SecretKey, SecretError> {
        if let Ok(v) = std::env::var(KEY_ENV) {
            return SecretKey::parse(v.as_bytes(), &format!("in {KEY_ENV}"));
        }
        match file {
            Some(p) => {
                let raw = std::fs::read(p).map_err(|source| SecretError::KeyFile {
                    path: p.display().to_string(),
                    source,
                })?;
                SecretKey::parse(&raw, &format!("in {}", p.display()))
            }
            None => Err(SecretError::NoKey),
        }
    }
}

/// One sealed secret as stored: nonce and ciphertext (tag appended), both hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub nonce: String,
    pub ciphertext: String,
}

/// Named secrets, sealed. Serialises to JSON that holds no plaintext, so it can be kept in a
/// file or a table; it needs the [`SecretKey`] to open anything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecretVault {
    #[serde(flatten)]
    sealed: BTreeMap<String, SealedSecret>,
}

impl SecretVault {
    pub fn new() -> SecretVault {
        SecretVault::default()
    }

    /// Seals `value` under `name`, replacing any earlier value.
    pub fn put(&mut self, key: &SecretKey, name: &str, value: &Secret) -> Result<(), SecretError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let cipher = XChaCha20Poly1305::new(&key.0.into());
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Seal { name: name.into() })?;
        self.sealed.insert(
            name.to_string(),
            SealedSecret {
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ct),
            },
        );
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.sealed.remove(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sealed.keys().map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.sealed.contains_key(name)
    }

    /// Opens the secret `name`.
    pub fn get(&self, key: &SecretKey, name: &str) -> Result<Secret, SecretError> {
        let s = self.sealed.get(name).ok_or_else(|| SecretError::Unknown {
            name: name.to_string(),
        })?;
        let malformed = |reason: &str| SecretError::Malformed {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let nonce: [u8; 24] = hex::decode(&s.nonce)
            .map_err(|_| malformed("nonce is not hex"))?
            .try_into()
            .map_err(|_| malformed("nonce is not 24 bytes"))?;
        let ct = hex::decode(&s.ciphertext).map_err(|_| malformed("ciphertext is not hex"))?;
        let cipher = XChaCha20Poly1305::new(&key.0.into());
        let pt = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ct,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Open {
                name: name.to_string(),
            })?;
        let text = String::from_utf8(pt).map_err(|_| malformed("plaintext is not UTF-8"))?;
        Ok(Secret(text))
    }

    pub fn to_json(&self) -> String {
        // A map of strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<SecretVault, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// Where connectors get their secrets from: an opened vault, or anything else the server
/// provides. Implementations must never log what they return.
pub trait SecretSource: Send + Sync {
    fn secret(&self, name: &str) -> Result<Secret, SecretError>;
}

/// A vault with its key: the usual [`SecretSource`].
#[derive(Debug, Clone)]
pub struct OpenVault {
    pub vault: SecretVault,
    pub key: SecretKey,
}

impl SecretSource for OpenVault {
    fn secret(&self, name: &str) -> Result<Secret, SecretError> {
        self.vault.get(&self.key, name)
    }
}

/// Plain secrets in memory, for tests and dry runs.
#[derive(Debug, Clone, Default)]
pub struct StaticSecrets(pub BTreeMap<String, Secret>);

impl SecretSource for StaticSecrets {
    fn secret(&self, name: &str) -> Result<Secret, SecretError> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::Unknown {
                name: name.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_plaintext_at_rest() {
        let key = SecretKey::generate().unwrap();
        let mut v = SecretVault::new();
        let value = Secret::new("tok-3c1f9a-very-secret");
        v.put(&key, "edr_token", &value).unwrap();
        let json = v.to_json();
        assert!(!json.contains("tok-3c1f9a"), "{json}");
        let back = SecretVault::from_json(&json).unwrap();
        assert_eq!(
            back.get(&key, "edr_token").unwrap().expose(),
            value.expose()
        );
        // Two seals of one value differ (fresh nonce).
        let mut w = SecretVault::new();
        w.put(&key, "edr_token", &value).unwrap();
        assert_ne!(w.sealed["edr_token"], back.sealed["edr_token"]);
    }

    #[test]
    fn wrong_key_moved_value_and_tampering_do_not_open() {
        let key = SecretKey::generate().unwrap();
        let other = SecretKey::generate().unwrap();
        let mut v = SecretVault::new();
        v.put(&key, "a", &Secret::new("alpha")).unwrap();
        assert!(matches!(v.get(&other, "a"), Err(SecretError::Open { .. })));
        let sealed = v.sealed["a"].clone();
        v.sealed.insert("b".into(), sealed.clone());
        assert!(matches!(v.get(&key, "b"), Err(SecretError::Open { .. })));
        let mut ct = hex::decode(&sealed.ciphertext).unwrap();
        ct[0] ^= 1;
        v.sealed.insert(
            "a".into(),
            SealedSecret {
                nonce: sealed.nonce,
                ciphertext: hex::encode(ct),
            },
        );
        assert!(matches!(v.get(&key, "a"), Err(SecretError::Open { .. })));
        assert!(matches!(
            v.get(&key, "zz"),
            Err(SecretError::Unknown { .. })
        ));
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-xyz");
        let key = SecretKey::from_bytes([7; 32]);
        let shown = format!("{s:?} {s} {key:?} {:?}", Some(&s));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(&key.to_hex()), "{shown}");
        let src = StaticSecrets([("t".to_string(), s)].into_iter().collect());
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn key_parsing() {
        let k = SecretKey::from_bytes([0xab; 32]);
        let parsed = SecretKey::parse(format!("{}\n", k.to_hex()).as_bytes(), "test").unwrap();
        assert_eq!(parsed.0, k.0);
        assert_eq!(SecretKey::parse(&[1; 32], "raw").unwrap().0, [1; 32]);
        let e = SecretKey::parse(b"abcd", "in a file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("in a file"), "{e}");
    }
}
