//! Property tests: the ledger invariants hold over ANY sequence of valid and invalid
//! transactions and blocks, the canonical codec round-trips and never panics, and the chain's
//! tip state is always exactly the replay of its best chain.

mod common;

use common::*;
use pp_ledger::{
    AddOutcome, Block, BlockHeader, Chain, Decode, Encode, Genesis, Hash, InitialBalance,
    LedgerState, PublicKey, RoundRobin, Signature, Transaction, TxBody, TxError, TxKind,
    BLOCK_VERSION,
};
use proptest::prelude::*;

/// One transaction to attempt, described loosely so that many are invalid.
#[derive(Debug, Clone)]
struct Op {
    kind: u8,
    from: u8,
    to: u8,
    amount: u64,
    fee: u64,
    nonce_delta: i8,
    bad_sig: bool,
    id: u8,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..3,
        1u8..=6,
        1u8..=6,
        prop_oneof![8 => 0u64..3_000, 1 => Just(0u64), 1 => Just(u64::MAX), 1 => (u64::MAX - 10)..=u64::MAX],
        prop_oneof![8 => 0u64..50, 1 => Just(u64::MAX)],
        prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
        prop::bool::weighted(0.1),
        0u8..4,
    )
        .prop_map(
            |(kind, from, to, amount, fee, nonce_delta, bad_sig, id)| Op {
                kind,
                from,
                to,
                amount,
                fee,
                nonce_delta,
                bad_sig,
                id,
            },
        )
}

/// A state where key 5 holds nearly `u64::MAX`, so credits to it can overflow. Built without
/// genesis validation on purpose (the ledger must stay safe even then).
fn rich_genesis() -> Genesis {
    let mut g = genesis();
    g.initial_balances.push(InitialBalance {
        account: key(5).public(),
        amount: u64::MAX - 5_000,
    });
    g
}

fn build_tx(o: &Op, next_nonce: u64, gh: &Hash) -> Transaction {
    let ids = ["alice", "bob", "carol", "bad id"];
    let kind = match o.kind {
        0 => TxKind::Transfer {
            to: key(o.to).public(),
        },
        1 => TxKind::Bond {
            stakeholder_id: ids[usize::from(o.id)].into(),
            vrf_key: None,
        },
        _ => TxKind::Unbond,
    };
    let body = TxBody {
        kind,
        from: key(o.from).public(),
        amount: o.amount,
        fee: o.fee,
        nonce: next_nonce.saturating_add_signed(i64::from(o.nonce_delta)),
    };
    let mut tx = body.sign(&key(o.from), gh);
    if o.bad_sig {
        tx.signature.0[0] ^= 0x40;
    }
    tx
}

