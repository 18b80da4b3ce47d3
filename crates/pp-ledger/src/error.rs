//! Error types of pp-ledger, one enum per concern. Each variant names the broken rule and carries
//! the values involved, so that a log line or an HTTP error says exactly what was wrong.

/// A hex string could not be read as a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Wrong number of hex characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Characters required.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// A character is not a hex digit.
    #[error("not a hex string")]
    NotHex,
}

/// Canonical bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended early.
    #[error("unexpected end of input: needed {needed} bytes, {available} available")]
    UnexpectedEnd {
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A sequence count that the remaining input cannot hold.
    #[error("count {count} cannot fit in the {remaining} remaining bytes")]
    CountTooLarge {
        /// The count read.
        count: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A string was not UTF-8.
    #[error("string is not valid UTF-8")]
    BadUtf8,
    /// An enum tag is not known.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
}
