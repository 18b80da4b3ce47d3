//! A chain of a few hundred blocks written straight to a data dir: the server replays it at start
//! (full validation), and a joining node syncs it over several `get_blocks` batches.
//!
//! Also a measurement: `PP_MEASURE_BLOCKS=2000 cargo test -p pp-server --test long_chain --
//! --nocapture` prints the replay and sync rates.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::{now_ms, wait_until};
use pp_ledger::{Genesis, KeyPair, Transaction};
use pp_server::storage::ChainCommit;
use pp_server::{NetworkConfig, Server, Storage, DB_FILE};

const TXS_PER_BLOCK: u64 = 10;

/// Writes `n` valid blocks (slots 1..=n, each with `TXS_PER_BLOCK` transfers) into `dir`.
fn write_chain(dir: &std::path::Path, g: &Genesis, key: &KeyPair, n: u64) {
    let gh = g.hash();
    let storage = Storage::open(&dir.join(DB_FILE)).unwrap();
    storage.set_genesis_hash(&gh).unwrap();
    let to = KeyPair::from_seed([52u8; 32]).public();
    let mut parent = g.block().header;
    let mut nonce = 0;
    let mut batch = ChainCommit::default();
    for slot in 1..=n {
        let txs: Vec<Transaction> = (0..TXS_PER_BLOCK)
            .map(|_| {
                nonce += 1;
                Transaction::transfer(key, to, 1, 1, nonce - 1, &gh)
            })
            .collect();
        let ts = g.genesis_time + slot * g.slot_duration_ms;
        let b =
            pp_ledger::testing::produce_on(g, &parent, slot, ts, g.difficulty, txs, key, 1 << 24)
                .unwrap();
        parent = b.header.clone();
        batch.best.push((slot, b.hash()));
        batch.blocks.push(b);
        if batch.blocks.len() == 100 || slot == n {
            batch.height = Some(slot);
            storage.commit_chain(&batch).unwrap();
            batch = ChainCommit::default();
        }
    }
    storage.close();
}

/// A producer `Server`, not started, over a data dir holding `n` blocks that [`write_chain`]
/// wrote with the key of `seed`, and its genesis (1 s slots; the chain ends 20 slots ago).
fn stored_producer(seed: u8, n: u64) -> (tempfile::TempDir, Genesis, Server) {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([seed; 32]);
    let slot_ms = 1_000;
    let mut g = Genesis::devnet("producer", key.public(), now_ms() - (n + 20) * slot_ms);
    g.difficulty = 1;
    write_chain(dir.path(), &g, &key, n);
    let mut a = Server::new(1);
    a.set_data_dir(dir.path());
    a.set_genesis(g.clone());
    a.set_key(key);
    (dir, g, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_a_stored_chain_and_a_joiner_syncs_it_in_batches() {
    let n: u64 = std::env::var("PP_MEASURE_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(450);
    let (_d1, g, mut a) = stored_producer(51, n);
    let d2 = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    a.start_with_network(0, NetworkConfig::p2p("producer", 0))
        .await
        .unwrap();
    let replay = t0.elapsed();
    assert!(a.height() >= n, "replayed {} of {n}", a.height());
    let tip_n = a.block_at(n).unwrap().hash();

    let mut b = Server::new(1);
    b.set_data_dir(d2.path());
    b.set_genesis(g);
    b.start_with_network(0, NetworkConfig::p2p("joiner", 0))
        .await
        .unwrap();
    let t1 = Instant::now();
    b.connect_to_peer(&a.p2p_addr().unwrap().to_string())
        .await
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(120), || b.height() >= n).await,
        "joiner synced {} of {n}",
        b.height()
    );
    let sync = t1.elapsed();
    assert_eq!(b.block_at(n).unwrap().hash(), tip_n);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{n} blocks x {TXS_PER_BLOCK} txs: replay {:.2?} ({:.0} blocks/s, {:.0} tx/s); \
         sync {:.2?} ({:.0} blocks/s, {:.0} tx/s)",
        replay,
        rate(replay),
        rate(replay) * TXS_PER_BLOCK as f64,
        sync,
        rate(sync),
        rate(sync) * TXS_PER_BLOCK as f64
    );
    b.shutdown().await;
    a.shutdown().await;
}

