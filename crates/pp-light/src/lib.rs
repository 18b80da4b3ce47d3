//! # pp-light
//!
//! A pp-ledger light client: it holds the genesis and the headers, nothing else. It verifies
//! every header from the genesis exactly as a full node does for a header (links, proof of work,
//! slot, the producer's signature, and the producer's election by the full node's own
//! consensus rules, [`pp_ouroboros::Ouroboros`]), follows the full nodes' fork choice (longest
//! valid chain, never rolling back more than k blocks), keeps in redb the recent window of the
//! chain in full and every older block's hash (memory and disk bounded by k, not by history:
//! [`chain`]), and checks every proof a full node's HTTP API serves against its own verified
//! headers.
//! docs/light-client.md says what it trusts, what it checks, and what it does not do yet.
//!
//! - [`verify`]: the pure header checks ([`HeaderVerifier`]);
//! - [`chain`]: the verified header chain, its fork choice and store ([`HeaderChain`]);
//! - [`proofs`]: account and transaction proofs checked against verified headers;
//! - [`client`]: [`LightClient`], syncing over pp-net and answering with proofs;
//! - [`http`]: the HTTP API `ppd light` serves;
//! - [`cli`] (feature `cli`, on by default): the command line of `ppd light` and of the slim
//!   `pp-light` binary, which is built without the full node.
//!
//! Embedding one takes a few lines: see [`LightClient`].

pub mod chain;
#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod http;
pub mod proofs;
pub mod verify;

pub use chain::{Applied, ChainError, HeaderChain};
pub use client::{
    fetch_signed_headers, LightClient, LightConfig, LightError, ServesNothing, SyncStatus, Tip,
};
pub use proofs::{FullNode, ProofError, ProvenAccount, ProvenInclusion};
pub use verify::{
    GenesisStakes, HeaderError, HeaderVerifier, SignedHeader, StakeError, StakeSnapshot,
    StakeSource, VerifiedHeader,
};

#[cfg(test)]
mod tests;
