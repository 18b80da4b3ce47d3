//! Unit tests of the node's operations on a real database (no task but the storage writer).

use super::import::ImportError;
use super::*;
use pp_ledger::chain::AddOutcome;
use pp_ledger::error::ChainError;
use pp_ledger::Transaction;

use crate::mempool::{Inserted, MempoolError};

fn next_block(core: &Core, txs: Vec<Transaction>) -> Block {
    let tip = core.chain().tip().header.clone();
    block_on(core, &tip, tip.slot + 1, txs)
}

#[tokio::test]
async fn imported_block_is_stored_and_its_transactions_leave_the_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([61u8; 32]);
    let core = testing::core(dir.path(), &key);
    let to = KeyPair::from_seed([62u8; 32]).public();
    let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    let t1 = Transaction::transfer(&key, to, 5, 1, 1, &core.genesis_hash);
    assert_eq!(core.submit_tx(t0.clone()).await, Ok(Inserted::New));
    assert_eq!(core.submit_tx(t1.clone()).await, Ok(Inserted::New));
    assert_eq!(core.submit_tx(t1.clone()).await, Ok(Inserted::Duplicate));
    assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 2);

    // A block including only t0: t1 stays pending, t0 leaves the pool and the journal.
    let b = next_block(&core, vec![t0.clone()]);
    let imported = core.import_block(b.clone()).await.unwrap();
    assert_eq!(imported.outcome, AddOutcome::Extended);
    assert_eq!(imported.height, 1);
    assert_eq!(core.storage.best_chain().unwrap(), vec![b.hash()]);
    assert_eq!(core.storage.tx_block(&t0.id()).unwrap(), Some(b.hash()));
    assert!(!core.mempool().contains(&t0.id()));
    assert!(core.mempool().contains(&t1.id()));
    assert_eq!(core.storage.mempool_txs().unwrap().0, vec![t1]);
    // The same block again is known, and nothing changes.
    assert_eq!(
        core.import_block(b).await.unwrap().outcome,
        AddOutcome::AlreadyKnown
    );
    assert_eq!(core.metrics.height.get(), 1);
}

/// Records what the node announces, credits and penalizes; every request fails (no peers).
#[derive(Default)]
struct RecordingNet {
    txs: Mutex<Vec<Hash>>,
    /// The peer each relayed transaction was kept from.
    except: Mutex<Vec<Option<pp_net::PeerId>>>,
    credits: Mutex<Vec<pp_net::PeerId>>,
    penalties: Mutex<Vec<(pp_net::PeerId, pp_net::Misbehaviour)>>,
}

