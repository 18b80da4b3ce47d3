//! The header lies a light client must refuse, each against the check that refuses it
//! (removing the check makes its test fail), and the honest chains it must follow.

use pp_ledger::{
    Block, ConsensusRules, Genesis, InitialStakeholder, KeyPair, PublicKey, Ratio, Signature,
};
use pp_ouroboros::VrfSecretKey;

use crate::chain::{Applied, ChainError, HeaderChain};
use crate::verify::{
    GenesisStakes, HeaderError, HeaderVerifier, SignedHeader, StakeSource, VerifiedHeader,
};

/// Far in the future: no test header is ahead of this clock.
const NOW: u64 = u64::MAX / 4;

struct Net {
    genesis: Genesis,
    keys: Vec<KeyPair>,
    vrf: Vec<VrfSecretKey>,
    verifier: HeaderVerifier,
    stakes: GenesisStakes,
}

/// Two stakeholders of equal stake, 10-slot epochs, k = 3, difficulty 1.
fn net(praos: bool) -> Net {
    net_with_slots(praos, 1000)
}

/// [`net`] with slots of `slot_ms` (a client polls every half slot).
fn net_with_slots(praos: bool, slot_ms: u64) -> Net {
    let keys = vec![KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32])];
    let vrf = vec![
        VrfSecretKey::from_seed([11; 32]),
        VrfSecretKey::from_seed([12; 32]),
    ];
    let mut g = Genesis::devnet("a", keys[0].public(), 1_700_000_000_000);
    g.initial_stakeholders.push(InitialStakeholder {
        id: "b".into(),
        public_key: keys[1].public(),
        stake: 1_000,
        vrf_key: None,
    });
    g.slots_per_epoch = 10;
    g.slot_duration_ms = slot_ms;
    g.k = 3;
    g.difficulty = 1;
    if praos {
        let vks: Vec<PublicKey> = vrf
            .iter()
            .map(|v| PublicKey(*v.public().as_bytes()))
            .collect();
        g = g.into_praos(Ratio { num: 1, den: 2 }, &vks);
    }
    g.validate().unwrap();
    Net {
        verifier: HeaderVerifier::new(&g).unwrap(),
        stakes: GenesisStakes::new(&g),
        genesis: g,
        keys,
        vrf,
    }
}

impl Net {
    /// The block of stakeholder `who` in `slot` on `parent`, elected or not (praos: its VRF
    /// evidence for the slot even when above its threshold).
    fn block_by(&self, parent: &VerifiedHeader, slot: u64, who: usize) -> Block {
        let gh = self.genesis.hash();
        let vrf = if self.genesis.leader_mode == pp_ledger::LeaderMode::Praos {
            let rules = self.verifier.rules();
            let st = rules.state_for_slot_with_keys(
                &parent.state,
                slot,
                &self.stakes_map(),
                &self.keys_map(),
            );
            let p = pp_ouroboros::prove_leadership::<pp_ouroboros::EcVrf>(
                &self.vrf[who],
                &st.nonce,
                slot,
                u64::MAX,
            )
            .unwrap()
            .unwrap();
            Some(pp_ledger::VrfEvidence {
                output: p.output.0,
                proof: p.proof.0,
            })
        } else {
            None
        };
        Block::produce_with(
            parent.header(),
            slot,
            0,
            self.genesis.difficulty,
            Vec::new(),
            pp_ledger::Hash::ZERO,
            vrf,
            &self.keys[who],
            &gh,
            1 << 24,
        )
        .unwrap()
    }

    fn stakes_map(&self) -> pp_ledger::StakeMap {
        pp_ouroboros::genesis_distribution(&self.genesis)
    }
    fn keys_map(&self) -> pp_ledger::VrfKeyMap {
        pp_ouroboros::genesis_vrf_keys(&self.genesis)
    }

    /// Who may produce `slot` on `parent`: the stakeholders whose block verifies.
    fn leaders(&self, parent: &VerifiedHeader, slot: u64) -> Vec<usize> {
        self.leaders_with(parent, slot, &self.stakes)
    }

    /// [`Net::leaders`] with the stake snapshots of `stakes`.
    fn leaders_with(
        &self,
        parent: &VerifiedHeader,
        slot: u64,
        stakes: &dyn StakeSource,
    ) -> Vec<usize> {
        (0..self.keys.len())
            .filter(|&w| {
                let b = self.block_by(parent, slot, w);
                self.verifier
                    .verify_next(parent, &signed(&b), NOW, stakes)
                    .is_ok()
            })
            .collect()
    }

    /// An honest chain from `parent` over `slots` (a slot with no leader is skipped).
    fn extend(
        &self,
        parent: &VerifiedHeader,
        slots: impl IntoIterator<Item = u64>,
    ) -> Vec<VerifiedHeader> {
        self.extend_with(parent, slots, &self.stakes)
    }

    /// [`Net::extend`] with the stake snapshots of `stakes`.
    fn extend_with(
        &self,
        parent: &VerifiedHeader,
        slots: impl IntoIterator<Item = u64>,
        stakes: &dyn StakeSource,
    ) -> Vec<VerifiedHeader> {
        let mut out: Vec<VerifiedHeader> = Vec::new();
        for slot in slots {
            let p = out.last().unwrap_or(parent).clone();
            let Some(&w) = self.leaders_with(&p, slot, stakes).first() else {
                continue;
            };
            let b = self.block_by(&p, slot, w);
            out.push(
                self.verifier
                    .verify_next(&p, &signed(&b), NOW, stakes)
                    .unwrap(),
            );
        }
        out
    }
}

fn signed(b: &Block) -> SignedHeader {
    SignedHeader {
        header: b.header.clone(),
        signature: b.signature,
    }
}

fn sh(v: &[VerifiedHeader]) -> Vec<SignedHeader> {
    v.iter().map(|v| v.signed.clone()).collect()
}

#[test]
fn an_honest_chain_across_epochs_verifies_classic_and_praos() {
    for praos in [false, true] {
        let n = net(praos);
        let g = n.verifier.genesis_entry();
        // Four epochs: the leaders of epochs 2 and 3 are drawn with η_2, η_3 folded from the
        // chain's own headers.
        let chain = n.extend(&g, 1..40);
        assert!(chain.len() >= 10, "praos {praos}: {} blocks", chain.len());
        assert!(chain.last().unwrap().state.epoch >= 3);
        let mut hc = HeaderChain::in_memory(n.verifier.clone());
        let r = hc.apply(&sh(&chain), NOW, &n.stakes).unwrap();
        assert_eq!(r, Applied::Extended(chain.len() as u64));
        assert_eq!(hc.tip().hash, chain.last().unwrap().hash);
        // Again: nothing new.
        assert_eq!(
            hc.apply(&sh(&chain), NOW, &n.stakes).unwrap(),
            Applied::Nothing
        );
    }
}

