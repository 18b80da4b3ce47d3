//! Framing: a 4-byte big-endian length N, then N bytes of UTF-8 JSON holding one message.
//!
//! The length prefix comes from the network and is therefore checked before it is believed:
//! zero and anything above the configured maximum are rejected *before* a single byte of buffer
//! is reserved for the payload. The decoder never reserves ahead for an announced length at all;
//! the read buffer only grows as bytes actually arrive, so a peer that announces 8 MiB and then
//! goes quiet costs us what it sent, not what it promised.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::NetError;
use crate::message::Message;

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The `type` values this version understands; used to tell an unknown message from bad JSON.
const KNOWN_TYPES: &[&str] = &[
    "hello",
    "get_blocks",
    "blocks",
    "new_block",
    "get_headers",
    "headers",
    "new_tx",
    "get_peers",
    "peers",
    "ping",
    "pong",
    "error",
];

/// Splits a byte stream into frame payloads and writes payloads as frames.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_bytes: usize,
}

impl FrameCodec {
    /// A codec that refuses payloads longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> FrameCodec {
        FrameCodec { max_frame_bytes }
    }

    /// The configured maximum payload size.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    fn check_len(&self, len: usize) -> Result<(), NetError> {
        if len == 0 {
            return Err(NetError::EmptyFrame);
        }
        if len > self.max_frame_bytes {
            return Err(NetError::FrameTooLarge {
                len,
                max: self.max_frame_bytes,
            });
        }
        Ok(())
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, NetError> {
        let Some(prefix) = src.get(..LENGTH_PREFIX_LEN) else {
            return Ok(None);
        };
        let mut be = [0u8; LENGTH_PREFIX_LEN];
        be.copy_from_slice(prefix);
        // u32 always fits usize on the 32/64-bit targets we build for; saturate just in case.
        let len = usize::try_from(u32::from_be_bytes(be)).unwrap_or(usize::MAX);
        self.check_len(len)?;
        if src.len() - LENGTH_PREFIX_LEN < len {
            // Deliberately no `reserve(len)`: see the module docs.
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_LEN);
        Ok(Some(src.split_to(len)))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = NetError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), NetError> {
        self.check_len(payload.len())?;
        let len = u32::try_from(payload.len()).map_err(|_| NetError::FrameTooLarge {
            len: payload.len(),
            max: self.max_frame_bytes,
        })?;
        dst.reserve(LENGTH_PREFIX_LEN + payload.len());
        dst.put_u32(len);
        dst.put_slice(&payload);
        Ok(())
    }
}

/// Serialize a message to a frame payload (JSON, without the length prefix), refusing one that
/// would exceed `max_frame_bytes`.
pub fn encode_message(msg: &Message, max_frame_bytes: usize) -> Result<Bytes, NetError> {
    let json = serde_json::to_vec(msg).map_err(|e| NetError::BadJson(e.to_string()))?;
    if json.len() > max_frame_bytes {
        return Err(NetError::FrameTooLarge {
            len: json.len(),
            max: max_frame_bytes,
        });
    }
    Ok(Bytes::from(json))
}

/// Parse a frame payload into a message: UTF-8 first, then JSON, then the message schema.
pub fn decode_message(payload: &[u8]) -> Result<Message, NetError> {
    if payload.is_empty() {
        return Err(NetError::EmptyFrame);
    }
    let text = std::str::from_utf8(payload).map_err(|e| NetError::BadUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    match serde_json::from_str::<Message>(text) {
        Ok(msg) => Ok(msg),
        Err(err) => Err(classify_failure(text, err)),
    }
}

/// On the (rare, penalised) failure path, find out whether the object named a type we do not
/// know, which is a more useful error than serde's "unknown variant" buried in a string.
fn classify_failure(text: &str, err: serde_json::Error) -> NetError {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) {
        match map.get("type") {
            Some(serde_json::Value::String(t)) if !KNOWN_TYPES.contains(&t.as_str()) => {
                // Bound what we echo into logs and errors.
                return NetError::UnknownMessage(t.chars().take(64).collect());
            }
            None => return NetError::BadJson("object has no \"type\" field".to_string()),
            _ => {}
        }
    }
    NetError::BadJson(err.to_string())
}

/// Frames plus JSON in one codec: a stream of bytes in, a stream of [`Message`]s out.
#[derive(Debug, Clone, Copy)]
pub struct MessageCodec {
    frames: FrameCodec,
}

impl MessageCodec {
    /// A codec with the given maximum payload size.
    pub fn new(max_frame_bytes: usize) -> MessageCodec {
        MessageCodec {
            frames: FrameCodec::new(max_frame_bytes),
        }
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = NetError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, NetError> {
        match self.frames.decode(src)? {
            Some(payload) => decode_message(&payload).map(Some),
            None => Ok(None),
        }
    }
}

impl Encoder<&Message> for MessageCodec {
    type Error = NetError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), NetError> {
        let payload = encode_message(msg, self.frames.max_frame_bytes())?;
        self.frames.encode(payload, dst)
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = NetError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), NetError> {
        self.encode(&msg, dst)
    }
}