impl crate::net::PeerNet for RecordingNet {
    fn local_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 0))
    }
    fn peers(&self) -> Vec<pp_net::PeerInfo> {
        Vec::new()
    }
    fn peer_count(&self) -> usize {
        0
    }
    fn known_addrs(&self) -> Vec<String> {
        Vec::new()
    }
    fn add_known_addr(&self, _addr: &str) {}
    fn broadcast_block(&self, _block: &Block, _except: Option<pp_net::PeerId>) {}
    fn broadcast_tx(&self, tx: &Transaction, except: Option<pp_net::PeerId>) {
        lock(&self.txs).push(tx.id());
        lock(&self.except).push(except);
    }
    fn update_tip(&self, _index: u64, _hash: Hash) {}
    fn penalize(&self, peer: pp_net::PeerId, offence: pp_net::Misbehaviour, _reason: &str) {
        lock(&self.penalties).push((peer, offence));
    }
    fn credit(&self, peer: pp_net::PeerId) {
        lock(&self.credits).push(peer);
    }
    fn connect<'a>(
        &'a self,
        _addr: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<pp_net::PeerInfo, pp_net::NetError>> {
        Box::pin(async { Err(pp_net::NetError::Shutdown) })
    }
    fn get_blocks(
        &self,
        _peer: pp_net::PeerId,
        _from_index: u64,
        _count: u32,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Block>, pp_net::NetError>> {
        Box::pin(async { Err(pp_net::NetError::Shutdown) })
    }
    fn get_headers(
        &self,
        _peer: pp_net::PeerId,
        _locator: Vec<Hash>,
        _count: u32,
    ) -> futures::future::BoxFuture<'_, Result<Vec<pp_ledger::SignedHeader>, pp_net::NetError>>
    {
        Box::pin(async { Err(pp_net::NetError::Shutdown) })
    }
    fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

use testing::block_on;

#[tokio::test]
async fn fork_switch_relays_the_transactions_it_puts_back_in_the_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([66u8; 32]);
    let start = crate::clock::SystemClock.now_ms() - 60_000;
    let core = testing::core_with_genesis_time(dir.path(), &key, start);
    let net = Arc::new(RecordingNet::default());
    core.set_network(net.clone());
    let genesis = core.chain().tip().header.clone();
    let to = KeyPair::from_seed([67u8; 32]).public();
    let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);

    // Our branch: one block (slot 5) holding t0.
    let ours = block_on(&core, &genesis, 5, vec![t0.clone()]);
    assert_eq!(
        core.import_block(ours).await.unwrap().outcome,
        AddOutcome::Extended
    );
    // A longer branch from genesis (slots 3, 4) without t0 wins.
    let c1 = block_on(&core, &genesis, 3, vec![]);
    let c2 = block_on(&core, &c1.header, 4, vec![]);
    assert_eq!(
        core.import_block(c1).await.unwrap().outcome,
        AddOutcome::SideChain
    );
    assert!(matches!(
        core.import_block(c2).await.unwrap().outcome,
        AddOutcome::Reorg { .. }
    ));

    // t0 is pending again, journaled, and announced so that other nodes can include it.
    assert!(core.mempool().contains(&t0.id()));
    assert_eq!(core.storage.mempool_txs().unwrap().0, vec![t0.clone()]);
    assert_eq!(*lock(&net.txs), vec![t0.id()]);
}

#[tokio::test]
async fn refused_block_is_neither_applied_nor_stored() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([63u8; 32]);
    let core = testing::core(dir.path(), &key);
    let mut b = next_block(&core, vec![]);
    b.header.nonce = b.header.nonce.wrapping_add(1); // breaks the signature (and maybe PoW)
    assert!(matches!(
        core.import_block(b).await,
        Err(ImportError::Chain(ChainError::Block(_)))
    ));
    assert_eq!(core.chain().height(), 0);
    assert!(core.storage.best_chain().unwrap().is_empty());
}

#[tokio::test]
async fn batch_import_stops_at_the_first_refused_block_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([64u8; 32]);
    let core = testing::core(dir.path(), &key);
    // Build two valid blocks on a scratch copy of the chain, then a broken third.
    let b1 = next_block(&core, vec![]);
    let b2 = {
        let slot = b1.header.slot + 1;
        testing::block_on(&core, &b1.header, slot, vec![])
    };
    let mut b3 = b2.clone();
    b3.header.index += 1;
    let (done, refused) = core
        .import_blocks(vec![b1.clone(), b2.clone(), b3])
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    assert!(refused.is_some());
    assert_eq!(
        core.storage.best_chain().unwrap(),
        vec![b1.hash(), b2.hash()]
    );
}

#[tokio::test]
async fn chain_view_serves_blocks_and_headers_after_the_fork_point() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([65u8; 32]);
    let core = testing::core(dir.path(), &key);
    let b1 = next_block(&core, vec![]);
    core.import_block(b1.clone()).await.unwrap();
    let view = core.chain_view();
    assert_eq!(view.tip(), (1, b1.hash()));
    let blocks = view.get_blocks(0, 10);
    assert_eq!(blocks.len(), 2);
    let genesis_hash = blocks[0].hash();
    let headers = view.get_headers(&[genesis_hash], 10);
    assert_eq!(headers, vec![pp_ledger::SignedHeader::from(&b1)]);
    headers[0]
        .verify_signature(&core.genesis_hash())
        .expect("a served header carries its block's signature");
    assert!(view.get_headers(&[b1.hash()], 10).is_empty());
}