/// Lie: a forged header chain with valid proof of work and valid signatures, whose producer
/// was not the slot leader (classic: another stakeholder leads the slot; praos: its VRF output
/// is above its threshold).
#[test]
fn a_producer_that_was_not_the_leader_is_refused() {
    for praos in [false, true] {
        let n = net(praos);
        let g = n.verifier.genesis_entry();
        let honest = n.extend(&g, 1..25);
        // A slot in epoch 2 (η from the headers) someone does not lead, on the honest chain.
        let parent = honest
            .iter()
            .find(|v| v.header().slot >= 20)
            .unwrap()
            .clone();
        let (slot, who) = (parent.header().slot + 1..parent.header().slot + 40)
            .find_map(|s| {
                let l = n.leaders(&parent, s);
                (0..2).find(|w| !l.contains(w)).map(|w| (s, w))
            })
            .unwrap();
        let forged = n.block_by(&parent, slot, who);
        assert!(forged.header.meets_pow());
        forged.verify_signature(&n.genesis.hash()).unwrap();
        let e = n
            .verifier
            .verify_next(&parent, &signed(&forged), NOW, &n.stakes)
            .unwrap_err();
        assert!(
            matches!(e, HeaderError::NotLeader { .. }),
            "praos {praos}: {e}"
        );
        // And through the chain: refused, the tip unchanged.
        let mut hc = HeaderChain::in_memory(n.verifier.clone());
        let upto = honest.iter().position(|v| v.hash == parent.hash).unwrap();
        hc.apply(&sh(&honest[..=upto]), NOW, &n.stakes).unwrap();
        let e = hc.apply(&[signed(&forged)], NOW, &n.stakes).unwrap_err();
        assert!(matches!(
            e,
            ChainError::Header(HeaderError::NotLeader { .. })
        ));
        assert_eq!(hc.tip().hash, parent.hash);
    }
}

/// Lie: a header with a bad signature (another key's, or a corrupted one).
#[test]
fn a_bad_signature_is_refused() {
    for praos in [false, true] {
        let n = net(praos);
        let g = n.verifier.genesis_entry();
        let chain = n.extend(&g, 1..3);
        let mut s = chain[0].signed.clone();
        let other = KeyPair::from_seed([99; 32]);
        let msg = pp_ledger::crypto::signing_message(
            pp_ledger::crypto::Domain::Block,
            &n.genesis.hash(),
            &s.header.hash(),
        );
        s.signature = other.sign(&msg);
        let e = n.verifier.verify_next(&g, &s, NOW, &n.stakes).unwrap_err();
        assert!(
            matches!(e, HeaderError::BadSignature { index: 1, .. }),
            "{e}"
        );
        s.signature = Signature::default();
        assert!(matches!(
            n.verifier.verify_next(&g, &s, NOW, &n.stakes),
            Err(HeaderError::BadSignature { .. })
        ));
    }
}

/// Lie: a `headers` answer that skips an index (or does not link).
#[test]
fn a_headers_answer_that_skips_an_index_or_does_not_link_is_refused() {
    let n = net(false);
    let g = n.verifier.genesis_entry();
    let chain = n.extend(&g, 1..8);
    let mut hc = HeaderChain::in_memory(n.verifier.clone());
    let mut skipping = sh(&chain);
    skipping.remove(3);
    let e = hc.apply(&skipping, NOW, &n.stakes).unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::Header(HeaderError::BadIndex { parent: 3, got: 5 })
        ),
        "{e}"
    );
    assert_eq!(hc.height(), 0, "nothing of a refused batch is kept");
    // A header whose prev_hash is not its parent's (re-mined and re-signed, so only the link
    // is wrong).
    let mut bad = sh(&chain);
    let mut h = bad[2].header.clone();
    h.prev_hash = pp_ledger::Hash([7; 32]);
    h.mine(1 << 24).unwrap();
    let msg = pp_ledger::crypto::signing_message(
        pp_ledger::crypto::Domain::Block,
        &n.genesis.hash(),
        &h.hash(),
    );
    let who = n
        .keys
        .iter()
        .position(|k| k.public() == h.producer)
        .unwrap();
    bad[2] = SignedHeader {
        signature: n.keys[who].sign(&msg),
        header: h,
    };
    let e = hc.apply(&bad, NOW, &n.stakes).unwrap_err();
    assert!(
        matches!(e, ChainError::Header(HeaderError::BadLink { index: 3 })),
        "{e}"
    );
    // The honest answer is taken.
    hc.apply(&sh(&chain), NOW, &n.stakes).unwrap();
    assert_eq!(hc.height(), chain.len() as u64);
}

/// Lie: a longer chain that forks deeper than k is refused; one that forks within k wins.
#[test]
fn a_longer_chain_forking_deeper_than_k_is_refused() {
    let n = net(false);
    let g = n.verifier.genesis_entry();
    let main = n.extend(&g, 1..11);
    assert_eq!(main.len(), 10);
    let mut hc = HeaderChain::in_memory(n.verifier.clone());
    hc.apply(&sh(&main), NOW, &n.stakes).unwrap();
    // From block 2, skipping slot 3: a different branch, 12 blocks long (height 14 > 10).
    let deep = n.extend(&main[1], 4..16);
    assert_eq!(deep.len(), 12);
    let e = hc.apply(&sh(&deep), NOW, &n.stakes).unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::ForkTooDeep {
                fork: 2,
                depth: 8,
                k: 3
            }
        ),
        "{e}"
    );
    assert_eq!(hc.tip().hash, main[9].hash);
    // From block 8 (2 below the tip, within k): longer wins, in two batches.
    let shallow = n.extend(&main[7], 12..16);
    assert_eq!(shallow.len(), 4);
    assert_eq!(
        hc.apply(&sh(&shallow[..2]), NOW, &n.stakes).unwrap(),
        Applied::Candidate { tip: 10 }
    );
    assert_eq!(hc.tip().hash, main[9].hash, "not longer yet");
    assert_eq!(
        hc.locator()[0],
        shallow[1].hash,
        "the candidate is asked to grow"
    );
    assert_eq!(
        hc.apply(&sh(&shallow[2..]), NOW, &n.stakes).unwrap(),
        Applied::Switched {
            rolled_back: 2,
            height: 12
        }
    );
    assert_eq!(hc.tip().hash, shallow[3].hash);
}

#[test]
fn the_store_survives_a_restart_and_refuses_another_network() {
    let n = net(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let g = n.verifier.genesis_entry();
    let main = n.extend(&g, 1..15);
    {
        let mut hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &n.stakes).unwrap();
        hc.apply(&sh(&main), NOW, &n.stakes).unwrap();
        // A shallow switch rewrites the top of the store.
        let k = main.len() - 2;
        let fork = n.extend(
            &main[k - 1],
            main[k].header().slot + 5..main[k].header().slot + 30,
        );
        assert!(fork.len() > 2);
        hc.apply(&sh(&fork), NOW, &n.stakes).unwrap();
    }
    let hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &n.stakes).unwrap();
    assert!(hc.height() > main.len() as u64);
    assert_eq!(hc.stored_height().unwrap(), hc.height());
    drop(hc);
    let other = net(false);
    let e = HeaderChain::open(other.verifier.clone(), &path, NOW, &other.stakes).unwrap_err();
    assert!(matches!(e, ChainError::Corrupt(_)), "{e}");
}

