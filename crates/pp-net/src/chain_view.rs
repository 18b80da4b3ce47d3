//! What the owner of the network (the server) lets it see of the chain, to answer requests.

use pp_ledger::{Block, Hash, SignedHeader, Transaction};

/// Read access to the node's best chain. Called from connection tasks, so implementations must
/// return quickly (no long locks, no I/O waits); the network caps `count` before calling.
pub trait ChainView: Send + Sync + 'static {
    /// Index and hash of the best block (announced in `hello`).
    fn tip(&self) -> (u64, Hash);
    /// Up to `count` consecutive blocks of the best chain starting at `from_index`.
    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block>;
    /// Up to `count` headers of the best chain, each with its block's signature, following the
    /// first hash in `locator` that is on the best chain (from genesis if none is).
    fn get_headers(&self, locator: &[Hash], count: u32) -> Vec<SignedHeader>;
    /// True if the node holds the block `hash` (a compact block for it is not rebuilt). The
    /// default holds none.
    fn has_block(&self, _hash: &Hash) -> bool {
        false
    }
    /// True if the node holds the transaction `id` (pending): an `inv_txs` for it is not
    /// fetched. The default holds none.
    fn has_tx(&self, _id: &Hash) -> bool {
        false
    }
    /// The pending transaction `id`, to answer `get_txs`. The default holds none.
    fn get_tx(&self, _id: &Hash) -> Option<Transaction> {
        None
    }
    /// The pending transactions whose id `want` accepts: the candidates from which a compact
    /// block is rebuilt. Called once per compact block; `want` is cheap (a short-id lookup).
    /// The default holds none.
    fn pending_txs(&self, _want: &mut dyn FnMut(&Hash) -> bool) -> Vec<Transaction> {
        Vec::new()
    }
}
