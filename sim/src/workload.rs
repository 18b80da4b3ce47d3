//! Deterministic transfers between wallet accounts, and the record of what the nodes
//! acknowledged.
//!
//! Each wallet always submits through its home node, which assigns the nonce (counting its
//! pending transactions): two nodes never hand out the same nonce for one wallet, so every
//! transaction a node acknowledges stays valid and must eventually be in the chain.

use std::collections::BTreeMap;

use pp_ledger::{Hash, KeyPair, PublicKey, Transaction};
use rand::rngs::StdRng;
use rand::Rng;

/// Initial balance of each wallet at genesis.
pub const WALLET_BALANCE: u64 = 10_000_000;

/// One wallet.
#[derive(Debug, Clone)]
pub struct Wallet {
    /// Its key.
    pub key: KeyPair,
    /// Index of the node it submits through.
    pub home: usize,
}

/// A transaction a node accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// Index of the node that accepted it.
    pub node: usize,
    /// The sender.
    pub from: PublicKey,
    /// Its nonce.
    pub nonce: u64,
}

/// The wallets and what was submitted.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// The wallets (their keys are in the genesis).
    pub wallets: Vec<Wallet>,
    /// Accepted transactions by id.
    pub acknowledged: BTreeMap<Hash, Acknowledged>,
    /// Submissions a node refused (with the reason), kept for the report.
    pub refused: Vec<String>,
}

impl Workload {
    /// `count` wallets whose keys derive from `seed`, homed round-robin on `homes` nodes.
    pub fn new(seed: u64, count: usize, homes: usize) -> Workload {
        let wallets = (0..count)
            .map(|i| Wallet {
                key: KeyPair::from_seed(
                    Hash::blake2b_parts(&[
                        b"pp-sim/wallet",
                        &seed.to_be_bytes(),
                        &(i as u64).to_be_bytes(),
                    ])
                    .0,
                ),
                home: i % homes.max(1),
            })
            .collect();
        Workload {
            wallets,
            ..Workload::default()
        }
    }

    /// Picks a wallet whose home is in `live` and a different recipient, and builds a transfer
    /// (amount 1..=100, fee 1..=5) with the nonce `nonce_of` gives. `None` if no wallet fits.
    pub fn next_transfer(
        &self,
        rng: &mut StdRng,
        live: &[usize],
        genesis_hash: &Hash,
        nonce_of: impl Fn(usize, &PublicKey) -> Option<u64>,
    ) -> Option<(usize, Transaction)> {
        let candidates: Vec<&Wallet> = self
            .wallets
            .iter()
            .filter(|w| live.contains(&w.home))
            .collect();
        if candidates.is_empty() || self.wallets.len() < 2 {
            return None;
        }
        let from = candidates[rng.random_range(0..candidates.len())];
        let mut to = &self.wallets[rng.random_range(0..self.wallets.len())];
        if to.key.public() == from.key.public() {
            to = &self.wallets[(self
                .wallets
                .iter()
                .position(|w| w.key.public() == from.key.public())
                .unwrap_or(0)
                + 1)
                % self.wallets.len()];
        }
        let nonce = nonce_of(from.home, &from.key.public())?;
        let amount = rng.random_range(1..=100);
        let fee = rng.random_range(1..=5);
        let tx =
            Transaction::transfer(&from.key, to.key.public(), amount, fee, nonce, genesis_hash);
        Some((from.home, tx))
    }

    /// Records an accepted transaction.
    pub fn acknowledge(&mut self, node: usize, tx: &Transaction) {
        self.acknowledged.insert(
            tx.id(),
            Acknowledged {
                node,
                from: tx.body.from,
                nonce: tx.body.nonce,
            },
        );
    }
}