#[tokio::test]
async fn produce_only_when_leader_and_block_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([66u8; 32]);
    let core = testing::core(dir.path(), &key);
    let b = core.produce(1).await.unwrap();
    assert_eq!(b.header.producer, key.public());
    assert!(b.header.meets_pow());
    core.import_block(b).await.unwrap();
    // Not again for a slot at or before the tip's.
    assert!(core.produce(1).await.is_none());
}

/// What `GET /transactions/{id}` answers: (HTTP status, `status` field).
async fn tx_status(core: &Arc<Core>, id: &Hash) -> (u16, String) {
    use tower::ServiceExt as _;
    let app = crate::http::router(core.clone(), None);
    let req = axum::http::Request::get(format!("/transactions/{id}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (status, v["status"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn no_acknowledged_transaction_is_silently_lost_in_a_fork_switch() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([68u8; 32]);
    let start = crate::clock::SystemClock.now_ms() - 60_000;
    // The test pool holds at most 10 transactions per sender.
    let core = testing::core_with_genesis_time(dir.path(), &key, start);
    let genesis = core.chain().tip().header.clone();
    let to = KeyPair::from_seed([69u8; 32]).public();
    let txs: Vec<Transaction> = (0..12)
        .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
        .collect();
    // Our branch: a block (slot 5) with t0, t1; then t2..t11 acknowledged on top of it.
    let ours = block_on(&core, &genesis, 5, txs[..2].to_vec());
    core.import_block(ours).await.unwrap();
    for t in &txs[2..] {
        assert_eq!(core.submit_tx(t.clone()).await, Ok(Inserted::New));
    }
    // A longer branch without them wins: t0, t1 come back in front of t2..t11.
    let c1 = block_on(&core, &genesis, 3, vec![]);
    let c2 = block_on(&core, &c1.header, 4, vec![]);
    core.import_block(c1).await.unwrap();
    assert!(matches!(
        core.import_block(c2).await.unwrap().outcome,
        AddOutcome::Reorg { .. }
    ));
    // Every acknowledged transaction is still known: pending here.
    for t in &txs {
        assert_eq!(tx_status(&core, &t.id()).await, (200, "pending".into()));
    }
    // The sender's next nonce counts all of them: no `bad_nonce` surprise.
    let next = core.pending_nonce(&key.public());
    assert_eq!(next, 12);
    // And they are journaled: a restart brings them back.
    assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 12);
}

/// Between a fork switch and the mempool's rebuild, a transaction of an abandoned block is in
/// neither the best chain nor the pool: it is still reported pending, never unknown (an import
/// held at that point by the test's pause).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_of_an_abandoned_block_is_pending_while_the_pool_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([73u8; 32]);
    let start = crate::clock::SystemClock.now_ms() - 60_000;
    let core = testing::core_with_genesis_time(dir.path(), &key, start);
    let genesis = core.chain().tip().header.clone();
    let to = KeyPair::from_seed([74u8; 32]).public();
    let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    let ours = block_on(&core, &genesis, 5, vec![t0.clone()]);
    core.import_block(ours).await.unwrap();
    assert_eq!(tx_status(&core, &t0.id()).await, (200, "included".into()));
    let c1 = block_on(&core, &genesis, 3, vec![]);
    let c2 = block_on(&core, &c1.header, 4, vec![]);
    core.import_block(c1).await.unwrap();

    let (paused_tx, paused_rx) = std::sync::mpsc::channel();
    let (resume_tx, resume_rx) = std::sync::mpsc::channel();
    *lock(&core.pause_before_rebuild) = Some((paused_tx, resume_rx));
    let import = {
        let core = core.clone();
        let c2 = c2.clone();
        tokio::spawn(async move { core.import_block(c2).await })
    };
    let paused = tokio::task::spawn_blocking(move || {
        paused_rx.recv_timeout(std::time::Duration::from_secs(10))
    })
    .await
    .unwrap();
    paused.expect("the import reached the pause");
    // Switched, not rebuilt: the chain's tip is the other branch, the pool does not hold t0.
    assert_eq!(core.chain().tip_hash(), c2.hash());
    assert!(!core.mempool().contains(&t0.id()));
    let during = tx_status(&core, &t0.id()).await;
    resume_tx.send(()).unwrap();
    let outcome = import.await.unwrap().unwrap().outcome;
    assert!(matches!(outcome, AddOutcome::Reorg { .. }));
    assert_eq!(during, (200, "pending".into()), "during the rebuild");
    assert_eq!(tx_status(&core, &t0.id()).await, (200, "pending".into()));
    assert!(core.mempool().contains(&t0.id()));
}

