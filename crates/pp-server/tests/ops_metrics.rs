//! The operator's metrics move with what the node does, and `/health` follows the tip:
//! * a producing node counts the slots it led, the blocks it produced, their validation times,
//!   its pending transactions' bytes, and is ready;
//! * a node that leads every slot but can never find its proof of work counts each led slot as
//!   missed, and once its tip is older than the limit `/health` says `503 tip_stale`.
//!
//! Gossip counters (received, relayed, propagation) are checked on real `ppd` processes in
//! `tests/tests/observability.rs`.

mod common;

use std::time::Duration;

use common::{single, wait_until};
use pp_ledger::{KeyPair, Transaction};
use pp_server::Server;

/// The value of `name`, summed over its label sets (0 if absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let v = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            v.trim().parse::<f64>().ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producing_node_counts_led_slots_blocks_validation_and_mempool_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([91u8; 32]);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    let text = s.metrics_text();
    assert!(
        text.contains(&format!(
            "pp_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // The counter moves just after the import (the height first): wait for the counter.
    assert!(
        wait_until(Duration::from_secs(20), || {
            metric(&s.metrics_text(), "pp_blocks_produced_total") >= 3.0
        })
        .await
    );
    let text = s.metrics_text();
    let produced = metric(&text, "pp_blocks_produced_total");
    assert!(produced >= 3.0, "{text}");
    assert!(metric(&text, "pp_slots_led_total") >= produced, "{text}");
    assert!(
        metric(&text, "pp_block_validation_seconds_count") >= produced,
        "{text}"
    );
    assert!(
        metric(&text, "pp_block_validation_seconds_sum") > 0.0,
        "{text}"
    );
    assert_eq!(metric(&text, "pp_slot_duration_seconds"), 0.15, "{text}");
    assert!(metric(&text, "pp_tip_age_seconds") < 2.0, "{text}");
    assert_eq!(metric(&text, "pp_p2p_enabled"), 0.0, "{text}");
    assert_eq!(metric(&text, "pp_peers_connected"), 0.0, "{text}");
    assert_eq!(metric(&text, "pp_sync_progress_ratio"), 1.0, "{text}");
    assert!(metric(&text, "pp_sync_target_height") >= 3.0, "{text}");
    #[cfg(target_os = "linux")]
    assert!(
        metric(&text, "process_resident_memory_bytes") > 0.0,
        "{text}"
    );

    // Pending bytes: a transfer is 153 bytes encoded. A block may include it before the scrape;
    // try again with the next nonce (bounded). The node's own account is funded and unused.
    let gh = s.genesis().hash();
    let bob = KeyPair::from_seed([92u8; 32]).public();
    let mut seen = false;
    for n in 0..20u64 {
        s.submit_transaction(Transaction::transfer(&key, bob, 1, 1, n, &gh))
            .unwrap();
        let text = s.metrics_text();
        let pending = metric(&text, "pp_mempool_size");
        if pending > 0.0 {
            assert_eq!(metric(&text, "pp_mempool_bytes"), pending * 153.0, "{text}");
            seen = true;
            break;
        }
    }
    assert!(seen, "no scrape saw a pending transaction");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_proof_of_work_misses_its_slots_and_goes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([93u8; 32]);
    // Difficulty 12: 16^12 expected hashes, never found within a 150 ms slot.
    let mut s = Server::new(12);
    s.set_data_dir(dir.path());
    s.set_key(key.clone());
    s.set_slot_duration(common::SLOT);
    s.start(0).await.unwrap();
    let base = format!("http://{}", s.http_addr().unwrap());
    assert!(
        wait_until(Duration::from_secs(20), || {
            metric(&s.metrics_text(), "pp_slots_missed_total") >= 3.0
        })
        .await
    );
    let text = s.metrics_text();
    assert_eq!(metric(&text, "pp_blocks_produced_total"), 0.0, "{text}");
    assert!(
        metric(&text, "pp_slots_led_total") >= metric(&text, "pp_slots_missed_total"),
        "{text}"
    );
    assert_eq!(s.height(), 0);

    // The tip (genesis) ages past max(10 slots, 2 s): not ready, with the reason.
    let client = reqwest::Client::new();
    let mut stale = None;
    for _ in 0..200 {
        let r = client.get(format!("{base}/health")).send().await.unwrap();
        let code = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        if code == 503 {
            stale = Some(v);
            break;
        }
        assert_eq!(v["status"], "ready", "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = stale.expect("/health never reported the stale tip");
    assert_eq!(v["status"], "not_ready", "{v}");
    assert_eq!(v["reason"], "tip_stale", "{v}");
    assert!(
        v["tip_age_ms"].as_u64().unwrap() > v["max_tip_age_ms"].as_u64().unwrap(),
        "{v}"
    );
    assert_eq!(v["max_tip_age_ms"], 2_000, "{v}");
    assert_eq!(metric(&s.metrics_text(), "pp_ready"), 0.0);
    let live = client
        .get(format!("{base}/health?live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    s.shutdown().await;
}
