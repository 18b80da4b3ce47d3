//! At most one outbound connection per address group, also while dials are in flight and for
//! the anchors saved at the last shutdown (found by pp-sim's eclipse scenario: an attacker of one
//! group held three of the victim's outbound slots at once).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, TestChain};
use pp_net::addrman::{AddrEntry, Table};
use pp_net::{AddrStore, BookSnapshot, Network, StoreError, TcpTransport};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;

/// A saved book handed to the network at start.
struct Saved(Mutex<Option<BookSnapshot>>);

impl AddrStore for Saved {
    fn load(&self) -> Result<Option<BookSnapshot>, StoreError> {
        Ok(self.0.lock().map_err(|_| "poisoned")?.clone())
    }
    fn save(&self, snapshot: &BookSnapshot) -> Result<(), StoreError> {
        *self.0.lock().map_err(|_| "poisoned")? = Some(snapshot.clone());
        Ok(())
    }
}

/// Listeners that accept and never answer, counting the connections open at once (the most
/// ever in `max`).
async fn tarpits(ip: [u8; 4], n: usize) -> (Vec<SocketAddr>, Arc<AtomicUsize>) {
    let open = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let mut addrs = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .expect("bind a tarpit");
        addrs.push(l.local_addr().expect("tarpit address"));
        let (open, max) = (open.clone(), max.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                let open = open.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 256];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    (addrs, max)
}

/// Starts a network whose saved book holds twelve tarpits on one loopback address (one address
/// group: a loopback address is its own group), the first `anchors` of them as saved anchors, and
/// returns the most connections the tarpits saw open at once over two dial timeouts.
async fn most_dials_in_one_group(anchors: usize) -> usize {
    let (addrs, max_open) = tarpits([127, 0, 0, 77], 12).await;
    let source = "127.0.0.77".parse().expect("ip");
    let entries = addrs
        .iter()
        .map(|&addr| AddrEntry {
            addr,
            source,
            table: Table::New,
            attempts: 0,
            last_try: 0,
            last_success: 0,
            added: 1,
        })
        .collect();
    let store = Arc::new(Saved(Mutex::new(Some(BookSnapshot {
        secret: None,
        entries,
        anchors: addrs[..anchors].to_vec(),
    }))));
    let mut cfg = config("victim");
    cfg.dial_interval = Duration::from_millis(50);
    cfg.dial_timeout = Duration::from_secs(1);
    cfg.max_dials = 3;
    let (net, _events) = Network::start_with_store(
        cfg,
        TcpTransport,
        Arc::new(TestChain { blocks: Vec::new() }),
        Some(store),
    )
    .await
    .expect("network starts");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    net.shutdown().await;
    max_open.load(Ordering::SeqCst)
}

#[tokio::test]
async fn one_group_never_holds_two_outbound_dials_at_once_from_the_book() {
    let most = most_dials_in_one_group(0).await;
    assert!(most >= 1, "the dialer reached the tarpits");
    assert_eq!(
        most, 1,
        "one address group had {most} outbound dials in flight at once"
    );
}

#[tokio::test]
async fn two_anchors_of_one_group_are_not_both_dialed() {
    let most = most_dials_in_one_group(2).await;
    assert!(most >= 1, "the dialer reached the tarpits");
    assert_eq!(
        most, 1,
        "one address group had {most} outbound dials in flight at once"
    );
}