#[tokio::test]
async fn a_pending_transaction_beaten_by_a_conflicting_block_is_reported_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([70u8; 32]);
    let core = testing::core(dir.path(), &key);
    let to = KeyPair::from_seed([71u8; 32]).public();
    let mine = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    let other = Transaction::transfer(&key, to, 6, 1, 0, &core.genesis_hash);
    core.submit_tx(mine.clone()).await.unwrap();
    let b = next_block(&core, vec![other.clone()]);
    core.import_block(b).await.unwrap();
    assert_eq!(
        tx_status(&core, &other.id()).await,
        (200, "included".into())
    );
    assert_eq!(tx_status(&core, &mine.id()).await, (200, "dropped".into()));
    assert_eq!(
        core.mempool().dropped(&mine.id()),
        Some(&crate::mempool::DropReason::Conflict)
    );
}

#[tokio::test]
async fn transactions_admitted_together_share_one_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([72u8; 32]);
    let core = testing::core(dir.path(), &key);
    let to = KeyPair::from_seed([73u8; 32]).public();
    let txs: Vec<Transaction> = (0..8)
        .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
        .collect();
    let before = core.metrics.storage_commits.get();
    let results = core.submit_txs(txs.clone()).await;
    assert!(results.iter().all(|r| *r == Ok(Inserted::New)));
    assert_eq!(core.metrics.storage_commits.get() - before, 1);
    assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 8);
    // Admissions queued one after another before any commit are committed together too.
    let more: Vec<Transaction> = (8..10)
        .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
        .collect();
    let before = core.metrics.storage_commits.get();
    let a = core.begin_admit(vec![more[0].clone()], None).await;
    let b = core.begin_admit(vec![more[1].clone()], None).await;
    assert_eq!(b.finish(&core).await, vec![Ok(Inserted::New)]);
    assert_eq!(a.finish(&core).await, vec![Ok(Inserted::New)]);
    assert!(core.metrics.storage_commits.get() - before <= 2);
    assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 10);
}

#[tokio::test]
async fn every_admission_path_relays_new_transactions_once_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([74u8; 32]);
    let core = testing::core(dir.path(), &key);
    let net = Arc::new(RecordingNet::default());
    core.set_network(net.clone());
    let to = KeyPair::from_seed([75u8; 32]).public();
    let tx = |n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash);
    let peer = pp_net::PeerId(7);
    // Submitted here (one, a batch with a duplicate, synchronously): relayed to every peer.
    assert_eq!(core.submit_tx(tx(0)).await, Ok(Inserted::New));
    let batch = core.submit_txs(vec![tx(1), tx(1)]).await;
    assert_eq!(batch, vec![Ok(Inserted::New), Ok(Inserted::Duplicate)]);
    assert_eq!(core.submit_tx_now(tx(2)), Ok(Inserted::New));
    // From a peer: relayed to the others, and the sender credited; a duplicate is neither.
    for _ in 0..2 {
        core.begin_admit(vec![tx(3)], Some(peer))
            .await
            .finish(&core)
            .await;
    }
    // A bad signature from a peer: refused, nothing relayed, the sender penalized.
    let mut bad = tx(4);
    bad.signature = tx(5).signature;
    let r = core
        .begin_admit(vec![bad], Some(peer))
        .await
        .finish(&core)
        .await;
    assert!(matches!(
        r[..],
        [Err(MempoolError::Tx(pp_ledger::TxError::BadSignature(_)))]
    ));
    // A refusal of our own submission blames nobody.
    let too_much = Transaction::transfer(&key, to, u64::MAX / 2, 1, 4, &core.genesis_hash);
    assert!(core.submit_tx(too_much).await.is_err());

    let ids: Vec<Hash> = (0..4).map(|n| tx(n).id()).collect();
    assert_eq!(*lock(&net.txs), ids);
    assert_eq!(*lock(&net.except), vec![None, None, None, Some(peer)]);
    assert_eq!(*lock(&net.credits), vec![peer]);
    assert_eq!(
        *lock(&net.penalties),
        vec![(peer, pp_net::Misbehaviour::InvalidTransaction)]
    );
}

