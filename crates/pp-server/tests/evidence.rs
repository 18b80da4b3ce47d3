//! A producer that signs two blocks for one slot, seen by a node over P2P: the node keeps the
//! evidence on disk, serves it at `GET /evidence`, counts it in `pp_equivocations_total`, and
//! still has it after a restart.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Empty};
use pp_ledger::KeyPair;
use pp_net::{NetConfig, Network, TcpTransport};
use pp_server::{NetworkConfig, Server};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn evidence(s: &Server) -> serde_json::Value {
    let url = format!("http://{}/evidence", s.http_addr().unwrap());
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_producer_is_recorded_served_counted_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // "eve" holds all the stake; the node watching is not a stakeholder (it never produces).
    let eve = KeyPair::from_seed([81u8; 32]);
    let mut g = common::fast_genesis("eve", &eve);
    g.genesis_time = common::now_ms() - 60_000;
    let gh = g.hash();
    let observer = KeyPair::from_seed([82u8; 32]);
    let node = |g: &pp_ledger::Genesis| {
        let mut s = common::single(dir.path(), &observer);
        s.set_genesis(g.clone());
        s
    };
    let mut s = node(&g);
    s.start_with_network(0, NetworkConfig::p2p("watcher", 0))
        .await
        .unwrap();
    assert_eq!(evidence(&s).await["count"], 0);
    let slot = (1..1_000u64)
        .find(|&slot| s.with_chain(|c| c.leader_for_next(slot)).flatten() == Some(eve.public()))
        .expect("eve leads some slot");

    // Eve, as a raw pp-net peer, signs two different blocks for the same slot.
    let cfg = NetConfig::new("eve", gh, "127.0.0.1:0");
    let (peer, _events) = Network::start(cfg, TcpTransport, Arc::new(Empty))
        .await
        .unwrap();
    peer.connect(&s.p2p_addr().unwrap().to_string())
        .await
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || s.peer_count() == 1).await);
    let start = g.genesis_time + slot * g.slot_duration_ms;
    let make = |ts| {
        pp_ledger::testing::produce_on(
            &g,
            &g.block().header,
            slot,
            ts,
            g.difficulty,
            vec![],
            &eve,
            1 << 20,
        )
        .unwrap()
    };
    let (first, second) = (make(start), make(start + 1));
    assert_ne!(first.hash(), second.hash());
    peer.broadcast_block(&first, None);
    assert!(wait_until(Duration::from_secs(10), || s.height() == 1).await);
    peer.broadcast_block(&second, None);
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &s.metrics_text(),
            "pp_equivocations_total"
        ) == 1)
        .await
    );
    // The first block seen stays the tip.
    assert_eq!(s.tip_hash(), first.hash());

    let check = |v: &serde_json::Value| {
        assert_eq!(v["count"], 1, "{v}");
        let e = &v["equivocations"][0];
        assert_eq!(e["slot"], slot);
        assert_eq!(e["producer"], serde_json::to_value(eve.public()).unwrap());
        let blocks = e["blocks"].as_array().unwrap();
        assert_eq!(
            blocks[0]["hash"],
            serde_json::to_value(first.hash()).unwrap()
        );
        assert_eq!(
            blocks[1]["hash"],
            serde_json::to_value(second.hash()).unwrap()
        );
        // Both signed headers are there: anyone can check them against eve's key.
        for (b, want) in blocks.iter().zip([&first, &second]) {
            let header: pp_ledger::BlockHeader =
                serde_json::from_value(b["header"].clone()).unwrap();
            assert_eq!(&header, &want.header);
            assert_eq!(
                b["signature"],
                serde_json::to_value(want.signature).unwrap()
            );
        }
    };
    // The evidence is stored with the block's commit: wait (bounded) until it is served.
    for _ in 0..200 {
        if evidence(&s).await["count"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    check(&evidence(&s).await);
    peer.shutdown().await;
    s.shutdown().await;

    // After a restart the evidence is still served (read from the database).
    let mut s = node(&g);
    s.start(0).await.unwrap();
    check(&evidence(&s).await);
    s.shutdown().await;
}
