//! Fail-stop on a storage failure: a node whose disk stops taking writes (as when it is full)
//! stops producing and importing, reports the failure on `/health` and in metrics, refuses to
//! serve state, and after a restart holds everything it served before the failure.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{single, wait_until, SLOT};
use pp_ledger::{KeyPair, Transaction};
use pp_server::StorageFault;

async fn get(base: &str, path: &str) -> (u16, serde_json::Value) {
    let res = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_stops_the_node_and_it_never_serves_what_the_disk_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([81u8; 32]);
    let fault = StorageFault::default();
    let mut s = single(dir.path(), &key);
    s.set_storage_fault(fault.clone());
    s.start(0).await.unwrap();
    let base = format!("http://{}", s.http_addr().unwrap());
    assert!(wait_until(Duration::from_secs(20), || s.height() >= 3).await);
    assert_eq!(get(&base, "/health").await.0, 200);

    // The disk fills up.
    fault.set(true);
    let mut served = 0u64;
    let failed = {
        let start = std::time::Instant::now();
        loop {
            let (status, body) = get(&base, "/status").await;
            if status != 200 {
                assert_eq!(status, 503, "{body}");
                assert_eq!(body["error"]["code"], "storage_failed", "{body}");
                break true;
            }
            served = served.max(body["height"].as_u64().unwrap());
            if start.elapsed() > Duration::from_secs(20) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        failed,
        "the node kept serving at height {} after its disk failed",
        s.height()
    );
    let (status, body) = get(&base, "/health").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "storage_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage"),
        "{body}"
    );
    assert!(s.storage_failure().is_some());
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pp_storage_failed 1"), "{metrics}");

    // Nothing more is produced or admitted.
    let frozen = s.height();
    tokio::time::sleep(SLOT * 10).await;
    assert_eq!(s.height(), frozen, "blocks kept being applied in memory");
    let gh = s.genesis().hash();
    let tx = Transaction::transfer(&key, KeyPair::from_seed([82u8; 32]).public(), 1, 1, 0, &gh);
    assert!(s.submit_transaction(tx).is_err());

    // After a restart on a working disk, the node holds everything it served.
    s.shutdown().await;
    fault.set(false);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    assert!(
        s.height() >= served,
        "served height {served}, but the disk held only {}",
        s.height()
    );
    s.shutdown().await;
}