#[tokio::test]
async fn without_p2p_the_network_is_a_no_op_and_connect_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([76u8; 32]);
    let core = testing::core(dir.path(), &key);
    assert!(!core.p2p_enabled());
    assert!(core.net().peers().is_empty());
    // Admission still works and relays to nobody.
    let to = KeyPair::from_seed([77u8; 32]).public();
    let t = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    assert_eq!(core.submit_tx(t).await, Ok(Inserted::New));
    assert!(matches!(
        core.connect("127.0.0.1:9", std::time::Duration::from_secs(1))
            .await,
        Err(ConnectError::P2pDisabled)
    ));
}

/// `GET /status` and the readiness behind `/health` must answer while an import holds the chain
/// write lock or an admission holds the mempool (a 1,000-transaction block keeps the first for
/// tens of milliseconds; under load the second is taken hundreds of times a second). Both locks
/// are held here by another thread, as an import and an admission would; before the tip
/// snapshot, `status_json` waited for them (this test timed out), now it answers at once, with
/// the tip as of the last completed import.
#[tokio::test]
async fn status_and_readiness_answer_while_an_import_holds_the_chain_and_mempool_locks() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([71u8; 32]);
    let core = testing::core(dir.path(), &key);
    let to = KeyPair::from_seed([72u8; 32]).public();
    let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    let t1 = Transaction::transfer(&key, to, 5, 1, 1, &core.genesis_hash);
    assert_eq!(core.submit_tx(t0.clone()).await, Ok(Inserted::New));
    assert_eq!(core.submit_tx(t1).await, Ok(Inserted::New));
    let b = next_block(&core, vec![t0]);
    core.import_block(b.clone()).await.unwrap();

    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let core = core.clone();
        std::thread::spawn(move || {
            let _chain = core.chain_mut();
            let _pool = core.mempool();
            held_tx.send(()).unwrap();
            // Held until the test is done (bounded: the test's own wait below is 10 s).
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(30));
        })
    };
    held_rx.recv().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let core = core.clone();
        std::thread::spawn(move || {
            let v = crate::http::status_json(&core);
            let r = core.readiness();
            let _ = done_tx.send((v, r.height));
        });
    }
    let answered = done_rx.recv_timeout(std::time::Duration::from_secs(10));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let (v, ready_height) = answered.expect("status waited for the chain or mempool lock");
    assert_eq!(v["height"], 1);
    assert_eq!(v["tip_hash"], serde_json::json!(b.hash()));
    assert_eq!(v["pending_transactions"], 1);
    assert_eq!(ready_height, 1);
}