#[test]
fn headers_from_the_future_and_wrong_pow_are_refused() {
    let n = net(false);
    let g = n.verifier.genesis_entry();
    let chain = n.extend(&g, 1..3);
    let s = &chain[0].signed;
    let start = n.genesis.genesis_time + s.header.slot * n.genesis.slot_duration_ms;
    assert!(matches!(
        n.verifier
            .verify_next(&g, s, start - n.genesis.max_clock_skew_ms - 1, &n.stakes),
        Err(HeaderError::SlotInFuture { .. })
    ));
    let mut bad = s.clone();
    while bad.header.meets_pow() {
        bad.header.nonce = bad.header.nonce.wrapping_add(1);
    }
    assert!(matches!(
        n.verifier.verify_next(&g, &bad, NOW, &n.stakes),
        Err(HeaderError::BadPow { .. })
    ));
}

/// A fake full node: serves `answer` for every path, over real HTTP.
async fn fake_full_node(answer: serde_json::Value) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let a = answer.clone();
        async move { axum::Json(a) }
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

/// Lies about a transaction's inclusion, served over HTTP as a full node would (the answer of
/// `GET /proofs/transactions/{id}`, docs/http-api.md), each refused with the check it fails:
/// a proof for another transaction, a stated root that is not the header's, a block not on the
/// verified chain, a header that is not the verified one. The honest answer is accepted.
#[tokio::test]
async fn transaction_proof_lies_are_refused() {
    use crate::proofs::{check_transaction, FullNode, ProofError};
    use pp_ledger::merkle::merkle_proof;
    use pp_ledger::{Hash, Transaction};

    let n = net(false);
    let g = n.verifier.genesis_entry();
    let gh = n.genesis.hash();
    let txs: Vec<Transaction> = (0..5u64)
        .map(|i| Transaction::transfer(&n.keys[0], n.keys[1].public(), 10 + i, 1, i, &gh))
        .collect();
    let slot = 1;
    let w = n.leaders(&g, slot)[0];
    let block = Block::produce_with(
        g.header(),
        slot,
        0,
        n.genesis.difficulty,
        txs.clone(),
        Hash::ZERO,
        None,
        &n.keys[w],
        &gh,
        1 << 24,
    )
    .unwrap();
    let mut hc = HeaderChain::in_memory(n.verifier.clone());
    hc.apply(&[signed(&block)], NOW, &n.stakes).unwrap();
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let answer = |pos: usize, header: &pp_ledger::BlockHeader| {
        serde_json::json!({
            "id": ids[pos],
            "tx_root": header.tx_root,
            "proof": merkle_proof(&ids, pos).unwrap(),
            "block": { "index": header.index, "hash": header.hash(), "header": header },
        })
    };
    let ask = |v: serde_json::Value| async move {
        let (url, task) = fake_full_node(v).await;
        let got = FullNode::new(&url)
            .unwrap()
            .get("/proofs/transactions/x")
            .await;
        task.abort();
        got.unwrap()
    };

    // Honest.
    let ok = check_transaction(&hc, &ids[2], &ask(answer(2, &block.header)).await).unwrap();
    assert_eq!((ok.position, ok.block.hash), (2, block.hash()));
    // Another transaction's proof offered for ids[2].
    let e = check_transaction(&hc, &ids[2], &ask(answer(3, &block.header)).await).unwrap_err();
    assert!(matches!(e, ProofError::BadProof(_)), "{e}");
    // A stated root that is not the header's (and a proof to it).
    let mut v = answer(2, &block.header);
    v["tx_root"] = serde_json::json!(Hash([9; 32]));
    let e = check_transaction(&hc, &ids[2], &ask(v).await).unwrap_err();
    assert!(matches!(e, ProofError::WrongRoot { .. }), "{e}");
    // A header whose tx_root commits to a made-up transaction set, with valid PoW, that the
    // client never verified.
    let fake_ids = vec![ids[2], Hash([1; 32])];
    let mut h = block.header.clone();
    h.tx_root = pp_ledger::merkle_root(&fake_ids);
    h.mine(1 << 24).unwrap();
    let v = serde_json::json!({
        "id": ids[2],
        "tx_root": h.tx_root,
        "proof": merkle_proof(&fake_ids, 0).unwrap(),
        "block": { "index": h.index, "hash": h.hash(), "header": h },
    });
    let e = check_transaction(&hc, &ids[2], &ask(v).await).unwrap_err();
    assert!(matches!(e, ProofError::UnknownHeader(_)), "{e}");
    // The verified block's hash with another header.
    let mut v = answer(2, &block.header);
    v["block"]["header"]["timestamp"] = serde_json::json!(12345);
    let e = check_transaction(&hc, &ids[2], &ask(v).await).unwrap_err();
    assert!(matches!(e, ProofError::HeaderMismatch(_)), "{e}");
    // Not JSON of the documented shape.
    let e = check_transaction(&hc, &ids[2], &ask(serde_json::json!({"id": 1})).await).unwrap_err();
    assert!(matches!(e, ProofError::Malformed(_)), "{e}");
}

/// Praos: of two blocks for one slot on one parent, the client ends on the one the rules
/// prefer, whichever it saw first (as full nodes do).
#[test]
fn equal_tips_of_one_slot_follow_the_praos_tie_break() {
    let n = net(true);
    let g = n.verifier.genesis_entry();
    let base = n.extend(&g, 1..5);
    let parent = base.last().unwrap().clone();
    let slot = (parent.header().slot + 1..parent.header().slot + 200)
        .find(|&s| n.leaders(&parent, s).len() == 2)
        .expect("a slot both stakeholders lead");
    let a = n.block_by(&parent, slot, 0);
    let b = n.block_by(&parent, slot, 1);
    let rules = n.verifier.rules();
    let (win, lose) = if rules.prefer_tip(&a.header, &b.header).is_lt() {
        (a, b)
    } else {
        (b, a)
    };
    for order in [[&lose, &win], [&win, &lose]] {
        let mut hc = HeaderChain::in_memory(n.verifier.clone());
        hc.apply(&sh(&base), NOW, &n.stakes).unwrap();
        hc.apply(&[signed(order[0])], NOW, &n.stakes).unwrap();
        hc.apply(&[signed(order[1])], NOW, &n.stakes).unwrap();
        assert_eq!(hc.tip().hash, win.hash());
    }
}

/// A full node over real pp-net sockets whose `headers` answers skip an index while `lie` is
/// set; its blocks are honest.
struct LyingPeer {
    blocks: Vec<Block>,
    lie: std::sync::atomic::AtomicBool,
}

