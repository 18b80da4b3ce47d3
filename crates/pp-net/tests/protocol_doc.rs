//! docs/protocol.md is normative: every example frame in it must be exact bytes that this
//! implementation decodes, and re-encodes identically. If the wire format changes, this fails
//! until the document is updated.

use std::collections::BTreeSet;

use pp_net::message::check_new_block_summary;
use pp_net::{decode_message, encode_message, Message, DEFAULT_MAX_FRAME_BYTES};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md exists")
}

/// (length prefix bytes, payload) of every ```frame block.
fn frames(doc: &str) -> Vec<([u8; 4], String)> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```frame" {
            continue;
        }
        let prefix_line = lines.next().expect("prefix line");
        let payload = lines.next().expect("payload line").to_string();
        assert_eq!(
            lines.next().map(str::trim),
            Some("```"),
            "one payload line per frame"
        );
        let bytes: Vec<u8> = prefix_line
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
            .collect();
        let prefix: [u8; 4] = bytes.try_into().expect("4 prefix bytes");
        out.push((prefix, payload));
    }
    out
}

#[test]
fn every_example_frame_in_the_protocol_doc_is_exact() {
    let doc = doc();
    let frames = frames(&doc);
    let mut kinds = BTreeSet::new();
    for (prefix, payload) in &frames {
        assert_eq!(
            u32::from_be_bytes(*prefix) as usize,
            payload.len(),
            "length prefix of {payload}"
        );
        let msg = decode_message(payload.as_bytes()).expect("example decodes");
        let again = encode_message(&msg, DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert_eq!(&again[..], payload.as_bytes(), "re-encoding differs");
        if let Message::NewBlock {
            index,
            slot,
            prev_hash,
            hash,
            block,
        } = &msg
        {
            check_new_block_summary(*index, *slot, prev_hash, hash, block)
                .expect("the documented new_block is consistent");
        }
        kinds.insert(msg.kind());
    }
    let all = [
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
        "compact_relay",
        "inv_txs",
        "get_txs",
        "txs",
        "compact_block",
        "get_block_txs",
        "block_txs",
        "new_header",
    ];
    assert_eq!(
        kinds,
        all.into_iter().collect(),
        "every message type has an example"
    );
}

#[test]
fn field_order_and_whitespace_do_not_matter_to_a_receiver() {
    let reordered = r#" { "count" : 1 , "from_index": 2, "request_id": 1, "type": "get_blocks" } "#;
    assert_eq!(
        decode_message(reordered.as_bytes()).unwrap(),
        Message::GetBlocks {
            request_id: 1,
            from_index: 2,
            count: 1
        }
    );
}

#[test]
fn every_error_code_in_the_code_module_is_in_the_doc_table() {
    let doc = doc();
    for code in [
        pp_net::codes::BAD_HELLO,
        pp_net::codes::GENESIS_MISMATCH,
        pp_net::codes::VERSION_MISMATCH,
        pp_net::codes::SELF_CONNECTION,
        pp_net::codes::ALREADY_CONNECTED,
        pp_net::codes::TOO_MANY_PEERS,
        pp_net::codes::BANNED,
        pp_net::codes::FRAME_TOO_LARGE,
        pp_net::codes::BAD_FRAME,
        pp_net::codes::PROTOCOL_VIOLATION,
        pp_net::codes::BAD_REQUEST,
        pp_net::codes::TIMEOUT,
        pp_net::codes::SHUTTING_DOWN,
        pp_net::codes::NOT_FOUND,
        pp_net::codes::HANDSHAKE_FAILED,
        pp_net::codes::INTERNAL,
    ] {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "error code {code} missing from the table"
        );
    }
}

#[test]
fn the_documented_compact_block_describes_the_documented_block() {
    let doc = doc();
    let msgs: Vec<Message> = frames(&doc)
        .iter()
        .map(|(_, p)| decode_message(p.as_bytes()).unwrap())
        .collect();
    let block = msgs
        .iter()
        .find_map(|m| match m {
            Message::NewBlock { block, .. } => Some(block.clone()),
            _ => None,
        })
        .unwrap();
    let cb = msgs
        .iter()
        .find_map(|m| match m {
            Message::CompactBlock(cb) => Some(cb.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(cb.nonce, 0x0123_4567_89ab_cdef);
    assert_eq!(
        cb,
        pp_net::compact::CompactBlock::build(&block, cb.nonce, |_, _| false)
    );
    for m in &msgs {
        if let Message::GetBlockTxs { hash, .. } | Message::BlockTxs { hash, .. } = m {
            assert_eq!(*hash, block.hash());
        }
    }
    let nh = msgs
        .iter()
        .find_map(|m| match m {
            Message::NewHeader(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        nh,
        pp_ledger::SignedHeader::from(&block),
        "the documented new_header announces the documented block"
    );
}