/// A blocking seam that holds every job spawned while it is closed until it opens again, as a
/// CPU pool starved by other work on the machine would (`cpu_priority` idle next to a busy
/// process).
struct Gate {
    rt: tokio::runtime::Handle,
    closed_until: std::sync::Mutex<Option<Instant>>,
}

impl Gate {
    fn close_for(&self, d: Duration) {
        *self.closed_until.lock().unwrap() = Some(Instant::now() + d);
    }
}

impl pp_server::Blocking for Gate {
    fn spawn(&self, job: pp_server::blocking::BlockingJob) {
        let until = *self.closed_until.lock().unwrap();
        drop(self.rt.spawn_blocking(move || {
            if let Some(t) = until {
                std::thread::sleep(t.saturating_duration_since(Instant::now()));
            }
            job()
        }));
    }
}

/// What [`stalled_joiner`] saw: whether the joiner synced, how long it took after connecting,
/// its height, and the `undeliverable_announcement` penalties it scored.
struct Stalled {
    synced: bool,
    took: Duration,
    height: u64,
    missed: f64,
    metrics: String,
}

/// A joiner of a producer's `n`-block chain whose blocking seam holds every job for `stall`
/// from just before it connects, as a CPU pool starved by other work on the machine would:
/// the producer's `headers` answer (a frame of more than 64 KiB, decoded on that pool) arrives
/// at once and waits for our decoding.
async fn stalled_joiner(seed: u8, n: u64, stall: Duration) -> Stalled {
    let (_d1, g, mut a) = stored_producer(seed, n);
    let d2 = tempfile::tempdir().unwrap();
    a.start_with_network(0, NetworkConfig::p2p("producer", 0))
        .await
        .unwrap();

    let gate = std::sync::Arc::new(Gate {
        rt: tokio::runtime::Handle::current(),
        closed_until: std::sync::Mutex::new(None),
    });
    let mut b = Server::new(1);
    b.set_data_dir(d2.path());
    b.set_genesis(g);
    b.set_blocking(gate.clone());
    b.start_with_network(0, NetworkConfig::p2p("joiner", 0))
        .await
        .unwrap();
    gate.close_for(stall);
    let t = Instant::now();
    b.connect_to_peer(&a.p2p_addr().unwrap().to_string())
        .await
        .unwrap();
    let synced = wait_until(Duration::from_secs(120), || b.height() >= n).await;
    let took = t.elapsed();
    let height = b.height();
    let metrics = b.metrics_text();
    let missed = metrics
        .lines()
        .filter(|l| l.starts_with("pp_p2p_penalties_total") && l.contains("undeliverable"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    b.shutdown().await;
    a.shutdown().await;
    Stalled {
        synced,
        took,
        height,
        missed,
        metrics,
    }
}

/// A joiner whose own CPU pool is held 7 s, past the 5 s headers deadline, while its only
/// peer's answer waits to be decoded: the answer arrived in time and only our decoding was
/// late, so the deadline runs again, the honest peer is not scored, and the joiner syncs.
/// (Before, the deadline passed, the peer was scored `undeliverable_announcement` and rotated
/// out of sync, and with a 10-minute rotation a node once stayed at height 0 next to a peer
/// 1,000 blocks ahead.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_whose_cpu_pool_stalls_past_the_headers_deadline_still_syncs() {
    let n = 250;
    let s = stalled_joiner(53, n, Duration::from_secs(7)).await;
    assert_eq!(
        s.missed, 0.0,
        "the peer was scored for our delay:\n{}",
        s.metrics
    );
    assert!(s.synced, "joiner at {} of {n} after {:?}", s.height, s.took);
    eprintln!(
        "synced {n} blocks {:?} after connecting, the answer decoded 7 s late",
        s.took
    );
}

/// The same stall held longer than every extension of the headers deadline (4 deadlines of
/// 5 s): the peer is scored and rotated out, and the joiner, whose only source it is, still
/// syncs once the short first rotation (30 s) ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_stalled_past_every_extension_rotates_its_only_peer_briefly_and_syncs() {
    let n = 250;
    let s = stalled_joiner(54, n, Duration::from_secs(22)).await;
    assert!(
        s.missed >= 1.0,
        "no headers deadline was missed:\n{}",
        s.metrics
    );
    assert!(s.synced, "joiner at {} of {n} after {:?}", s.height, s.took);
    eprintln!(
        "synced {n} blocks {:?} after connecting, past one missed headers deadline",
        s.took
    );
}
