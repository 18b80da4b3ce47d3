//! The canonical binary encoding that every hash and signature in pp-ledger is computed over.
//!
//! Rules (also in docs/consensus.md): fields in declaration order; integers are fixed-width
//! big-endian (`u8`, `u32`, `u64`); hashes, keys and signatures are their raw bytes (32/32/64);
//! variable-length byte strings and UTF-8 strings are a `u32` big-endian length then the bytes;
//! sequences are a `u32` count then the items; enums are a `u8` tag then the variant's fields.
//! JSON is never hashed, so formatting cannot change an id.

use crate::crypto::{PublicKey, Signature};
use crate::error::DecodeError;
use crate::hash::Hash;

/// Appends canonical bytes to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Four bytes, big-endian.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Eight bytes, big-endian.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes of fixed, known length (no prefix).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// A hash: 32 raw bytes.
    pub fn hash(&mut self, h: &Hash) -> &mut Self {
        self.raw(&h.0)
    }

    /// A public key: 32 raw bytes.
    pub fn key(&mut self, k: &PublicKey) -> &mut Self {
        self.raw(&k.0)
    }

    /// A signature: 64 raw bytes.
    pub fn sig(&mut self, s: &Signature) -> &mut Self {
        self.raw(&s.0)
    }

    /// Length-prefixed bytes (`u32` length). Lengths above `u32::MAX` cannot occur for values
    /// that passed validation (all are bounded far below that); they are saturated, which would
    /// make the encoding undecodable rather than ambiguous.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.raw(b)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
}

/// Reads canonical bytes, never past the end, never allocating more than the input holds.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Decoder { data, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Fails unless every byte was consumed (trailing bytes make an encoding non-canonical).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.remaining()))
        }
    }

    /// Takes `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A 32-byte hash.
    pub fn hash(&mut self) -> Result<Hash, DecodeError> {
        Ok(Hash(self.array()?))
    }

    /// A 32-byte public key.
    pub fn key(&mut self) -> Result<PublicKey, DecodeError> {
        Ok(PublicKey(self.array()?))
    }

    /// A 64-byte signature.
    pub fn sig(&mut self) -> Result<Signature, DecodeError> {
        Ok(Signature(self.array()?))
    }

    /// Length-prefixed bytes; the length is checked against what remains before anything is
    /// allocated.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadUtf8)
    }

    /// A sequence count, checked so that `count * min_item_size` fits in what remains (a hostile
    /// count cannot make the caller pre-allocate more than the input could hold).
    pub fn count(&mut self, min_item_size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item_size.max(1)) > self.remaining() {
            return Err(DecodeError::CountTooLarge {
                count: n,
                remaining: self.remaining(),
            });
        }
        Ok(n)
    }
}

/// Types with a canonical binary form.
pub trait Encode {
    /// Writes the canonical bytes.
    fn encode(&self, e: &mut Encoder);

    /// The canonical bytes.
    fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.into_bytes()
    }
}

/// Types that can be read back from their canonical form.
pub trait Decode: Sized {
    /// Reads one value.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    /// Reads exactly one value from `bytes`, rejecting trailing bytes.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let v = Self::decode(&mut d)?;
        d.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian_fixed_width() {
        let mut e = Encoder::new();
        e.u8(1).u32(2).u64(3);
        assert_eq!(e.into_bytes(), vec![1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn decoder_rejects_truncation_and_hostile_lengths() {
        let mut d = Decoder::new(&[0, 0, 0, 9, 1, 2]);
        assert!(matches!(d.bytes(), Err(DecodeError::UnexpectedEnd { .. })));
        let mut d = Decoder::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            d.count(32),
            Err(DecodeError::CountTooLarge { .. })
        ));
        let mut d = Decoder::new(&[0, 0, 0, 2, 0xc3, 0x28]);
        assert_eq!(d.str(), Err(DecodeError::BadUtf8));
    }
}
