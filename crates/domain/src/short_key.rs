//! [`ShortKey`]: a string map key that holds short values in the map's own slot.
//!
//! The large maps on the case path (the case former's entity index, the asset and identity
//! look-ups) are keyed by canonical entity values, mostly short (`ws-0142`, `alice`,
//! `10.1.2.3`). With a boxed key, every look-up that finds its slot still has to follow the
//! pointer to compare the string: one cache miss per look-up in a map larger than the cache.
//! A `ShortKey` keeps up to [`ShortKey::INLINE`] bytes inline, so the comparison reads the
//! slot it already has; longer values are shared behind an `Arc`.
//!
//! Look up with the value's bytes (`map.get(value.as_bytes())`): the key borrows as `[u8]`
//! and hashes as its bytes, so a look-up builds no key and allocates nothing.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A string key, inline when short. Equality, order of hashing and borrowing all go by the
/// value's bytes, whichever way it is held. 24 bytes.
#[derive(Clone)]
pub struct ShortKey(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; ShortKey::INLINE],
    },
    Shared(Arc<str>),
}

impl ShortKey {
    /// The longest value held inline.
    pub const INLINE: usize = 22;

    /// The key for `value`, copied inline when short, else into a new `Arc`.
    pub fn new(value: &str) -> ShortKey {
        ShortKey::inline(value).unwrap_or_else(|| ShortKey(Repr::Shared(Arc::from(value))))
    }

    /// The key for a value already shared: inline when short, else the same `Arc`.
    pub fn shared(value: &Arc<str>) -> ShortKey {
        ShortKey::inline(value).unwrap_or_else(|| ShortKey(Repr::Shared(value.clone())))
    }

    fn inline(value: &str) -> Option<ShortKey> {
        let len = value.len();
        if len > ShortKey::INLINE {
            return None;
        }
        let mut bytes = [0u8; ShortKey::INLINE];
        bytes[..len].copy_from_slice(value.as_bytes());
        Some(ShortKey(Repr::Inline {
            len: len as u8,
            bytes,
        }))
    }

    /// The value's bytes (valid UTF-8: every key is made from a `str`).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            Repr::Shared(s) => s.as_bytes(),
        }
    }

    /// The value as a string.
    pub fn to_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl PartialEq for ShortKey {
    fn eq(&self, other: &ShortKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortKey {}

impl Hash for ShortKey {
    /// As the bytes hash, so that a look-up by `&[u8]` finds the key (`Borrow` requires it).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for ShortKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for ShortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.to_str(), f)
    }
}

impl From<&str> for ShortKey {
    fn from(value: &str) -> ShortKey {
        ShortKey::new(value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn short_and_long_values_are_found_by_their_bytes() {
        assert_eq!(std::mem::size_of::<ShortKey>(), 24);
        let long = "a-host-name-longer-than-the-inline-room.example";
        let edge = "x".repeat(ShortKey::INLINE);
        let over = "y".repeat(ShortKey::INLINE + 1);
        let mut m: HashMap<ShortKey, u32> = HashMap::new();
        for (i, v) in ["", "ws-1", "ä-ü", long, &edge, &over].iter().enumerate() {
            m.insert(ShortKey::new(v), i as u32);
        }
        assert_eq!(m.len(), 6);
        for (i, v) in ["", "ws-1", "ä-ü", long, &edge, &over].iter().enumerate() {
            assert_eq!(m.get(v.as_bytes()), Some(&(i as u32)), "{v}");
            assert_eq!(&*ShortKey::new(v).to_str(), *v);
        }
        assert_eq!(m.get("ws-2".as_bytes()), None);
        assert_eq!(m.get("ws-".as_bytes()), None);
        // Held inline or shared, the same value is the same key.
        let shared: Arc<str> = Arc::from(long);
        assert_eq!(ShortKey::shared(&shared), ShortKey::new(long));
        assert_eq!(ShortKey::shared(&Arc::from("ws-1")), ShortKey::new("ws-1"));
    }
}
