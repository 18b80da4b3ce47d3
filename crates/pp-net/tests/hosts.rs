//! Nodes on distinct loopback addresses behave as distinct hosts: a node dials from the address
//! it listens on, so its peers record (and feel, and pass on) an address that reaches it.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use pp_net::{addrman::Table, Direction};

fn on(node_id: &str, ip: [u8; 4]) -> pp_net::NetConfig {
    let mut c = config(node_id);
    c.listen_addr = format!("{}:0", Ipv4Addr::from(ip));
    c
}

#[tokio::test]
async fn a_node_listening_on_one_address_dials_from_it_and_its_peer_can_feel_it_back() {
    let (a, _ea) = start_with(on("host-a", [127, 0, 0, 23]), vec![]).await;
    let (b, _eb) = start_with(on("host-b", [127, 0, 0, 24]), vec![]).await;
    let pb = a.connect(&b.local_addr().to_string()).await.unwrap();
    assert_eq!(pb.direction, Direction::Outbound);

    // b sees the connection come from a's own address (the kernel alone would pick 127.0.0.1).
    assert!(eventually(3, || b.peer_count() == 1).await);
    let seen = b.peers().pop().unwrap();
    assert_eq!(
        seen.addr.ip(),
        IpAddr::from([127, 0, 0, 23]),
        "b records the source address of a's connection: {seen:?}"
    );
    assert_eq!(seen.listen_addr, Some(a.local_addr()));

    // So b's feeler to the address a claims reaches a, and a enters b's book as tried: b can
    // pass on an address that works.
    assert!(
        eventually(10, || b
            .book_entries()
            .iter()
            .any(|e| e.addr == a.local_addr() && e.table == Table::Tried))
        .await,
        "b's book: {:?}",
        b.book_entries()
    );
    a.shutdown().await;
    b.shutdown().await;
}
