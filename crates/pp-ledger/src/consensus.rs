//! The seam between the ledger and the consensus protocol.
//!
//! The chain must check that a block's producer is the leader of its slot, but who leads depends
//! on epochs, stake snapshots and nonces, which are the business of `pp-ouroboros` (a crate above
//! this one). The chain therefore takes a [`ConsensusRules`] implementation and keeps, beside each
//! block, the consensus state that block left behind; validating a child is then a pure function
//! of (parent's consensus state, parent's stakes, the child's slot).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Debug;

use crate::block::BlockHeader;
use crate::crypto::PublicKey;
use crate::error::BlockError;
use crate::genesis::Genesis;
use crate::hash::Hash;

/// Stake per stakeholder key, in canonical (key byte) order. Zero stakes are absent.
pub type StakeMap = BTreeMap<PublicKey, u64>;

/// Praos: each stakeholder's registered VRF public key (32 bytes, in the genesis form), by the
/// stakeholder's key.
pub type VrfKeyMap = BTreeMap<PublicKey, PublicKey>;

/// Who may produce which slot. Implemented by `pp_ouroboros::Ouroboros`.
pub trait ConsensusRules: Send + Sync {
    /// Whatever the rules need to remember between blocks (epoch, nonce, snapshots).
    type State: Clone + Send + Sync + Debug;

    /// The state before the first block (after the genesis block).
    fn genesis_state(&self, genesis: &Genesis) -> Self::State;

    /// The state a block in `slot` is judged by, given the state its parent left and the stakes
    /// of the ledger after the parent (used for snapshots when epochs are crossed). Must depend
    /// on `slot` only through [`ConsensusRules::epoch_of`]: the chain reuses the answer for
    /// every slot of an epoch.
    fn state_for_slot(
        &self,
        parent: &Self::State,
        slot: u64,
        stakes_at_parent: &StakeMap,
    ) -> Self::State;

    /// [`ConsensusRules::state_for_slot`] for rules that also snapshot the stakeholders'
    /// registered VRF keys (praos): `vrf_keys_at_parent` are the ledger's after the parent, and
    /// take effect at the same epoch boundary as `stakes_at_parent`. The chain calls this form;
    /// the default ignores the keys.
    fn state_for_slot_with_keys(
        &self,
        parent: &Self::State,
        slot: u64,
        stakes_at_parent: &StakeMap,
        vrf_keys_at_parent: &VrfKeyMap,
    ) -> Self::State {
        let _ = vrf_keys_at_parent;
        self.state_for_slot(parent, slot, stakes_at_parent)
    }

    /// The epoch of `slot`: the chain caches [`ConsensusRules::state_for_slot`] per (parent,
    /// epoch). The default treats every slot as its own epoch (always correct, never shared).
    fn epoch_of(&self, slot: u64) -> u64 {
        slot
    }

    /// The leader of `slot` under `state` (as returned by [`ConsensusRules::state_for_slot`]),
    /// or `None` if nobody has stake.
    fn slot_leader(&self, state: &Self::State, slot: u64) -> Option<PublicKey>;

    /// Records an accepted block in the state (e.g. into the epoch's nonce accumulator).
    fn on_block(&self, state: &mut Self::State, block_hash: &Hash);

    /// Checks that `header`'s producer may produce its slot under `state` (as returned by
    /// [`ConsensusRules::state_for_slot`]). The default is the classic rule: the producer is
    /// the one [`ConsensusRules::slot_leader`]. Praos rules check the header's VRF evidence.
    fn check_producer(&self, state: &Self::State, header: &BlockHeader) -> Result<(), BlockError> {
        let slot = header.slot;
        match self.slot_leader(state, slot) {
            None => Err(BlockError::NoLeader { slot }),
            Some(leader) if leader != header.producer => Err(BlockError::WrongLeader {
                slot,
                expected: leader,
                got: header.producer,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Records an accepted block, whose header is `header` and hash `block_hash`, in the state.
    /// The default calls [`ConsensusRules::on_block`]; praos rules read the VRF output instead.
    fn on_header(&self, state: &mut Self::State, header: &BlockHeader, block_hash: &Hash) {
        let _ = header;
        self.on_block(state, block_hash);
    }

    /// Chain selection between two chains of equal length whose tips `candidate` and `ours` are
    /// in the same slot: `Ordering::Less` switches to the candidate. The default (classic, one
    /// leader per slot) keeps ours; praos prefers the lower leader VRF value.
    fn prefer_tip(&self, candidate: &BlockHeader, ours: &BlockHeader) -> Ordering {
        let _ = (candidate, ours);
        Ordering::Equal
    }
}
