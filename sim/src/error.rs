//! [`SimError`]: every way a simulation run can fail. Each invariant violation is its own
//! variant, naming the broken rule and carrying the values, so a failing seed explains itself.

use pp_ledger::Hash;

/// Why a simulation run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Preparing the run failed (data dirs, genesis).
    #[error("setup: {0}")]
    Setup(String),
    /// A host's software returned an error or panicked (turmoil stops the run).
    #[error("host software failed: {0}")]
    Host(String),
    /// A node asked for by name does not exist.
    #[error("no node named {0:?}")]
    UnknownNode(String),
    /// Total balances + stakes differ from genesis supply + minted rewards.
    #[error("{node}: supply not conserved at height {height}: total {total} != genesis {initial} + minted {minted}")]
    SupplyNotConserved {
        /// The node.
        node: String,
        /// Its height.
        height: u64,
        /// Sum of balances and stakes.
        total: u128,
        /// Genesis supply.
        initial: u128,
        /// Rewards minted according to its state.
        minted: u128,
    },
    /// Minted rewards differ from one block reward per block.
    #[error(
        "{node}: minted {minted} at height {height}, expected {expected} (one reward per block)"
    )]
    MintedMismatch {
        /// The node.
        node: String,
        /// Its height.
        height: u64,
        /// Minted according to its state.
        minted: u128,
        /// height × block reward.
        expected: u128,
    },
    /// A block on a node's best chain was refused by an independent replay of the rules.
    #[error("{node}: block {index} ({hash}) on its best chain breaks a rule: {error}")]
    RuleViolation {
        /// The node.
        node: String,
        /// Block index.
        index: u64,
        /// Block hash.
        hash: Hash,
        /// What the independent chain said.
        error: String,
    },
    /// The node's tip is not the tip the fork-choice rule picks from the same blocks.
    #[error("{node}: tip {node_tip} at height {height}, but the rules applied to the same blocks give {checker_tip}")]
    ForkChoiceMismatch {
        /// The node.
        node: String,
        /// Its height.
        height: u64,
        /// Its tip.
        node_tip: Hash,
        /// The independent replay's tip.
        checker_tip: Hash,
    },
    /// The node's ledger state differs from an independent replay of its best chain.
    #[error("{node}: ledger state at height {height} differs from a replay of its own best chain")]
    StateMismatch {
        /// The node.
        node: String,
        /// Its height.
        height: u64,
    },
    /// A running node rolled back more than `k` blocks.
    #[error("{node}: rolled back {depth} blocks (k = {k}) from height {from}")]
    RollbackTooDeep {
        /// The node.
        node: String,
        /// Blocks undone.
        depth: u64,
        /// The limit.
        k: u64,
        /// Height before.
        from: u64,
    },
    /// A node's best chain got shorter without a restart.
    #[error("{node}: height went down from {from} to {to}")]
    HeightDecreased {
        /// The node.
        node: String,
        /// Before.
        from: u64,
        /// After.
        to: u64,
    },
    /// After a crash and restart the node's chain is not the one it had acknowledged.
    #[error("{node}: restarted at height {after_height} ({after}) but had {before_height} ({before}) before the crash")]
    LostOnRestart {
        /// The node.
        node: String,
        /// Height before the crash.
        before_height: u64,
        /// Tip before the crash.
        before: Hash,
        /// Height after restart.
        after_height: u64,
        /// Tip after restart.
        after: Hash,
    },
    /// A node adopted a block that contradicts the settled part of the common prefix (more than
    /// `k` below the common prefix of the honest nodes at some earlier time).
    #[error("{node}: adopted {held} at index {index}, but {settled} was settled there (k = {k})")]
    SettledRolledBack {
        /// The node.
        node: String,
        /// Block index.
        index: u64,
        /// The settled block.
        settled: Hash,
        /// What the node adopted.
        held: Hash,
        /// The limit.
        k: u64,
    },
    /// A block once held by a majority of the nodes is no longer on a node's best chain.
    #[error(
        "block {hash} at index {index} was held by a majority, but {node} holds {held:?} there"
    )]
    MajorityBlockLost {
        /// Block index.
        index: u64,
        /// The block held by a majority.
        hash: Hash,
        /// A node that lost it.
        node: String,
        /// What that node holds at the index (`None`: its chain is shorter).
        held: Option<Hash>,
    },
    /// The live nodes did not agree within the allowed time.
    #[error("not converged after {waited_ms} ms of simulated time: {detail}")]
    NotConverged {
        /// Simulated time waited.
        waited_ms: u64,
        /// Tips, heights and mempool sizes per node.
        detail: String,
    },
    /// Two converged nodes hold different ledger states at the same tip.
    #[error("{a} and {b} share tip {tip} but their ledger states differ")]
    DivergentState {
        /// One node.
        a: String,
        /// Another.
        b: String,
        /// The common tip.
        tip: Hash,
    },
    /// A transaction a node acknowledged (accepted into its journaled mempool) never made it
    /// into the final chain.
    #[error("transaction {id} acknowledged by {node} (nonce {nonce}) is not in the final chain")]
    TxLost {
        /// Transaction id.
        id: Hash,
        /// The node that acknowledged it.
        node: String,
        /// Its nonce.
        nonce: u64,
    },
    /// A scenario-specific expectation failed.
    #[error("scenario expectation failed: {0}")]
    Expectation(String),
}
