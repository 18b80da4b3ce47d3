#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the documented test vectors.

Sources: the canonical transaction/block/genesis vectors of
crates/pp-ledger/tests/test_vectors.rs (also listed in docs/consensus.md), the example frames of
docs/protocol.md, and a few hand-written ppd.toml files. `block_validation`'s seeds are generated
by the target itself: `PP_FUZZ_WRITE_SEEDS=corpus/block_validation cargo fuzz run --sanitizer none block_validation`
(they need signatures). Run this script from the repository root:
`python3 fuzz/seeds.py`.
"""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


vectors = open(os.path.join(ROOT, "crates/pp-ledger/tests/test_vectors.rs")).read()
consts = dict(re.findall(r'const (\w+): &str = "([0-9a-f]*)";', vectors))
genesis_json = re.search(r'const GENESIS_JSON: &str = r#"(.*?)"#;', vectors, re.S).group(1)

tx = bytes.fromhex(consts["TX_CANONICAL"])
block = bytes.fromhex(consts["BLOCK_CANONICAL"])
header = bytes.fromhex(consts["BLOCK_HEADER_CANONICAL"])
put("canonical_tx", "vector-tx", tx)
put("canonical_tx", "vector-tx-truncated", tx[:-1])
put("canonical_block", "vector-block", block)
put("canonical_block", "vector-header", header)
put("canonical_block", "vector-block-no-txs", header + block[len(header):len(header) + 64] + b"\0\0\0\0")
put("genesis", "vector-genesis.json", genesis_json)
put("genesis", "vector-genesis-compact.json", json.dumps(json.loads(genesis_json)))

# docs/protocol.md: each ```frame block is a hex length prefix line and one payload line.
doc = open(os.path.join(ROOT, "docs/protocol.md")).read()
frames = re.findall(r"```frame\n([0-9a-f ]+)\n(.*?)\n```", doc)
stream = b""
for i, (prefix, payload) in enumerate(frames):
    frame = bytes.fromhex(prefix.replace(" ", "")) + payload.encode()
    kind = json.loads(payload)["type"]
    put("frame", f"doc-{i:02}-{kind}", frame)
    stream += frame
    if kind == "new_tx":
        put("http_tx_body", "doc-new_tx.json", json.dumps(json.loads(payload)["tx"], separators=(",", ":")))
put("frame", "doc-all-frames-stream", stream)
put("http_tx_body", "vector-tx-missing-signature.json",
    '{"type":"unbond","from":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","amount":1,"fee":0,"nonce":0}')
put("http_tx_body", "bond.json",
    '{"type":"bond","stakeholder_id":"carol","from":"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c","amount":5,"fee":1,"nonce":0,'
    '"signature":"339c17258b2476e72f533997e38ef52453ebc6446ccd740c7ccb28cd1f5a2220f1beb7bdf34ed9304b2ef4558f4565318a79edd28f6fd13d89ae0e3784051402"}')

put("ppd_toml", "full.toml", """data_dir = "data"
genesis = "../genesis.json"
node_id = "node1"
http = "127.0.0.1:8081"
p2p = "127.0.0.1:7001"
peers = ["127.0.0.1:7002", "localhost:7003"]
max_peers = 16
log = "info,pp_net=debug"
""")
put("ppd_toml", "empty.toml", "")
put("ppd_toml", "unknown-key.toml", 'peer = "127.0.0.1:7002"\n')
put("ppd_toml", "bad-values.toml", 'http = "nowhere"\nmax_peers = 0\nnode_id = "no spaces"\n')
