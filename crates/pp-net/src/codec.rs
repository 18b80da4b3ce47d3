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
const KNOWN_TYPES: &[&str] = &crate::stats::MESSAGE_KINDS;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(payload: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_u32(u32::try_from(payload.len()).unwrap());
        b.put_slice(payload);
        b
    }

    #[test]
    fn oversized_length_prefix_is_rejected_without_allocating_it() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::with_capacity(16);
        buf.put_u32(u32::MAX);
        buf.put_slice(b"{}");
        let before = buf.capacity();
        match codec.decode(&mut buf) {
            Err(NetError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        assert_eq!(buf.capacity(), before, "the decoder reserved memory");
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn frame_just_over_the_limit_is_rejected_and_at_the_limit_accepted() {
        let mut codec = FrameCodec::new(8);
        assert!(matches!(
            codec.decode(&mut frame(b"123456789")),
            Err(NetError::FrameTooLarge { len: 9, max: 8 })
        ));
        assert_eq!(
            codec.decode(&mut frame(b"12345678")).unwrap().as_deref(),
            Some(&b"12345678"[..])
        );
    }

    #[test]
    fn partial_frame_does_not_reserve_the_announced_length() {
        let mut codec = FrameCodec::new(DEFAULT_MAX);
        let mut buf = BytesMut::new();
        buf.put_u32(8_000_000);
        buf.put_slice(b"{\"type\"");
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 1_000_000, "capacity {}", buf.capacity());
    }
    const DEFAULT_MAX: usize = crate::config::DEFAULT_MAX_FRAME_BYTES;

    #[test]
    fn zero_length_frame_is_an_error() {
        let mut codec = FrameCodec::new(1024);
        assert!(matches!(
            codec.decode(&mut frame(b"")),
            Err(NetError::EmptyFrame)
        ));
    }

    #[test]
    fn truncated_frames_wait_for_more_bytes() {
        let mut codec = MessageCodec::new(1024);
        let full = frame(br#"{"type":"ping","request_id":7}"#);
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert!(codec.decode(&mut part).unwrap().is_none(), "cut at {cut}");
        }
        let mut whole = full.clone();
        assert_eq!(
            codec.decode(&mut whole).unwrap(),
            Some(Message::Ping { request_id: 7 })
        );
        assert!(whole.is_empty());
    }

    #[test]
    fn truncated_frame_at_eof_is_an_error() {
        let mut codec = MessageCodec::new(1024);
        let full = frame(br#"{"type":"ping","request_id":7}"#);
        let mut part = BytesMut::from(&full[..full.len() - 3]);
        assert!(codec.decode_eof(&mut part).is_err());
    }

    #[test]
    fn bad_utf8_is_rejected() {
        assert!(matches!(
            decode_message(b"{\"type\":\"ping\xff\"}"),
            Err(NetError::BadUtf8 { valid_up_to: 13 })
        ));
    }

    #[test]
    fn garbage_and_non_objects_are_bad_json() {
        for bad in [
            &b"garbage"[..],
            b"[1,2,3]",
            b"{\"type\":",
            b"{}",
            b"42",
            b"{\"type\":\"ping\"}",
            b"{\"type\":\"ping\",\"request_id\":-1}",
            b"{\"type\":\"ping\",\"request_id\":1,\"extra\":true}",
            b"{\"type\":7}",
        ] {
            assert!(
                matches!(decode_message(bad), Err(NetError::BadJson(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(bad),
                decode_message(bad)
            );
        }
    }

    #[test]
    fn unknown_message_type_is_reported_by_name() {
        match decode_message(br#"{"type":"launch_missiles","at":1}"#) {
            Err(NetError::UnknownMessage(t)) => assert_eq!(t, "launch_missiles"),
            other => panic!("expected UnknownMessage, got {other:?}"),
        }
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
        let mut s = String::from("{\"type\":\"ping\",\"request_id\":");
        s.push_str(&"[".repeat(100_000));
        assert!(decode_message(s.as_bytes()).is_err());
    }

    #[test]
    fn encode_then_decode_round_trips_through_the_codec() {
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::new();
        let msgs = [
            Message::GetPeers { request_id: 1 },
            Message::error(Some(2), crate::message::codes::BAD_REQUEST, "no"),
        ];
        for m in &msgs {
            codec.encode(m, &mut buf).unwrap();
        }
        assert_eq!(&buf[..4], &[0, 0, 0, 35]);
        for m in &msgs {
            assert_eq!(codec.decode(&mut buf).unwrap().as_ref(), Some(m));
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn encoding_refuses_payloads_over_the_limit() {
        let msg = Message::error(None, "internal", "x".repeat(200));
        assert!(matches!(
            encode_message(&msg, 100),
            Err(NetError::FrameTooLarge { max: 100, .. })
        ));
        let mut codec = FrameCodec::new(4);
        let mut dst = BytesMut::new();
        assert!(codec
            .encode(Bytes::from_static(b"12345"), &mut dst)
            .is_err());
        assert!(codec.encode(Bytes::new(), &mut dst).is_err());
        assert!(dst.is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoder_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..64) {
            let mut codec = MessageCodec::new(1024);
            let mut buf = BytesMut::new();
            // Feed in chunks, as a socket would; stop at the first error, as a connection does.
            'feed: for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match codec.decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
            prop_assert!(buf.capacity() <= 4096 + 2048);
        }

        #[test]
        fn decoder_never_panics_on_framed_json_like_payloads(
            payload in "\\{(\"type\":\"(ping|pong|hello|blocks|new_block|get_headers|error|x)\",?)?(\"[a-z_]{1,12}\":(-?[0-9]{1,25}|\"[0-9a-f]{0,70}\"|\\[\\]|null|\\{\\}),?){0,6}\\}"
        ) {
            let mut codec = MessageCodec::new(1024);
            let mut buf = frame(payload.as_bytes());
            let _ = codec.decode(&mut buf);
        }
    }
}
