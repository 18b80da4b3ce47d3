//! pp-net's frame decoder and message parser, as a connection uses them: the input is a byte
//! stream cut into frames by `FrameCodec`, each payload parsed by `decode_message`. Never
//! panics; every decoded message re-encodes (`encode_message`) to a payload that decodes to the
//! same message, and re-framing a payload gives back the same payload.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pp_net::{decode_message, encode_message, FrameCodec, DEFAULT_MAX_FRAME_BYTES};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// Small enough that the fuzzer reaches the "too large" path.
const MAX_FRAME: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // The payload alone, as a message.
    check_payload(data);
    // The stream, as frames.
    let mut codec = FrameCodec::new(MAX_FRAME);
    let mut src = BytesMut::from(data);
    while let Ok(Some(payload)) = codec.decode(&mut src) {
        assert!(!payload.is_empty() && payload.len() <= MAX_FRAME);
        let mut framed = BytesMut::new();
        codec
            .encode(Bytes::copy_from_slice(&payload), &mut framed)
            .expect("a decoded payload frames again");
        let again = codec
            .decode(&mut framed)
            .expect("re-framed payload decodes")
            .expect("and is complete");
        assert_eq!(again, payload);
        assert!(framed.is_empty());
        check_payload(&payload);
    }
});

fn check_payload(payload: &[u8]) {
    let Ok(msg) = decode_message(payload) else {
        return;
    };
    let bytes = encode_message(&msg, DEFAULT_MAX_FRAME_BYTES).expect("a decoded message encodes");
    let again = decode_message(&bytes).expect("an encoded message decodes");
    assert_eq!(again, msg, "message round trip differs");
    let bytes2 = encode_message(&again, DEFAULT_MAX_FRAME_BYTES).expect("encodes");
    assert_eq!(bytes, bytes2, "encoding is not stable");
}
