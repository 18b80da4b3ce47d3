#!/usr/bin/env python3
"""Independent check of the state-tree vectors (docs/state-commitment.md).

Written from docs/state-commitment.md alone, with Python's hashlib: for every account line of
docs/vectors/state_tree.tsv it recomputes the tree key from the public key and checks the leaf
value's encoding; it recomputes the root from the definition of the tree; it decodes each proof
with the byte rules of section 5 and verifies it with the rules of section 6. Exits non-zero on
the first difference. Standard library only:  python3 docs/vectors/state_tree_check.py
"""
import hashlib
import os
import struct
import sys

KEY_TAG = b"pp-ledger/state-key/v1"
META_TAG = b"pp-ledger/state-meta/v1"


def h(*parts):
    d = hashlib.blake2b(digest_size=32)
    for p in parts:
        d.update(p)
    return d.digest()


def value_hash(v):
    return h(b"\x02", v)


def leaf_hash(k, vh):
    return h(b"\x00", k, vh)


def node_hash(l, r):
    return h(b"\x01", l, r)


ZERO = bytes(32)


def bit(k, i):
    return (k[i // 8] >> (7 - i % 8)) & 1


def root_of(entries, depth=0):
    """entries: sorted list of (key, value)."""
    if not entries:
        return ZERO
    if len(entries) == 1:
        k, v = entries[0]
        return leaf_hash(k, value_hash(v))
    left = [e for e in entries if bit(e[0], depth) == 0]
    right = [e for e in entries if bit(e[0], depth) == 1]
    return node_hash(root_of(left, depth + 1), root_of(right, depth + 1))


def decode_leaf(v):
    balance, nonce, stake = struct.unpack_from(">QQQ", v, 0)
    tag = v[24]
    at = 25
    sid = None
    if tag == 1:
        (n,) = struct.unpack_from(">I", v, 25)
        sid = v[29:29 + n].decode("ascii")
        assert len(sid) == n, "short id"
        at = 29 + n
    else:
        assert tag == 0, "bad id option tag"
    vrf = None
    tag = v[at]
    if tag == 1:
        vrf = v[at + 1:at + 33]
        assert len(vrf) == 32, "short VRF key"
        at += 33
    else:
        assert tag == 0, "bad VRF option tag"
        at += 1
    assert len(v) == at, "trailing bytes"
    return balance, nonce, stake, sid, vrf


def decode_proof(b):
    kind = b[0]
    assert kind in (0, 1), "kind"
    depth = struct.unpack_from(">H", b, 1)[0]
    assert depth <= 256, "depth"
    bm_len = (depth + 7) // 8
    bitmap = b[3:3 + bm_len]
    if depth % 8:
        assert bitmap[-1] & (0xFF >> (depth % 8)) == 0, "bitmap padding"
    ones = sum(bin(x).count("1") for x in bitmap)
    tail = 64 if kind == 1 else 0
    assert len(b) == 3 + bm_len + 32 * ones + tail, "length"
    pos = 3 + bm_len
    siblings = []
    for i in range(depth):
        if (bitmap[i // 8] >> (7 - i % 8)) & 1:
            s = b[pos:pos + 32]
            pos += 32
            assert s != ZERO, "zero sibling"
            siblings.append(s)
        else:
            siblings.append(ZERO)
    terminal = None
    if kind == 1:
        terminal = (b[pos:pos + 32], b[pos + 32:pos + 64])
    return siblings, terminal


def verify(root, key, value, proof_bytes):
    siblings, terminal = decode_proof(proof_bytes)
    depth = len(siblings)
    if depth > 0:
        assert siblings[-1] != ZERO, "empty last sibling"
    if terminal is None:
        assert value is None, "proof shows absence"
        cur = ZERO
    else:
        lk, vh = terminal
        for i in range(depth):
            assert bit(lk, i) == bit(key, i), "path mismatch"
        if lk == key:
            assert value is not None, "proof shows presence"
            assert value_hash(value) == vh, "value mismatch"
        else:
            assert value is None, "proof shows absence"
        cur = leaf_hash(lk, vh)
    for i in reversed(range(depth)):
        cur = node_hash(siblings[i], cur) if bit(key, i) else node_hash(cur, siblings[i])
    assert cur == root, "root mismatch"


def main():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state_tree.tsv")
    entries, root, proofs = [], None, 0
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        if f[0] == "account":
            pk, key, value = (bytes.fromhex(x) for x in f[2:5])
            assert h(KEY_TAG, pk) == key, f"tree key of seed {f[1]}"
            decode_leaf(value)
            entries.append((key, value))
        elif f[0] == "total":
            key, value = (bytes.fromhex(x) for x in f[1:3])
            assert h(META_TAG, b"total-stake") == key, "total-stake key"
            assert len(value) == 16, "total-stake value is a u128"
            total = sum(decode_leaf(v)[2] for _, v in entries)
            assert int.from_bytes(value, "big") == total, "total stake is the sum of the stakes"
            entries.append((key, value))
        elif f[0] == "root":
            root = root_of(sorted(entries))
            assert root == bytes.fromhex(f[1]), "root"
        elif f[0] in ("inclusion", "exclusion"):
            key = bytes.fromhex(f[1])
            value = None if f[2] == "-" else bytes.fromhex(f[2])
            verify(root, key, value, bytes.fromhex(f[3]))
            # Every tampering of a proof byte is refused.
            b = bytearray.fromhex(f[3])
            for i in range(len(b)):
                t = bytearray(b)
                t[i] ^= 1
                try:
                    verify(root, key, value, bytes(t))
                except (AssertionError, IndexError, struct.error, UnicodeDecodeError):
                    continue
                sys.exit(f"a proof with byte {i} flipped verified: {line}")
            proofs += 1
        else:
            sys.exit(f"unknown line: {line}")
    print(f"ok: {len(entries)} leaves, root, {proofs} proofs")


if __name__ == "__main__":
    main()