impl pp_net::ChainView for LyingPeer {
    fn tip(&self) -> (u64, pp_ledger::Hash) {
        let b = self.blocks.last().unwrap();
        (b.header.index, b.hash())
    }
    fn get_blocks(&self, from: u64, count: u32) -> Vec<Block> {
        self.blocks
            .iter()
            .skip(from as usize)
            .take(count as usize)
            .cloned()
            .collect()
    }
    fn get_headers(&self, locator: &[pp_ledger::Hash], count: u32) -> Vec<SignedHeader> {
        let from = locator
            .iter()
            .find_map(|h| self.blocks.iter().position(|b| b.hash() == *h))
            .map_or(0, |i| i + 1);
        let mut hs: Vec<_> = self
            .blocks
            .iter()
            .skip(from)
            .take(count as usize)
            .map(SignedHeader::from)
            .collect();
        if self.lie.load(std::sync::atomic::Ordering::SeqCst) && hs.len() > 3 {
            hs.remove(2);
        }
        hs
    }
}

/// Lie over the wire: a `headers` answer that skips an index is refused whole, its peer
/// penalised and dropped; once the peer answers honestly the client follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_headers_skip_an_index_is_refused_and_dropped() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    let n = net(false);
    let g = n.verifier.genesis_entry();
    let chain = n.extend(&g, 1..12);
    let mut blocks = vec![n.genesis.block()];
    for v in &chain {
        blocks.push(Block {
            header: v.signed.header.clone(),
            signature: v.signed.signature,
            transactions: Vec::new(),
        });
    }
    let peer = Arc::new(LyingPeer {
        blocks,
        lie: std::sync::atomic::AtomicBool::new(true),
    });
    let (liar, _events) = pp_net::Network::start(
        pp_net::NetConfig::new("liar", n.genesis.hash(), "127.0.0.1:0"),
        pp_net::TcpTransport,
        peer.clone(),
    )
    .await
    .unwrap();
    let client = crate::LightClient::start(crate::LightConfig::new(
        n.genesis.clone(),
        liar.local_addr().to_string(),
    ))
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while client.sync_status().refused == 0 {
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let s = client.sync_status();
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("header 4 follows header 2"),
        "{s:?}"
    );
    assert_eq!(
        client.tip().height,
        0,
        "nothing of the refused answer is kept"
    );
    // Dropped: the liar sees the connection close.
    while liar.peer_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the liar was not dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Honest now: the client reconnects and follows.
    peer.lie.store(false, Ordering::SeqCst);
    while client.tip().height < chain.len() as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "never caught up: {:?}",
            client.sync_status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(client.tip().hash, chain.last().unwrap().hash);
    client.shutdown().await;
    liar.shutdown().await;
}

/// A full node over real pp-net sockets whose chain grows by one block every few milliseconds
/// (`visible` blocks are served); it counts the `get_headers` it answers.
struct GrowingPeer {
    blocks: Vec<Block>,
    visible: std::sync::atomic::AtomicUsize,
    asked: std::sync::atomic::AtomicUsize,
}

impl pp_net::ChainView for GrowingPeer {
    fn tip(&self) -> (u64, pp_ledger::Hash) {
        let n = self.visible.load(std::sync::atomic::Ordering::SeqCst);
        let b = &self.blocks[n - 1];
        (b.header.index, b.hash())
    }
    fn get_blocks(&self, _: u64, _: u32) -> Vec<Block> {
        Vec::new()
    }
    fn get_headers(&self, locator: &[pp_ledger::Hash], count: u32) -> Vec<SignedHeader> {
        use std::sync::atomic::Ordering;
        self.asked.fetch_add(1, Ordering::SeqCst);
        let n = self.visible.load(Ordering::SeqCst);
        let from = locator
            .iter()
            .find_map(|h| self.blocks[..n].iter().position(|b| b.hash() == *h))
            .map_or(0, |i| i + 1);
        self.blocks[..n]
            .iter()
            .skip(from)
            .take(count as usize)
            .map(SignedHeader::from)
            .collect()
    }
}

/// The genesis and an honest chain of `n` over `slots` (headers only), `visible` of them
/// shown, served by a [`GrowingPeer`] over real pp-net sockets as node `name`.
async fn serve_growing(
    n: &Net,
    slots: std::ops::Range<u64>,
    visible: usize,
    name: &str,
) -> (
    std::sync::Arc<GrowingPeer>,
    pp_net::Network<pp_net::TcpTransport>,
) {
    let g = n.verifier.genesis_entry();
    let chain = n.extend(&g, slots);
    let mut blocks = vec![n.genesis.block()];
    for v in &chain {
        blocks.push(Block {
            header: v.signed.header.clone(),
            signature: v.signed.signature,
            transactions: Vec::new(),
        });
    }
    let peer = std::sync::Arc::new(GrowingPeer {
        blocks,
        visible: std::sync::atomic::AtomicUsize::new(visible),
        asked: std::sync::atomic::AtomicUsize::new(0),
    });
    let (server, _events) = pp_net::Network::start(
        pp_net::NetConfig::new(name, n.genesis.hash(), "127.0.0.1:0"),
        pp_net::TcpTransport,
        peer.clone(),
    )
    .await
    .unwrap();
    (peer, server)
}

/// Following a network whose blocks come every 10 ms, each announced, the client asks at most
/// once per [`crate::client::MIN_HEADERS_INTERVAL`]: well inside the 20 requests/s a full node
/// allows a peer. Unpaced, every announcement woke a request and every answer that brought a
/// header another (about two per block: 200/s here), which a full node bans as a flood after
/// 2 s, with the client's address (seen against a 25 ms-slot testnet: the ban cut a node off
/// from its peers on the same host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_fast_chain_the_client_paces_its_header_requests() {
    use std::sync::atomic::Ordering;

    let n = net(false);
    let (peer, server) = serve_growing(&n, 1..301, 2, "fast").await;
    let total = peer.blocks.len();
    let client = crate::LightClient::start(crate::LightConfig::new(
        n.genesis.clone(),
        server.local_addr().to_string(),
    ))
    .await
    .unwrap();
    // One new block every 10 ms for 3 s, each announced as a full node announces its blocks
    // (a `new_header`: taken if it hangs from the client's tip; one that does not, because the
    // client has not taken the one before yet, sends it to `get_headers`).
    while server.peer_count() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let start = std::time::Instant::now();
    while peer.visible.load(Ordering::SeqCst) < total {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let shown = peer.visible.fetch_add(1, Ordering::SeqCst);
        server.broadcast_block(&peer.blocks[shown], None);
    }
    let grown = start.elapsed();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while client.tip().height < (total - 1) as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "never caught up: {:?}",
            client.sync_status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let asked = peer.asked.load(Ordering::SeqCst);
    let elapsed = start.elapsed();
    let allowed =
        elapsed.as_millis() as usize / crate::client::MIN_HEADERS_INTERVAL.as_millis() as usize + 2;
    assert!(
        asked <= allowed,
        "{asked} get_headers in {elapsed:?} (chain grown in {grown:?}): more than {allowed}"
    );
    assert!(server.bans().is_empty(), "{:?}", server.bans());
    client.shutdown().await;
    server.shutdown().await;
}

