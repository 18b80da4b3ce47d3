//! Epoch nonces: the public randomness that seeds each epoch's leader schedule.
//!
//! η_0 = genesis.epoch_nonce, η_1 = η_0, and for e >= 2
//! `η_e = Blake2b-256("pp-ouroboros/nonce/v1" ‖ η_{e−1} ‖ ρ_{e−2})`, where ρ_x accumulates the
//! hashes of the blocks of epoch x in chain order: ρ starts at 32 zero bytes and each block b
//! folds in as `ρ = Blake2b-256(ρ ‖ hash(b))`; an epoch without blocks has ρ = zero.
//!
//! Using ρ of epoch e − 2 (not e − 1) means the nonce of an epoch is fixed a whole epoch before
//! it starts, from blocks that are by then deep in the chain, so every node agrees on it and the
//! last producers of epoch e − 1 cannot grind it.

use pp_ledger::Hash;

/// Domain-separation tag of the nonce evolution.
pub const NONCE_TAG: &[u8] = b"pp-ouroboros/nonce/v1";

/// The accumulator of an epoch without blocks (and the start of every accumulator).
pub const RHO_EMPTY: Hash = Hash::ZERO;

/// η_e from η_{e−1} (`prev`) and ρ_{e−2} (`rho`): Blake2b-256(NONCE_TAG ‖ prev ‖ rho).
pub fn epoch_nonce_next(prev: &Hash, rho: &Hash) -> Hash {
    Hash::blake2b_parts(&[NONCE_TAG, prev.as_bytes(), rho.as_bytes()])
}

/// Folds one block hash into an epoch's accumulator: Blake2b-256(rho ‖ block_hash).
pub fn fold_block_hash(rho: &Hash, block_hash: &Hash) -> Hash {
    Hash::blake2b_parts(&[rho.as_bytes(), block_hash.as_bytes()])
}

/// ρ of an epoch whose blocks, in chain order, have the given hashes.
pub fn rho_of<'a>(block_hashes: impl IntoIterator<Item = &'a Hash>) -> Hash {
    block_hashes
        .into_iter()
        .fold(RHO_EMPTY, |rho, h| fold_block_hash(&rho, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rho_of_no_blocks_is_zero_and_order_matters() {
        let a = Hash::blake2b(b"a");
        let b = Hash::blake2b(b"b");
        assert_eq!(rho_of([]), Hash::ZERO);
        assert_eq!(
            rho_of([&a]),
            Hash::blake2b_parts(&[&[0u8; 32], a.as_bytes()])
        );
        assert_ne!(rho_of([&a, &b]), rho_of([&b, &a]));
    }

    #[test]
    fn nonce_next_is_tagged_blake2b_of_prev_and_rho() {
        let prev = Hash::blake2b(b"eta");
        let rho = Hash::blake2b(b"rho");
        let mut concat = NONCE_TAG.to_vec();
        concat.extend_from_slice(prev.as_bytes());
        concat.extend_from_slice(rho.as_bytes());
        assert_eq!(epoch_nonce_next(&prev, &rho), Hash::blake2b(&concat));
        assert_ne!(epoch_nonce_next(&prev, &rho), epoch_nonce_next(&rho, &prev));
    }
}