/// Relayed transactions already waiting from one peer are admitted together, their signatures
/// checked as one batch off the runtime; an event from another peer ends the gathering and is
/// handled next, so arrival order is kept. A batch holding a bad signature fails, and each of
/// its transactions is then judged alone exactly as before: the good ones admitted and relayed,
/// the bad one refused and its sender blamed; a valid copy from another peer still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossiped_transactions_are_verified_in_batches_and_judged_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([67u8; 32]);
    let core = testing::core(dir.path(), &key);
    let net = Arc::new(RecordingNet::default());
    core.set_network(net.clone());
    let g = core.genesis_hash;
    let to = KeyPair::from_seed([68u8; 32]).public();
    let tx = |nonce| Transaction::transfer(&key, to, 5, 1, nonce, &g);
    let mut forged = tx(4);
    forged.signature.0[5] ^= 1;
    let (a, b) = (pp_net::PeerId(1), pp_net::PeerId(2));
    // Everything is queued before the loop runs, so what it finds waiting is fixed.
    let (events_tx, events_rx) = mpsc::channel::<pp_net::NetEvent>(64);
    for (peer, t) in [
        (a, tx(0)),
        (a, tx(1)),
        (a, tx(2)),
        (b, tx(3)),
        (a, forged),
        (a, tx(5)),
        (b, tx(4)),
    ] {
        events_tx
            .send(pp_net::NetEvent::NewTx { peer, tx: t })
            .await
            .unwrap();
    }
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let looping = tokio::spawn(crate::tasks::event_loop(core.clone(), events_rx, stop_rx));
    // Relays and credits follow durability (bounded wait).
    for _ in 0..500 {
        if lock(&net.credits).len() >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Nonce 5 came before 4 was pending: refused for its nonce, as it always was.
    let pool: Vec<u64> = (0..6)
        .filter(|&n| core.mempool().contains(&tx(n).id()))
        .collect();
    assert_eq!(pool, vec![0, 1, 2, 3, 4]);
    assert_eq!(lock(&net.credits).clone(), vec![a, a, a, b, b]);
    assert_eq!(
        lock(&net.except).clone(),
        vec![Some(a), Some(a), Some(a), Some(b), Some(b)]
    );
    assert_eq!(
        lock(&net.penalties).clone(),
        vec![(a, pp_net::Misbehaviour::InvalidTransaction)]
    );
    // Batches [a: 0 1 2] (3, valid: each remembered, no check in the rules), [b: 3] (1),
    // [a: forged 5] (2, fails: then the forged one alone, 1; nonce 5 is refused for its nonce
    // before its signature is looked at), [b: 4] (1). One at a time this was 3 + 1 + 1 + 1.
    let cache = core.chain().signature_cache().clone();
    assert_eq!(cache.verifications(), 3 + 1 + 2 + 1 + 1);
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), looping)
        .await
        .unwrap()
        .unwrap();
}

/// The CPU work of admitting, importing and serving blocks runs on the node's blocking seam
/// (tokio's blocking pool; inline under a simulation), never on a runtime worker, so that a
/// worker stays free for `/status` and the network: the signature batch of an admission, the
/// stateful stage of an import (applying the block, the state-tree update, the mempool's
/// rebuild, under the node's locks), and the block reads of the HTTP API (storage, JSON).
#[tokio::test]
async fn admissions_and_imports_do_their_cpu_work_on_the_blocking_seam() {
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);
    impl crate::blocking::Blocking for Counting {
        fn spawn(&self, job: crate::blocking::BlockingJob) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            crate::blocking::TokioBlocking.spawn(job);
        }
    }
    let jobs = |c: &Counting| c.0.load(std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([69u8; 32]);
    let seam = Arc::new(Counting::default());
    let g = Genesis::devnet("test", key.public(), crate::clock::SystemClock.now_ms());
    let core = testing::core_with_blocking(dir.path(), &key, g, seam.clone());
    let to = KeyPair::from_seed([70u8; 32]).public();
    let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
    assert_eq!(core.submit_tx(t0.clone()).await, Ok(Inserted::New));
    assert_eq!(jobs(&seam), 1, "the admission's signature check");
    let b = next_block(&core, vec![t0]);
    assert_eq!(
        core.import_block(b).await.unwrap().outcome,
        AddOutcome::Extended
    );
    assert_eq!(jobs(&seam), 2, "the import's stateful stage");
    assert!(core.mempool().is_empty());
    use tower::ServiceExt as _;
    for (path, expected) in [
        ("/blocks?from=0&count=2", 200),
        ("/blocks/1", 200),
        ("/blocks/9", 404),
    ] {
        let before = jobs(&seam);
        let app = crate::http::router(core.clone(), None);
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status().as_u16(), expected, "{path}");
        assert_eq!(jobs(&seam), before + 1, "{path} is read off the runtime");
    }
}
