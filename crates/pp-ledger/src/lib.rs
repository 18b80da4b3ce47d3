//! # pp-ledger
//!
//! The rules of the pp-ledger chain that every node must agree on: transactions, blocks, their
//! canonical encoding and hashes, the genesis, the ledger state and the chain with fork choice.
//! Pure and deterministic: no I/O, no clock, no async; time and keys are passed in.
//!
//! ```
//! use pp_ledger::{Block, Genesis, Hash, KeyPair, Transaction};
//!
//! let producer = KeyPair::from_seed([1u8; 32]);
//! let genesis = Genesis::devnet("node0", producer.public(), 1_700_000_000_000);
//! let gh = genesis.hash();
//! let alice = KeyPair::from_seed([2u8; 32]);
//! let tx = Transaction::transfer(&producer, alice.public(), 100, 1, 0, &gh);
//! assert!(tx.verify_signature(&gh).is_ok());
//! // The header commits the root of the state after the block (here any: nothing checks it).
//! let block = Block::produce(&genesis.block().header, 1, genesis.genesis_time + 1000,
//!                            genesis.difficulty, vec![tx], Hash::ZERO, &producer, &gh,
//!                            1 << 24).unwrap();
//! assert!(block.hash().to_hex().starts_with("00"));
//! ```
//!
//! Validation runs in two typed stages. The stateless stage ([`BlockVerifier`], pure and usable
//! on any thread, off any lock) checks PoW, limits, the Merkle root and every signature (in
//! batches, under the ZIP-215 rule, skipping those in the shared [`SignatureCache`]) and yields a
//! [`VerifiedBlock`] or [`VerifiedTx`]; [`Chain::add_block`], the stateful stage, accepts only a
//! `VerifiedBlock`. [`Chain::verify_and_add`] runs both inline.
//!
//! A [`Chain`] validates blocks (DESIGN §5) and chooses forks; it is generic over the
//! [`ConsensusRules`] that say who leads each slot (`pp_ouroboros::Ouroboros` in a node,
//! [`RoundRobin`] in tests):
//!
//! ```
//! use pp_ledger::{AddOutcome, Block, Chain, Genesis, KeyPair, RoundRobin, Transaction};
//!
//! let producer = KeyPair::from_seed([1u8; 32]);
//! let genesis = Genesis::devnet("node0", producer.public(), 1_700_000_000_000);
//! let mut chain = Chain::new(genesis.clone(), RoundRobin).unwrap();
//! let gh = chain.genesis_hash();
//! let alice = KeyPair::from_seed([2u8; 32]);
//! let tx = Transaction::transfer(&producer, alice.public(), 100, 1, 0, &gh);
//! assert!(chain.state().check_tx(&tx, &gh).is_ok());
//! let slot = 1;
//! assert_eq!(chain.leader_for_next(slot), Some(producer.public()));
//! let txs = chain.select_transactions([&tx]);
//! // The header commits the root of the account state tree after the block.
//! let root = chain.state_root_after(&chain.tip_hash(), &producer.public(), &txs).unwrap();
//! let block = Block::produce(&chain.tip().header, slot, genesis.genesis_time + 1000,
//!                            genesis.difficulty, txs, root, &producer, &gh, 1 << 24).unwrap();
//! let now_ms = genesis.genesis_time + 1000;
//! assert_eq!(chain.verify_and_add(block, now_ms), Ok(AddOutcome::Extended));
//! assert_eq!(chain.state().balance(&alice.public()), 100);
//! assert_eq!(chain.height(), 1);
//! ```

pub mod block;
pub mod chain;
pub mod consensus;
pub mod crypto;
pub mod encoding;
pub mod error;
pub mod genesis;
pub mod hash;
pub mod merkle;
pub mod opcert;
pub mod sigbatch;
pub mod sigcache;
pub mod signed_header;
pub mod state;
pub mod state_tree;
pub mod testing;
pub mod tx;
pub mod verified;

pub use block::{
    Block, BlockHeader, HeaderBytes, PowMidstate, VrfEvidence, BLOCK_VERSION, HEADER_LEN,
    NONCE_OFFSET, PRAOS_BLOCK_VERSION, PRAOS_HEADER_LEN, VRF_OUTPUT_BYTES, VRF_PROOF_BYTES,
};
pub use chain::{AddOutcome, Chain, Equivocation, Screened, MAX_EQUIVOCATIONS, MAX_SIDE_BLOCKS};
pub use consensus::{ConsensusRules, StakeMap, VrfKeyMap};
pub use crypto::{KeyPair, PublicKey, Signature, SignatureError};
pub use encoding::{Decode, Decoder, Encode, Encoder};
pub use error::{BlockError, ChainError, DecodeError, HexError, TxError};
pub use genesis::{
    Genesis, GenesisError, InitialBalance, InitialStakeholder, LeaderMode, Ratio,
    DEVNET_ACTIVE_SLOT_COEFF,
};
pub use hash::Hash;
pub use merkle::{merkle_proof, merkle_root, MerkleProof};
pub use opcert::{OpCert, OPCERT_BODY_BYTES, OPCERT_BYTES};
pub use sigbatch::{verify_batch, BatchFailure, SigCheck};
pub use sigcache::{SignatureCache, DEFAULT_SIGNATURE_CACHE_BYTES, SIGNATURE_CACHE_ENTRY_BYTES};
pub use signed_header::SignedHeader;
pub use state::{check_tx_against, Accounts, BlockUndo, LedgerState};
pub use state_tree::{
    account_key, AccountLeaf, MemoryStore, NodeStore, ProofError, StateProof, StateTree,
    StateTreeError,
};
pub use testing::RoundRobin;
pub use tx::{Transaction, TxBody, TxKind};
pub use verified::{
    BlockVerifier, ChunkVerified, PendingBlock, SigChunk, VerifiedBlock, VerifiedTx,
};