/// Blocks of an honest chain over slots 1..12 of a network with 60 s slots (a client polls
/// every 30 s: within a test it learns of a block only from an announcement or by asking after
/// one), and a [`GrowingPeer`] serving it over real pp-net sockets with `visible` blocks shown.
async fn slow_network(
    visible: usize,
) -> (
    Net,
    std::sync::Arc<GrowingPeer>,
    pp_net::Network<pp_net::TcpTransport>,
) {
    let n = net_with_slots(false, 60_000);
    let (peer, server) = serve_growing(&n, 1..12, visible, "node").await;
    (n, peer, server)
}

/// Polls `cond` every 5 ms for up to 5 s.
async fn within_5s(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    cond()
}

/// The verified header at `index` of `peer`'s chain, as the verifier sees it (for forging
/// blocks on it).
fn verified_at(n: &Net, peer: &GrowingPeer, index: usize) -> VerifiedHeader {
    let g = n.verifier.genesis_entry();
    let headers: Vec<SignedHeader> = peer.blocks[1..=index]
        .iter()
        .map(SignedHeader::from)
        .collect();
    n.verifier
        .verify_chain(&g, &headers, NOW, &n.stakes)
        .unwrap()
        .pop()
        .unwrap_or(g)
}

/// Shows block `index` of `peer` and announces it as a full node does after adopting it (to a
/// headers-only client: a `new_header`).
fn show_and_announce(peer: &GrowingPeer, server: &pp_net::Network<pp_net::TcpTransport>) {
    let shown = peer
        .visible
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    server.broadcast_block(&peer.blocks[shown], None);
}

/// Headers-only by default: a block a full node announces reaches the client's tip from its
/// `new_header` alone, verified, without a `get_headers` round trip (the client would otherwise
/// learn of it only at its next poll, 30 s away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_header_extends_the_tip_without_asking() {
    use std::sync::atomic::Ordering;

    let (n, peer, server) = slow_network(5).await;
    let config = crate::LightConfig::new(n.genesis.clone(), server.local_addr().to_string());
    assert!(config.headers_only, "the default");
    let client = crate::LightClient::start(config).await.unwrap();
    assert!(within_5s(|| client.tip().height == 4).await, "initial sync");
    // The answer that brought headers is followed by one that brings none; then it waits.
    assert!(within_5s(|| peer.asked.load(Ordering::SeqCst) >= 2).await);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let asked = peer.asked.load(Ordering::SeqCst);
    for height in 5..=7 {
        show_and_announce(&peer, &server);
        assert!(
            within_5s(|| client.tip().height == height).await,
            "the announced block {height} was not taken: {:?}",
            client.sync_status()
        );
    }
    assert_eq!(client.tip().hash, peer.blocks[7].hash());
    assert_eq!(client.sync_status().announced, 3);
    assert_eq!(
        peer.asked.load(Ordering::SeqCst),
        asked,
        "no get_headers was needed"
    );
    let s = server.stats();
    let sent = |kind: &str| {
        s.messages_out
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, v)| *v)
    };
    assert_eq!(sent("new_header"), 3);
    assert_eq!(sent("new_block") + sent("compact_block"), 0);
    client.shutdown().await;
    server.shutdown().await;
}

/// How an announced header lies.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// The next block with its signature altered.
    BadSignature,
    /// A block on the tip by a stakeholder not elected for its slot, correctly signed.
    NotLeader,
    /// The next block with another parent (a header the client cannot link).
    NoLink,
}

