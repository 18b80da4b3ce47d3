//! Block production: when this node leads a slot, it builds a block on the tip, mines it and
//! signs it ([`Core::produce`]); the consensus loop then imports it ([`Core::import_own`]).

use pp_ledger::{Block, BlockHeader, Hash, Signature, Transaction};

use super::Core;

/// Hashes tried between two yields to the runtime while mining, so a block search never stalls
/// the tasks sharing the thread for more than a few milliseconds.
const MINE_CHUNK: u64 = 20_000;

impl Core {
    /// Whether this node leads `slot` on its current tip.
    pub(crate) fn leads(&self, slot: u64) -> bool {
        crate::praos::leader_evidence(
            &self.chain(),
            slot,
            &self.producer_key(),
            self.vrf.as_ref(),
            self.producer.as_ref().map(|p| &p.cert),
        )
        .is_some()
    }

    /// If this node leads `slot` and the tip is from an earlier slot, builds, mines and signs a
    /// block on the tip. Mining yields to the runtime every [`MINE_CHUNK`] hashes and gives up at
    /// the end of the slot.
    pub(crate) async fn produce(&self, slot: u64) -> Option<Block> {
        if self.health.failure().is_some() {
            return None;
        }
        let me = self.producer_key();
        let producer = self.producer.as_ref();
        let (parent, txs, vrf, state_root) = {
            // Mutably: the state root is computed by applying the block to the tip state and
            // undoing it (no copy of the state), which leaves the chain as it was.
            let mut chain = self.chain_mut();
            if chain.tip().header.slot >= slot {
                return None;
            }
            // Classic: the public leader; praos: our VRF proves the slot (evidence for the header).
            let cert = producer.map(|p| &p.cert);
            let vrf = crate::praos::leader_evidence(&chain, slot, &me, self.vrf.as_ref(), cert)?;
            let txs = {
                let mp = self.mempool();
                chain.select_transactions(mp.candidates())
            };
            // The header commits the root of the state after the block (docs/consensus.md).
            let state_root = match chain.state_root_after_tip(&me, &txs) {
                Ok(root) => root,
                Err(e) => {
                    tracing::warn!(slot, error = %e, "cannot compute the state root; not producing");
                    return None;
                }
            };
            (chain.tip().header.clone(), txs, vrf, state_root)
        };
        let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
        let mut header = BlockHeader {
            version: self.genesis.block_version(),
            index: parent.index.checked_add(1)?,
            slot,
            prev_hash: parent.hash(),
            tx_root: pp_ledger::merkle_root(&ids),
            state_root,
            producer: me,
            timestamp: self.now_ms(),
            difficulty: self.genesis.difficulty,
            ocert: vrf.and(producer).map(|p| Box::new(p.cert)),
            vrf: vrf.map(Box::new),
            nonce: 0,
        };
        let deadline = self.slots.slot_start_ms(slot.saturating_add(1));
        // Expected work is 16^difficulty hashes; 64 times that fails with probability e^-64.
        let max_attempts = 16u64
            .checked_pow(header.difficulty)
            .and_then(|w| w.checked_mul(64))
            .unwrap_or(u64::MAX);
        let mut attempts = 0u64;
        loop {
            if header.mine(MINE_CHUNK).is_some() {
                break;
            }
            attempts = attempts.saturating_add(MINE_CHUNK);
            if self.now_ms() >= deadline || attempts >= max_attempts {
                tracing::warn!(
                    slot,
                    difficulty = header.difficulty,
                    "no proof of work found within the slot"
                );
                return None;
            }
            tokio::task::yield_now().await;
        }
        let mut block = Block {
            header,
            signature: Signature::default(),
            transactions: txs,
        };
        // Praos: the certificate's hot key signs; classic: the node's (stakeholder) key.
        block.sign(producer.map_or(&self.key, |p| &p.hot), &self.genesis_hash);
        Some(block)
    }
}
