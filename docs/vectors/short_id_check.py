#!/usr/bin/env python3
"""Independent check of the compact-block short ids (docs/protocol.md section 14.2).

Recomputes every row of docs/vectors/short_ids.tsv from its block hash, nonce and transaction
id with Python's hashlib and a SipHash-2-4 written from the SipHash paper, and exits non-zero
on the first difference. Standard library only:  python3 docs/vectors/short_id_check.py
"""
import hashlib
import os
import struct
import sys

MASK = (1 << 64) - 1


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(k0, k1, data):
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & MASK; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 = (v2 + v3) & MASK; v3 = rotl(v3, 16); v3 ^= v2
            v0 = (v0 + v3) & MASK; v3 = rotl(v3, 21); v3 ^= v0
            v2 = (v2 + v1) & MASK; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)

    tail = len(data) % 8
    for i in range(0, len(data) - tail, 8):
        m = struct.unpack_from("<Q", data, i)[0]
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (len(data) & 0xFF) << 56
    for i, b in enumerate(data[len(data) - tail:]):
        last |= b << (8 * i)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def key(block_hash, nonce):
    h = hashlib.sha256(block_hash + struct.pack(">Q", nonce)).digest()
    return struct.unpack_from("<Q", h, 0)[0], struct.unpack_from("<Q", h, 8)[0]


def main():
    # The SipHash paper's vector: key 00..0f, message 00..0e.
    k0, k1 = struct.unpack("<QQ", bytes(range(16)))
    assert siphash24(k0, k1, bytes(range(15))) == 0xA129CA6149BE45E5
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "short_ids.tsv")
    rows = [l for l in open(path).read().splitlines() if l and not l.startswith("#")]
    assert rows[0].split("\t") == ["block_hash", "nonce", "k0", "k1", "txid", "short_id"]
    for line in rows[1:]:
        block, nonce, ek0, ek1, txid, esid = line.split("\t")
        k0, k1 = key(bytes.fromhex(block), int(nonce))
        sid = siphash24(k0, k1, bytes.fromhex(txid)) & 0xFFFFFFFFFFFF
        got = (f"{k0:016x}", f"{k1:016x}", f"{sid:012x}")
        if got != (ek0, ek1, esid):
            print(f"MISMATCH {line}: got {got}")
            return 1
    print(f"{len(rows) - 1} short-id vectors reproduced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
