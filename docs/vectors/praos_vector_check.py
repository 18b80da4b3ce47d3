#!/usr/bin/env python3
"""Independent check of the Praos vectors of docs/leader-election.md §9.3 and §9.5.

Recomputes every threshold Θ of docs/vectors/praos_threshold.tsv with the integer program of
§9.3 (Python integers, no floating point), and the nonce vectors of §9.5 from the documented
VRF outputs, and checks that the document states them. Not run by CI (the Rust tests
crates/pp-ouroboros/tests/praos_threshold.rs and praos_nonce.rs are the CI check); run it by
hand after changing a vector:

    python3 docs/vectors/praos_vector_check.py

Exit status 0 and "all Praos vectors match" when everything is reproduced.
"""

import pathlib
from hashlib import blake2b

H = lambda *parts: blake2b(b"".join(parts), digest_size=32).digest()
ONE = 1 << 64


def mul(x, y):
    return (x * y) >> 64


def neg_ln_one_minus_f(a, b):
    z = (a << 64) // (2 * b - a)
    z2 = mul(z, z)
    power, total, j = z, 0, 0
    while power:
        total += power // (2 * j + 1)
        power = mul(power, z2)
        j += 1
    return 2 * total


def threshold(a, b, stake, total):
    alpha = (stake << 64) // total
    x = mul(alpha, neg_ln_one_minus_f(a, b))
    term, e, n = ONE, ONE, 1
    while True:
        term = mul(term, x) // n
        if term == 0:
            break
        e += term
        n += 1
    return max(ONE - ((2**128 - 1) // e + 1), 0)


def next_nonce(eta, epoch, slots_per_epoch, blocks):
    rho = bytes(32)
    for slot, beta in blocks:
        assert slot // slots_per_epoch == epoch
        if slot % slots_per_epoch < 2 * slots_per_epoch // 3:
            rho = H(rho, H(b"N", beta))
    return H(b"pp-ouroboros/praos-nonce/v1", eta, rho)


def main():
    docs = pathlib.Path(__file__).resolve().parent.parent
    doc = (docs / "leader-election.md").read_text()
    rows = 0
    for line in (docs / "vectors" / "praos_threshold.tsv").read_text().splitlines():
        if line.startswith("#"):
            continue
        a, b, stake, total, theta, _phi = line.split("\t")
        got = threshold(int(a), int(b), int(stake), int(total))
        assert got == int(theta, 16), f"{line}: computed {got:016x}"
        rows += 1
    eta0 = H(b"pp-ouroboros test vector")
    beta = {}
    for slot in (3, 39, 40):
        prefix = f"β({slot})".ljust(7) + "= "
        start = doc.index(prefix) + len(prefix)
        beta[slot] = bytes.fromhex(doc[start:start + 128])
    eta1 = next_nonce(eta0, 0, 60, sorted(beta.items()))
    empty = next_nonce(eta0, 0, 60, [])
    for value in (H(b"N", beta[3]), H(b"N", beta[39]), eta1, empty):
        assert value.hex() in doc, f"{value.hex()} missing from the document"
    print(f"all Praos vectors match ({rows} thresholds, nonce vectors)")


if __name__ == "__main__":
    main()
