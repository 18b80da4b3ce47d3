//! 32-byte hashes: SHA-256 for block headers, Blake2b-256 for transaction ids and Merkle trees.
//!
//! On the wire and over HTTP a hash is a lowercase hex string of 64 characters.

use std::fmt;
use std::str::FromStr;

use blake2::{Blake2b256, Digest as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;

use crate::error::HexError;

/// A 32-byte hash (block hash, transaction id, Merkle node, epoch nonce, genesis hash).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The all-zero hash (the parent of nothing, an empty accumulator).
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Hash {
        Hash(Sha256::digest(data).into())
    }

    /// Blake2b-256 of `data`.
    pub fn blake2b(data: &[u8]) -> Hash {
        Hash(Blake2b256::digest(data).into())
    }

    /// Blake2b-256 over the concatenation of `parts`, without building the concatenation.
    pub fn blake2b_parts(parts: &[&[u8]]) -> Hash {
        let mut h = Blake2b256::new();
        for p in parts {
            h.update(p);
        }
        Hash(h.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(s: &str) -> Result<Hash, HexError> {
        Ok(Hash(decode_fixed::<32>(s)?))
    }

    /// Number of leading zero hex digits (nibbles): the proof-of-work measure.
    pub fn leading_zero_nibbles(&self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 2;
            } else {
                if b >> 4 == 0 {
                    n += 1;
                }
                break;
            }
        }
        n
    }
}

/// Decodes exactly `N` bytes from a hex string, with a clear error otherwise.
pub(crate) fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    if s.len() != 2 * N {
        return Err(HexError::Length {
            expected: 2 * N,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError::NotHex)?;
    Ok(out)
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_matches_the_standard_vector() {
        assert_eq!(
            Hash::sha256(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn blake2b_parts_equals_blake2b_of_concatenation() {
        assert_eq!(Hash::blake2b_parts(&[b"ab", b"cd"]), Hash::blake2b(b"abcd"));
    }

    #[test]
    fn leading_zero_nibbles_counts_hex_digits() {
        let mut h = Hash([0xff; 32]);
        assert_eq!(h.leading_zero_nibbles(), 0);
        h.0[0] = 0x0f;
        assert_eq!(h.leading_zero_nibbles(), 1);
        h.0[0] = 0x00;
        h.0[1] = 0x0a;
        assert_eq!(h.leading_zero_nibbles(), 3);
        assert_eq!(Hash::ZERO.leading_zero_nibbles(), 64);
    }

    #[test]
    fn hex_round_trip_and_bad_input_errors() {
        let h = Hash::blake2b(b"x");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert!(matches!(
            Hash::from_hex("abc"),
            Err(HexError::Length { .. })
        ));
        assert_eq!(Hash::from_hex(&"zz".repeat(32)), Err(HexError::NotHex));
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
    }
}