/// Lies over the wire in a `new_header`: an announced header that hangs from the tip but has a
/// bad signature or a producer that was not the slot leader is refused (never applied), its
/// peer scored and dropped; one that does not link is not applied and sends the client to
/// `get_headers`, which brings the honest chain. In every case the client goes on following
/// the announcements of the honest chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_announcement_is_refused_and_does_not_stall_the_client() {
    use std::sync::atomic::Ordering;

    for lie in [Lie::BadSignature, Lie::NotLeader, Lie::NoLink] {
        let (n, peer, server) = slow_network(5).await;
        let client = crate::LightClient::start(crate::LightConfig::new(
            n.genesis.clone(),
            server.local_addr().to_string(),
        ))
        .await
        .unwrap();
        assert!(within_5s(|| client.tip().height == 4).await, "{lie:?}");
        assert!(within_5s(|| peer.asked.load(Ordering::SeqCst) >= 2).await);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let asked = peer.asked.load(Ordering::SeqCst);
        let tip = verified_at(&n, &peer, 4);
        let honest = &peer.blocks[5];
        let forged = match lie {
            Lie::BadSignature => {
                let mut b = honest.clone();
                b.signature.0[7] ^= 1;
                b
            }
            Lie::NotLeader => {
                let slot = honest.header.slot;
                let leaders = n.leaders(&tip, slot);
                let other = (0..n.keys.len())
                    .find(|w| !leaders.contains(w))
                    .expect("classic: one leader per slot");
                n.block_by(&tip, slot, other)
            }
            Lie::NoLink => {
                let mut b = honest.clone();
                b.header.prev_hash = pp_ledger::Hash([9; 32]);
                b
            }
        };
        server.broadcast_block(&forged, None);
        match lie {
            Lie::BadSignature | Lie::NotLeader => {
                assert!(
                    within_5s(|| client.sync_status().refused == 1).await,
                    "{lie:?} not refused: {:?}",
                    client.sync_status()
                );
                let why = client.sync_status().last_error.unwrap_or_default();
                let expected = match lie {
                    Lie::BadSignature => "bad producer signature",
                    _ => "not the slot leader",
                };
                assert!(why.contains(expected), "{lie:?}: {why}");
                // Dropped: the node sees the connection close (the client redials in 1 s).
                assert!(within_5s(|| server.peer_count() == 0).await, "{lie:?}");
            }
            Lie::NoLink => {
                assert!(
                    within_5s(|| peer.asked.load(Ordering::SeqCst) > asked).await,
                    "an announcement that does not link sends the client to get_headers"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let s = client.sync_status();
                assert_eq!(
                    s.refused, 0,
                    "not scored: an honest node's, if the client is behind"
                );
                assert_eq!(server.peer_count(), 1);
            }
        }
        assert_eq!(
            client.tip().height,
            4,
            "{lie:?}: nothing of the lie is kept"
        );
        assert_eq!(client.tip().hash, peer.blocks[4].hash());
        assert_eq!(client.sync_status().announced, 0);
        // Not stalled: (reconnected if it was dropped) the client follows the next honest
        // announcements.
        assert!(
            within_5s(|| server.peer_count() == 1).await,
            "{lie:?}: no redial"
        );
        let before = peer.asked.load(Ordering::SeqCst);
        assert!(
            matches!(lie, Lie::NoLink)
                || within_5s(|| peer.asked.load(Ordering::SeqCst) > before).await,
            "{lie:?}: a reconnected client asks for headers"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for height in 5..=6 {
            show_and_announce(&peer, &server);
            assert!(
                within_5s(|| client.tip().height == height).await,
                "{lie:?}: stalled at {:?}: {:?}",
                client.tip(),
                client.sync_status()
            );
        }
        assert_eq!(client.tip().hash, peer.blocks[6].hash());
        assert_eq!(client.sync_status().announced, 2, "{lie:?}");
        client.shutdown().await;
        server.shutdown().await;
    }
}

/// A candidate branch forked within k, but the best chain grew past k above its fork point
/// before the branch grew longer: refused.
#[test]
fn a_candidate_left_deeper_than_k_by_the_growing_chain_is_refused() {
    let n = net(false);
    let g = n.verifier.genesis_entry();
    let main = n.extend(&g, 1..8);
    let mut hc = HeaderChain::in_memory(n.verifier.clone());
    hc.apply(&sh(&main), NOW, &n.stakes).unwrap();
    let side = n.extend(&main[5], 9..10);
    assert_eq!(
        hc.apply(&sh(&side), NOW, &n.stakes).unwrap(),
        Applied::Candidate { tip: 7 }
    );
    let more = n.extend(&main[6], 20..24);
    hc.apply(&sh(&more), NOW, &n.stakes).unwrap();
    assert_eq!(hc.height(), 11);
    let longer = n.extend(&side[0], 30..40);
    let e = hc.apply(&sh(&longer), NOW, &n.stakes).unwrap_err();
    assert!(
        matches!(
            e,
            ChainError::ForkTooDeep {
                fork: 6,
                depth: 5,
                k: 3
            }
        ),
        "{e}"
    );
    assert_eq!(hc.tip().hash, more.last().unwrap().hash);
}

/// Lies about a stake snapshot (what the leader checks of epochs ≥ 2 rest on): a stakeholder
/// left out, a stake raised, the snapshot of another block; each refused, the honest one taken.
#[test]
fn stake_snapshot_lies_are_refused() {
    use crate::proofs::{check_stake, ProofError};
    use pp_ledger::state_tree::{
        account_key, total_stake_key, total_stake_value, AccountLeaf, MemoryStore, StateTree,
    };
    use pp_ledger::Encode as _;
    use pp_ledger::Hash;

    let n = net(true);
    let accounts: Vec<PublicKey> = n.keys.iter().map(KeyPair::public).collect();
    let leaf = |i: usize, stake: u64| AccountLeaf {
        balance: 5,
        nonce: 0,
        stake,
        stakeholder_id: Some(format!("s{i}")),
        vrf_key: Some(PublicKey(*n.vrf[i].public().as_bytes())),
    };
    let mut tree = StateTree::new(MemoryStore::new());
    let mut entries: Vec<(Hash, Option<Vec<u8>>)> = (0..2)
        .map(|i| {
            (
                account_key(&accounts[i]),
                Some(leaf(i, 100 * (i as u64 + 1)).to_canonical_bytes()),
            )
        })
        .collect();
    entries.push((total_stake_key(), Some(total_stake_value(300))));
    let root = tree.apply(0, entries.clone()).unwrap();
    let mut header = n.genesis.block().header;
    header.state_root = root;
    let answer = |tree: &StateTree<MemoryStore>,
                  version: u64,
                  header: &pp_ledger::BlockHeader,
                  who: &[usize]| {
        let (tv, tp) = tree.prove(version, &total_stake_key()).unwrap();
        let list: Vec<serde_json::Value> = who
            .iter()
            .map(|&i| {
                let (v, p) = tree.prove(version, &account_key(&accounts[i])).unwrap();
                serde_json::json!({
                    "account": accounts[i], "value": hex::encode(v.unwrap()),
                    "proof": hex::encode(p.to_bytes()),
                })
            })
            .collect();
        serde_json::json!({
            "state_root": tree.root(version).unwrap(),
            "total": { "value": hex::encode(tv.unwrap()), "proof": hex::encode(tp.to_bytes()) },
            "stakeholders": list,
            "block": { "index": header.index, "hash": header.hash(), "header": header },
        })
    };
    let snap = check_stake(&header, &answer(&tree, 0, &header, &[0, 1])).unwrap();
    assert_eq!(snap.stakes.get(&accounts[1]), Some(&200));
    assert_eq!(snap.vrf_keys.len(), 2);
    // A stakeholder left out: the sum is short of the proven total.
    let e = check_stake(&header, &answer(&tree, 0, &header, &[1])).unwrap_err();
    assert!(
        matches!(e, ProofError::BadProof(ref m) if m.contains("missing")),
        "{e}"
    );
    // A stake raised in the leaf (the proof no longer leads to the root).
    let mut v = answer(&tree, 0, &header, &[0, 1]);
    v["stakeholders"][0]["value"] = hex::encode(leaf(0, 1_000).to_canonical_bytes()).into();
    let e = check_stake(&header, &v).unwrap_err();
    assert!(matches!(e, ProofError::BadProof(_)), "{e}");
    // The snapshot of another block (version 1: stake moved), offered for this header.
    entries[0].1 = Some(leaf(0, 250).to_canonical_bytes());
    entries[2].1 = Some(total_stake_value(450));
    tree.apply(1, entries).unwrap();
    let e = check_stake(&header, &answer(&tree, 1, &header, &[0, 1])).unwrap_err();
    assert!(matches!(e, ProofError::WrongRoot { .. }), "{e}");
    let mut v = answer(&tree, 1, &header, &[0, 1]);
    v["state_root"] = serde_json::json!(root);
    let e = check_stake(&header, &v).unwrap_err();
    assert!(matches!(e, ProofError::BadProof(_)), "{e}");
}

/// Stake snapshots that change every epoch (the second stakeholder's stake is 1,000 + 100 × the
/// boundary block's epoch), so that a checkpoint's distributions derived from the wrong
/// boundary block differ from the ones the chain used.
struct EpochStakes {
    genesis: Genesis,
    second: PublicKey,
    verifier: HeaderVerifier,
}

impl EpochStakes {
    fn new(n: &Net) -> EpochStakes {
        EpochStakes {
            genesis: n.genesis.clone(),
            second: n.keys[1].public(),
            verifier: n.verifier.clone(),
        }
    }
}

impl StakeSource for EpochStakes {
    fn stakes_after(
        &self,
        header: &pp_ledger::BlockHeader,
        _: &pp_ledger::Hash,
    ) -> Result<crate::verify::StakeSnapshot, crate::verify::StakeError> {
        let mut stakes = pp_ouroboros::genesis_distribution(&self.genesis);
        let e = self.verifier.rules().epoch_of(header.slot);
        stakes.insert(self.second, 1_000 + 100 * e);
        Ok(crate::verify::StakeSnapshot {
            stakes,
            vrf_keys: pp_ouroboros::genesis_vrf_keys(&self.genesis),
        })
    }
}

/// The genesis entry followed by `chain`: the block of index i at position i.
fn from_genesis(n: &Net, chain: &[VerifiedHeader]) -> Vec<VerifiedHeader> {
    std::iter::once(n.verifier.genesis_entry())
        .chain(chain.iter().cloned())
        .collect()
}

/// The indices of the last two blocks below `checkpoint` after which the epoch changed.
fn last_two_boundaries(all: &[VerifiedHeader], checkpoint: u64) -> Vec<u64> {
    let b: Vec<u64> = (0..checkpoint)
        .filter(|&i| all[i as usize + 1].state.epoch != all[i as usize].state.epoch)
        .collect();
    b[b.len().saturating_sub(2)..].to_vec()
}

fn table_keys<V: redb::Value + 'static>(
    r: &redb::ReadTransaction,
    t: redb::TableDefinition<'_, u64, V>,
) -> Vec<u64> {
    use redb::ReadableTable;
    r.open_table(t)
        .unwrap()
        .iter()
        .unwrap()
        .map(|row| row.unwrap().0.value())
        .collect()
}

