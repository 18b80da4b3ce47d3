#!/usr/bin/env python3
"""Independent check of the Noise test vector in docs/protocol.md ("Encrypted transport (Noise)").

Rebuilds every documented message with a second implementation (the `noiseprotocol` package,
ed25519 from `cryptography`) from the documented inputs alone, and compares byte for byte.
Not run by CI (the Rust test crates/pp-net/tests/noise_vector.rs is the CI check); run it by hand
after changing the vector:

    python3 -m venv /tmp/nv && /tmp/nv/bin/pip install noiseprotocol cryptography
    /tmp/nv/bin/python docs/vectors/noise_vector_check.py

Exit status 0 and "all messages match" when the vector is reproduced.
"""

import pathlib
import warnings
import struct
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from noise.connection import Keypair, NoiseConnection

NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
PROLOGUE = b"pp-ledger/noise/1"
IDENTITY_CONTEXT = b"pp-ledger/noise-identity/1"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def vector(doc: str):
    lines = doc.splitlines()
    start = lines.index("```noise-vector") + 1
    out, key = {}, None
    for line in lines[start:]:
        if line.strip() == "```":
            return {k: bytes.fromhex(v) for k, v in out.items()}
        if line[:1].isspace():
            out[key] += line.strip()
        else:
            key, value = line.split(":", 1)
            out[key] = value.strip()
    raise SystemExit("unterminated noise-vector block")


def hello_frame(doc: str) -> bytes:
    """The ```frame block right before the vector: 4-byte length line, then the JSON."""
    lines = doc.splitlines()
    i = lines.index("```noise-vector")
    assert lines[i - 1] == "" and lines[i - 2] == "```" and lines[i - 5] == "```frame"
    prefix = bytes.fromhex(lines[i - 4].replace(" ", ""))
    payload = lines[i - 3].encode()
    assert struct.unpack(">I", prefix)[0] == len(payload)
    return prefix + payload


def framed(msg: bytes) -> bytes:
    assert 0 < len(msg) <= 65535
    return struct.pack(">H", len(msg)) + msg


def proof(identity_seed: bytes, static_secret: bytes) -> bytes:
    sk = Ed25519PrivateKey.from_private_bytes(identity_seed)
    static_public = X25519PrivateKey.from_private_bytes(static_secret).public_key().public_bytes(*RAW)
    return sk.public_key().public_bytes(*RAW) + sk.sign(IDENTITY_CONTEXT + static_public)


def party(initiator: bool, static_secret: bytes, ephemeral_secret: bytes) -> NoiseConnection:
    c = NoiseConnection.from_name(NAME)
    c.set_as_initiator() if initiator else c.set_as_responder()
    c.set_prologue(PROLOGUE)
    c.set_keypair_from_private_bytes(Keypair.STATIC, static_secret)
    c.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral_secret)
    c.start_handshake()
    return c


def main() -> int:
    # noiseprotocol warns about preset ephemeral keys; that is the point of a test vector.
    warnings.filterwarnings("ignore", message="One of ephemeral keypairs")
    root = pathlib.Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "protocol.md").read_text()
    v = vector(doc)
    ok = True

    def check(name: str, got: bytes) -> None:
        nonlocal ok
        same = got == v[name]
        ok &= same
        print(f"{name}: {'match' if same else 'MISMATCH'}")
        if not same:
            print(f"  expected {v[name].hex()}\n  got      {got.hex()}")

    for side in ("initiator", "responder"):
        sk = Ed25519PrivateKey.from_private_bytes(v[f"{side}_identity_seed"])
        check(f"{side}_identity_public", sk.public_key().public_bytes(*RAW))
        xs = X25519PrivateKey.from_private_bytes(v[f"{side}_static_secret"])
        check(f"{side}_static_public", xs.public_key().public_bytes(*RAW))

    ini = party(True, v["initiator_static_secret"], v["initiator_ephemeral_secret"])
    res = party(False, v["responder_static_secret"], v["responder_ephemeral_secret"])

    m1 = ini.write_message(b"")
    check("message_1", framed(m1))
    assert res.read_message(m1) == b""

    m2 = res.write_message(proof(v["responder_identity_seed"], v["responder_static_secret"]))
    check("message_2", framed(m2))
    p2 = bytes(ini.read_message(m2))
    # What a receiver checks: the proof's key signed the static key the handshake authenticated.
    Ed25519PublicKey.from_public_bytes(p2[:32]).verify(p2[32:], IDENTITY_CONTEXT + v["responder_static_public"])

    m3 = ini.write_message(proof(v["initiator_identity_seed"], v["initiator_static_secret"]))
    check("message_3", framed(m3))
    p3 = bytes(res.read_message(m3))
    Ed25519PublicKey.from_public_bytes(p3[:32]).verify(p3[32:], IDENTITY_CONTEXT + v["initiator_static_public"])
    assert ini.handshake_finished and res.handshake_finished

    hello = hello_frame(doc)
    t1 = ini.encrypt(hello)
    check("transport_1", framed(t1))
    assert bytes(res.decrypt(v["transport_1"][2:])) == hello

    print("all messages match" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