fn raw_block(producer: PublicKey, transactions: Vec<Transaction>) -> Block {
    Block {
        header: BlockHeader {
            version: BLOCK_VERSION,
            index: 1,
            slot: 1,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer,
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        },
        signature: Signature::default(),
        transactions,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn supply_is_conserved_and_rollback_is_exact_over_any_block_sequence(
        blocks in prop::collection::vec(
            (1u8..=6, prop_oneof![4 => 0u64..100, 1 => Just(u64::MAX)], prop::collection::vec(op(), 0..8)),
            1..8,
        )
    ) {
        let g = rich_genesis();
        let gh = g.hash();
        let start = LedgerState::from_genesis(&g);
        let initial = start.total_supply();
        let mut s = start.clone();
        let mut undos = Vec::new();
        for (producer, reward, ops) in &blocks {
            // Nonces follow the state (plus earlier txs of the block) so that many txs are valid.
            let mut pending = std::collections::BTreeMap::new();
            let txs: Vec<Transaction> = ops
                .iter()
                .map(|o| {
                    let n = pending.entry(o.from).or_insert_with(|| s.nonce(&key(o.from).public()));
                    let tx = build_tx(o, *n, &gh);
                    *n += 1;
                    tx
                })
                .collect();
            let before = s.clone();
            match s.apply_block(&raw_block(key(*producer).public(), txs), &gh, *reward) {
                Ok(undo) => {
                    prop_assert_eq!(s.minted(), before.minted() + u128::from(*reward));
                    undos.push(undo);
                }
                Err(_) => prop_assert_eq!(&s, &before),
            }
            prop_assert_eq!(s.total_supply(), initial + s.minted());
            // Zero stakes are never stored.
            prop_assert!(s.stakes().values().all(|&v| v > 0));
        }
        for undo in undos.into_iter().rev() {
            s.rollback(undo);
        }
        prop_assert_eq!(s, start);
    }

    #[test]
    fn single_transactions_never_break_supply_or_panic(ops in prop::collection::vec(op(), 1..30)) {
        let g = rich_genesis();
        let gh = g.hash();
        let mut s = LedgerState::from_genesis(&g);
        let initial = s.total_supply();
        for o in &ops {
            let tx = build_tx(o, s.nonce(&key(o.from).public()), &gh);
            let before = s.clone();
            let checked = s.check_tx(&tx, &gh);
            prop_assert_eq!(&s, &before);
            let applied = s.apply_tx(&tx, &gh, &key(6).public());
            // check_tx predicts apply_tx except for the fee credit to the producer.
            if applied.is_ok() {
                prop_assert!(checked.is_ok());
            } else if checked.is_ok() {
                let is_fee_overflow = matches!(applied, Err(TxError::Overflow { .. }));
                prop_assert!(is_fee_overflow);
            }
            if applied.is_err() {
                prop_assert_eq!(&s, &before);
            }
            prop_assert_eq!(s.total_supply(), initial);
        }
    }

    #[test]
    fn replayed_transaction_is_always_rejected(
        from in 1u8..=3, to in 1u8..=6, amount in 1u64..100_000, fee in 0u64..100, extra in 0usize..3,
    ) {
        let g = genesis();
        let gh = g.hash();
        let mut s = LedgerState::from_genesis(&g);
        let p = key(6).public();
        let tx = transfer(from, to, amount, fee, 0, &gh);
        s.apply_tx(&tx, &gh, &p).unwrap();
        for n in 1..=extra as u64 {
            s.apply_tx(&transfer(from, to, 1, 0, n, &gh), &gh, &p).unwrap();
        }
        let replay = s.check_tx(&tx, &gh);
        let is_bad_nonce = matches!(replay, Err(TxError::BadNonce { .. }));
        prop_assert!(is_bad_nonce);
        // Within one block, the second copy fails and the whole block is refused.
        let mut fresh = LedgerState::from_genesis(&g);
        let before = fresh.clone();
        let r = fresh.apply_block(&raw_block(p, vec![tx.clone(), tx]), &gh, 5);
        let at_index_1 = matches!(r, Err(pp_ledger::BlockError::Tx { index: 1, .. }));
        prop_assert!(at_index_1);
        prop_assert_eq!(fresh, before);
    }

    #[test]
    fn transaction_and_block_round_trip_through_canonical_bytes_and_json(
        kind in 0u8..3, from in any::<[u8; 32]>(), to in any::<[u8; 32]>(),
        id in "[A-Za-z0-9._-]{0,40}", amount in any::<u64>(), fee in any::<u64>(),
        nonce in any::<u64>(), sig in prop::collection::vec(any::<u8>(), 64),
        index in any::<u64>(), slot in any::<u64>(), ts in any::<u64>(), diff in any::<u32>(),
        hnonce in any::<u64>(), ntx in 0usize..4,
    ) {
        let kind = match kind {
            0 => TxKind::Transfer { to: PublicKey(to) },
            1 => TxKind::Bond { stakeholder_id: id, vrf_key: None },
            _ => TxKind::Unbond,
        };
        let mut s = [0u8; 64];
        s.copy_from_slice(&sig);
        let tx = Transaction {
            body: TxBody { kind, from: PublicKey(from), amount, fee, nonce },
            signature: Signature(s),
        };
        let bytes = tx.to_canonical_bytes();
        prop_assert_eq!(bytes.len(), tx.encoded_len());
        prop_assert_eq!(Transaction::from_canonical_bytes(&bytes), Ok(tx.clone()));
        let json = serde_json::to_string(&tx).unwrap();
        prop_assert_eq!(serde_json::from_str::<Transaction>(&json).unwrap(), tx.clone());

        let header = BlockHeader {
            version: BLOCK_VERSION, index, slot, prev_hash: Hash(to), tx_root: Hash(from), state_root: Hash(to),
            producer: PublicKey(to), timestamp: ts, difficulty: diff, vrf: None, ocert: None, nonce: hnonce,
        };
        prop_assert_eq!(BlockHeader::from_canonical_bytes(&header.canonical_bytes()), Ok(header.clone()));
        let block = Block { header, signature: Signature(s), transactions: vec![tx; ntx] };
        let bytes = block.to_canonical_bytes();
        prop_assert_eq!(bytes.len(), block.encoded_len());
        prop_assert_eq!(Block::from_canonical_bytes(&bytes), Ok(block.clone()));
        let json = serde_json::to_string(&block).unwrap();
        prop_assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block);
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Transaction::from_canonical_bytes(&bytes);
        let _ = TxBody::from_canonical_bytes(&bytes);
        let _ = BlockHeader::from_canonical_bytes(&bytes);
        let _ = Block::from_canonical_bytes(&bytes);
    }

    #[test]
    fn corrupted_block_bytes_never_panic_and_never_decode_to_the_same_block(
        pos in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let g = genesis();
        let gh = g.hash();
        let b = block_on(&g, &g.block(), 1, vec![transfer(3, 4, 5, 1, 0, &gh), bond(3, "carol", 5, 0, 1, &gh)]);
        let mut bytes = b.to_canonical_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(decoded) = Block::from_canonical_bytes(&bytes) {
            prop_assert_ne!(decoded, b);
        }
    }

    #[test]
    fn chain_tip_state_is_always_the_replay_of_the_best_chain(
        plan in prop::collection::vec((any::<prop::sample::Index>(), 1u64..4, 0u8..3), 1..14)
    ) {
        let g = genesis();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let mut built: Vec<Block> = vec![g.block()];
        for (pick, dslot, txn) in plan {
            let parent = built[pick.index(built.len())].clone();
            let slot = parent.header.slot + dslot;
            // Transactions valid against the parent's state, if the parent is held.
            let txs = if txn > 0 && c.contains(&parent.hash()) {
                let n = if c.is_on_best_chain(&parent.hash()) { c.state().nonce(&key(3).public()) } else { 0 };
                (0..u64::from(txn)).map(|i| transfer(3, 4, 10, 1, n + i, &gh)).collect()
            } else {
                vec![]
            };
            let b = block_on(&g, &parent, slot, txs);
            let r = c.verify_and_add(b.clone(), LATE);
            if matches!(r, Ok(AddOutcome::Extended | AddOutcome::SideChain | AddOutcome::Reorg { .. })) {
                built.push(b);
            }
            // Invariants after every step, whatever happened.
            let mut replay = LedgerState::from_genesis(&g);
            for i in 1..=c.height() {
                let blk = c.block_at(i).unwrap();
                prop_assert_eq!(blk.header.index, i);
                prop_assert_eq!(blk.header.prev_hash, c.block_at(i - 1).unwrap().hash());
                replay.apply_block(blk, &gh, g.block_reward).unwrap();
            }
            prop_assert_eq!(c.state(), &replay);
            prop_assert_eq!(c.total_minted(), u128::from(c.height()) * 10);
            prop_assert_eq!(c.state().total_supply(), u128::from(g.initial_supply()) + c.total_minted());
            // No held block is longer than the best chain (longest chain wins)...
            for h in &built {
                if c.contains(&h.hash()) && !c.equivocations().iter().any(|e| e.second == h.hash()) {
                    prop_assert!(h.header.index <= c.height());
                }
            }
        }
    }

    #[test]
    fn chain_rejects_corrupted_blocks_without_panicking_or_changing_state(
        pos in any::<prop::sample::Index>(), flip in 1u8..=255,
    ) {
        let g = genesis();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let b = block_on(&g, &g.block(), 1, vec![transfer(3, 4, 5, 1, 0, &gh)]);
        let mut bytes = b.to_canonical_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(bad) = Block::from_canonical_bytes(&bytes) {
            let before = c.state().clone();
            // Every byte is covered: header bytes by the block signature, transactions by the tx root.
            prop_assert!(c.verify_and_add(bad, LATE).is_err());
            prop_assert_eq!(c.state(), &before);
            prop_assert_eq!(c.height(), 0);
        }
        prop_assert_eq!(c.verify_and_add(b, LATE), Ok(AddOutcome::Extended));
    }
}