/// Pruning keeps exactly what it should, in memory and in the store: full headers for the
/// window (the last k + 1 to k + 1 + step blocks), every block's hash by index, the last two
/// epoch-boundary blocks below the checkpoint, and the stake answers of those blocks only.
#[test]
fn pruning_keeps_the_window_every_hash_and_the_last_two_boundaries() {
    use crate::chain::{prune_step, BOUNDARIES, HASHES, HEADERS, STAKE_PROOFS};
    use redb::{ReadableDatabase, ReadableTable};

    let n = net(true);
    let k = n.genesis.k;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let main = n.extend(&n.verifier.genesis_entry(), 1..75);
    let all = from_genesis(&n, &main);
    let (cp, tip) = {
        let mut hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &n.stakes).unwrap();
        for batch in main.chunks(5) {
            // As the client does before applying a batch that crosses a boundary, but for
            // every block.
            for v in batch {
                hc.store_stake_proof(&v.hash, b"answer").unwrap();
            }
            hc.apply(&sh(batch), NOW, &n.stakes).unwrap();
        }
        let (cp, tip) = (hc.checkpoint(), hc.height());
        assert_eq!(tip, main.len() as u64);
        let len = tip - cp + 1;
        assert!(
            (k + 1..=k + 1 + prune_step(k)).contains(&len),
            "window of {len} blocks"
        );
        for i in 0..=tip {
            assert_eq!(hc.hash_at(i), Some(all[i as usize].hash), "hash {i}");
            assert_eq!(hc.at(i).is_some(), i >= cp, "header {i}");
        }
        assert_eq!(hc.hash_at(tip + 1), None);
        let boundaries = last_two_boundaries(&all, cp);
        assert!(
            boundaries.len() == 2 && boundaries[0] > 10,
            "{boundaries:?}"
        );
        assert_eq!(hc.boundary_indices(), boundaries);
        (cp, tip)
    };
    let boundaries = last_two_boundaries(&all, cp);
    let db = redb::Database::open(&path).unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(table_keys(&r, HEADERS), (cp..=tip).collect::<Vec<_>>());
    assert_eq!(table_keys(&r, HASHES), (1..=tip).collect::<Vec<_>>());
    let hashes = r.open_table(HASHES).unwrap();
    for i in 1..=tip {
        assert_eq!(
            *hashes.get(i).unwrap().unwrap().value(),
            all[i as usize].hash.0
        );
    }
    assert_eq!(table_keys(&r, BOUNDARIES), boundaries);
    let mut kept: Vec<[u8; 32]> = r
        .open_table(STAKE_PROOFS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|row| row.unwrap().0.value().try_into().unwrap())
        .collect();
    let mut expected: Vec<[u8; 32]> = boundaries
        .iter()
        .chain(&(cp..=tip).collect::<Vec<_>>())
        .map(|&i| all[i as usize].hash.0)
        .collect();
    kept.sort_unstable();
    expected.sort_unstable();
    assert_eq!(kept, expected);
}

/// A restart after pruning starts from the stored checkpoint: its epoch state (the stake
/// distributions derived again from the stored boundary blocks) is the one the chain had, the
/// chain resumes across the next epochs, a longer fork from below the checkpoint is refused as
/// deeper than k, and one within k still wins.
#[test]
fn a_restart_after_pruning_resumes_and_still_refuses_a_fork_deeper_than_k() {
    let n = net(true);
    let stakes = EpochStakes::new(&n);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let main = n.extend_with(&n.verifier.genesis_entry(), 1..70, &stakes);
    let all = from_genesis(&n, &main);
    {
        let mut hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &stakes).unwrap();
        hc.apply(&sh(&main), NOW, &stakes).unwrap();
    }
    let mut hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &stakes).unwrap();
    let last = main.last().unwrap();
    assert_eq!(hc.tip().hash, last.hash);
    let cp = hc.checkpoint();
    assert!(cp > 20, "checkpoint {cp}");
    let state = &hc.at(cp).unwrap().state;
    assert_eq!(*state, all[cp as usize].state);
    assert_ne!(
        state.distribution, state.next_distribution,
        "a test that can fail"
    );
    // It resumes, across two more epoch boundaries.
    let slot = last.header().slot;
    let more = n.extend_with(last, slot + 1..slot + 25, &stakes);
    assert_eq!(
        hc.apply(&sh(&more), NOW, &stakes).unwrap(),
        Applied::Extended(more.len() as u64)
    );
    let tip = hc.height();
    // A longer branch from below the checkpoint: deeper than k.
    let p = cp - 2;
    let from = &all[p as usize];
    let deep = n.extend_with(
        from,
        all[p as usize + 1].header().slot + 1..slot + 60,
        &stakes,
    );
    assert!(deep.len() as u64 > tip - p, "longer than the best chain");
    let e = hc.apply(&sh(&deep), NOW, &stakes).unwrap_err();
    assert!(
        matches!(e, ChainError::ForkTooDeep { fork, depth, k: 3 } if fork == p && depth == tip - p),
        "{e}"
    );
    // Within k: a longer branch from the block below the tip wins.
    let parent = hc.at(tip - 1).unwrap().clone();
    let tip_slot = hc.tip().header().slot;
    let shallow = n.extend_with(&parent, tip_slot + 1..tip_slot + 8, &stakes);
    assert!(shallow.len() >= 2);
    assert!(matches!(
        hc.apply(&sh(&shallow), NOW, &stakes).unwrap(),
        Applied::Switched { rolled_back: 1, .. }
    ));
}

