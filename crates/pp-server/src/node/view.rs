//! The chain as others see it: peers through [`pp_net::ChainView`] (what the fetch server
//! answers), the mempool through [`LedgerView`] (the tip state it judges transactions against),
//! and the address book's store.

use std::sync::Arc;

use pp_ledger::{
    Accounts, Block, Chain, Hash, LedgerState, PublicKey, SignatureCache, Transaction,
};
use pp_net::{AddrStore, BookSnapshot, ChainView, StoreError};
use pp_ouroboros::Ouroboros;

use super::{Core, MAX_SERVE_BLOCKS, MAX_SERVE_HEADERS};
use crate::mempool::AccountView;
use crate::storage::Storage;

/// The tip state seen through the mempool's eyes.
pub(crate) struct LedgerView<'a> {
    pub(crate) state: &'a LedgerState,
    pub(crate) genesis_hash: Hash,
    /// The chain's signature cache: the mempool verified the signature through it already.
    pub(crate) sigs: &'a SignatureCache,
}

impl Accounts for LedgerView<'_> {
    fn balance(&self, a: &PublicKey) -> u64 {
        self.state.balance(a)
    }
    fn nonce(&self, a: &PublicKey) -> u64 {
        self.state.nonce(a)
    }
    fn stake(&self, a: &PublicKey) -> u64 {
        self.state.stake(a)
    }
    fn stakeholder_id(&self, a: &PublicKey) -> Option<&str> {
        self.state.stakeholder_id(a)
    }
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        self.state.stakeholder_key(id)
    }
    fn praos(&self) -> bool {
        Accounts::praos(self.state)
    }
    fn vrf_key(&self, a: &PublicKey) -> Option<PublicKey> {
        self.state.vrf_key(a)
    }
    fn vrf_owner(&self, v: &PublicKey) -> Option<PublicKey> {
        Accounts::vrf_owner(self.state, v)
    }
}

impl AccountView for LedgerView<'_> {
    fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }
    fn signature_cache(&self) -> &SignatureCache {
        self.sigs
    }
}

/// The fetch server's window on the chain (answers `get_blocks` / `get_headers` from peers).
struct CoreView(Arc<Core>);

// A node whose storage failed closes its network (see ``Core::storage_failure` and `tasks::consensus_loop``); until then it
// serves no block or header that its disk may not hold.
impl ChainView for CoreView {
    fn tip(&self) -> (u64, Hash) {
        // The published tip: pp-net asks from its connection tasks, which must not wait for
        // the chain lock an import holds.
        let t = self.0.tip_snapshot();
        (t.height, t.hash)
    }

    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        if self.0.health.failure().is_some() {
            return Vec::new();
        }
        let n = u64::from(count.min(MAX_SERVE_BLOCKS));
        self.0.blocks_from(from_index, n).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read stored blocks to serve");
            Vec::new()
        })
    }

    fn get_headers(&self, locator: &[Hash], count: u32) -> Vec<pp_ledger::SignedHeader> {
        if self.0.health.failure().is_some() {
            return Vec::new();
        }
        let n = u64::from(count.min(MAX_SERVE_HEADERS));
        self.0.headers_after(locator, n).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read stored headers to serve");
            Vec::new()
        })
    }

    fn has_block(&self, hash: &Hash) -> bool {
        self.0.chain().contains(hash)
    }

    fn has_tx(&self, id: &Hash) -> bool {
        self.0.mempool().contains(id)
    }

    fn get_tx(&self, id: &Hash) -> Option<Transaction> {
        self.0.mempool().get(id).cloned()
    }

    fn pending_txs(&self, want: &mut dyn FnMut(&Hash) -> bool) -> Vec<Transaction> {
        self.0.mempool().matching(want)
    }
}

/// The address book's store: the node's database (see [`crate::storage`], table `addr_book`).
struct BookStore(Arc<Storage>);

impl AddrStore for BookStore {
    fn load(&self) -> Result<Option<BookSnapshot>, StoreError> {
        self.0.load()
    }
    fn save(&self, snapshot: &BookSnapshot) -> Result<(), StoreError> {
        self.0.save(snapshot)
    }
}

impl Core {
    /// The tip state of `chain` (this node's, locked by the caller) as the mempool sees it.
    pub(super) fn ledger_view<'a>(&self, chain: &'a Chain<Ouroboros>) -> LedgerView<'a> {
        LedgerView {
            state: chain.state(),
            genesis_hash: self.genesis_hash,
            sigs: chain.signature_cache(),
        }
    }

    /// What the network's fetch server answers peers from.
    pub(crate) fn chain_view(self: &Arc<Core>) -> Arc<dyn ChainView> {
        Arc::new(CoreView(self.clone()))
    }

    /// Where the network keeps its address book.
    pub(crate) fn book_store(&self) -> Arc<dyn AddrStore> {
        Arc::new(BookStore(self.storage.clone()))
    }
}