/// A proof against a block below the checkpoint (whose header the client no longer keeps)
/// checks against the hash stored at its index: the honest answer is taken, an answer whose
/// header has another hash (another header, or the stored hash with another header) is refused.
#[test]
fn a_proof_against_a_pruned_block_checks_against_its_stored_hash() {
    use crate::proofs::{check_transaction, ProofError};
    use pp_ledger::merkle::merkle_proof;
    use pp_ledger::{Hash, Transaction};

    let n = net(false);
    let g = n.verifier.genesis_entry();
    let gh = n.genesis.hash();
    let txs: Vec<Transaction> = (0..5u64)
        .map(|i| Transaction::transfer(&n.keys[0], n.keys[1].public(), 10 + i, 1, i, &gh))
        .collect();
    let w = n.leaders(&g, 1)[0];
    let block = Block::produce_with(
        g.header(),
        1,
        0,
        n.genesis.difficulty,
        txs.clone(),
        Hash::ZERO,
        None,
        &n.keys[w],
        &gh,
        1 << 24,
    )
    .unwrap();
    let first = n
        .verifier
        .verify_next(&g, &signed(&block), NOW, &n.stakes)
        .unwrap();
    let mut chain = vec![first.clone()];
    chain.extend(n.extend(&first, 2..40));
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let answer = |header: &pp_ledger::BlockHeader, hash: Hash| {
        serde_json::json!({
            "id": ids[2],
            "tx_root": header.tx_root,
            "proof": merkle_proof(&ids, 2).unwrap(),
            "block": { "index": header.index, "hash": hash, "header": header },
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let stored = HeaderChain::open(
        n.verifier.clone(),
        &dir.path().join("h.redb"),
        NOW,
        &n.stakes,
    )
    .unwrap();
    for mut hc in [HeaderChain::in_memory(n.verifier.clone()), stored] {
        hc.apply(&sh(&chain), NOW, &n.stakes).unwrap();
        assert!(hc.checkpoint() > 10 && hc.at(1).is_none(), "block 1 pruned");
        // Honest.
        let ok = check_transaction(&hc, &ids[2], &answer(&block.header, block.hash())).unwrap();
        assert_eq!((ok.block.index, ok.block.hash), (1, block.hash()));
        // Another header (a made-up transaction set, valid PoW) with its own hash.
        let fake_ids = vec![ids[2], Hash([1; 32])];
        let mut h = block.header.clone();
        h.tx_root = pp_ledger::merkle_root(&fake_ids);
        h.mine(1 << 24).unwrap();
        let mut v = answer(&h, h.hash());
        v["proof"] = serde_json::to_value(merkle_proof(&fake_ids, 0).unwrap()).unwrap();
        let e = check_transaction(&hc, &ids[2], &v).unwrap_err();
        assert!(matches!(e, ProofError::UnknownHeader(_)), "{e}");
        // The stored hash, with another header.
        let mut h = block.header.clone();
        h.timestamp += 1;
        let e = check_transaction(&hc, &ids[2], &answer(&h, block.hash())).unwrap_err();
        assert!(matches!(e, ProofError::HeaderMismatch(_)), "{e}");
        // The right header, said to be at another index.
        let mut v = answer(&block.header, block.hash());
        v["block"]["header"]["index"] = serde_json::json!(2);
        let e = check_transaction(&hc, &ids[2], &v).unwrap_err();
        assert!(matches!(e, ProofError::UnknownHeader(_)), "{e}");
    }
}

/// The store's hash list, opened for writing.
type HashTable<'t> = redb::Table<'t, u64, &'static [u8; 32]>;

/// A store whose hash list was edited is refused where that can be detected: an old hash
/// changed (the digest no longer matches), a hash removed (the list has a gap), and, with the
/// digest recomputed to match, the checkpoint's parent or a boundary block's hash changed (they
/// no longer link to or hash to the listed ones). The store untouched opens.
#[test]
fn a_store_whose_hash_list_was_edited_is_refused() {
    use crate::chain::{HASHES, META};
    use pp_ledger::Hash;
    use redb::ReadableTable;

    let n = net(false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let main = n.extend(&n.verifier.genesis_entry(), 1..60);
    let (cp, boundaries) = {
        let mut hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &n.stakes).unwrap();
        hc.apply(&sh(&main), NOW, &n.stakes).unwrap();
        (hc.checkpoint(), hc.boundary_indices())
    };
    assert!(boundaries.len() == 2 && boundaries[1] < cp - 1 && cp > 20);
    let genesis_block = n.verifier.genesis_entry().hash;
    // Copies the store, edits the copy's hash list with `edit`, recomputes the digest if
    // `redigest`, and opens it.
    let tampered = |name: &str, redigest: bool, edit: &dyn Fn(&mut HashTable<'_>)| {
        let copy = dir.path().join(name);
        std::fs::copy(&path, &copy).unwrap();
        {
            let db = redb::Database::open(&copy).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(HASHES).unwrap();
                edit(&mut t);
                if redigest {
                    let mut d = genesis_block;
                    for i in 1..=cp {
                        let h = Hash(*t.get(i).unwrap().unwrap().value());
                        d = Hash::blake2b_parts(&[d.as_bytes(), h.as_bytes()]);
                    }
                    let mut meta = w.open_table(META).unwrap();
                    let mut cpb = meta.get("checkpoint").unwrap().unwrap().value().to_vec();
                    cpb[1..33].copy_from_slice(&d.0);
                    meta.insert("checkpoint", cpb.as_slice()).unwrap();
                }
            }
            w.commit().unwrap();
        }
        HeaderChain::open(n.verifier.clone(), &copy, NOW, &n.stakes)
    };
    let refused = |r: Result<HeaderChain, ChainError>, what: &str| match r {
        Err(ChainError::Corrupt(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected a refusal naming {what:?}: {other:?}"),
    };
    let other = [7u8; 32];
    assert!(tampered("same.redb", true, &|_| {}).is_ok());
    refused(
        tampered("old.redb", false, &|t| {
            t.insert(5, &other).unwrap();
        }),
        "digest",
    );
    refused(
        tampered("gap.redb", false, &|t| {
            t.remove(5).unwrap();
        }),
        "out of sequence",
    );
    refused(
        tampered("parent.redb", true, &|t| {
            t.insert(cp - 1, &other).unwrap();
        }),
        "does not link",
    );
    let b = boundaries[0];
    refused(
        tampered("boundary.redb", true, &|t| {
            t.insert(b, &other).unwrap();
        }),
        "boundary",
    );
}

/// A store of the session-9 layout (every header, no hash list, no checkpoint) is re-verified
/// from the genesis once, its hashes listed and its window pruned.
#[test]
fn a_store_that_kept_every_header_is_listed_and_pruned_at_open() {
    use crate::chain::{HEADERS, META};
    use pp_ledger::Encode as _;

    let n = net(true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.redb");
    let main = n.extend(&n.verifier.genesis_entry(), 1..40);
    {
        let db = redb::Database::create(&path).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut meta = w.open_table(META).unwrap();
            meta.insert("genesis", &n.genesis.hash().0[..]).unwrap();
            let mut t = w.open_table(HEADERS).unwrap();
            for v in &main {
                t.insert(v.header().index, v.signed.to_canonical_bytes().as_slice())
                    .unwrap();
            }
        }
        w.commit().unwrap();
    }
    let all = from_genesis(&n, &main);
    for _ in 0..2 {
        let hc = HeaderChain::open(n.verifier.clone(), &path, NOW, &n.stakes).unwrap();
        assert_eq!(hc.tip().hash, main.last().unwrap().hash);
        assert!(hc.checkpoint() > 10, "pruned");
        for (i, v) in all.iter().enumerate() {
            assert_eq!(hc.hash_at(i as u64), Some(v.hash));
        }
    }
}
