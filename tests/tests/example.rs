//! `multi_node_example` as a user runs it: a bootstrap node and two joiners in one process, which
//! must print every node's state and exit 0 only because the nodes agree.

use std::time::Duration;

use pp_integration_tests::{multi_node_example_bin, run_bounded};

#[test]
fn multi_node_example_exits_0_with_every_node_at_the_same_tip() {
    let bin = multi_node_example_bin();
    let out = run_bounded(bin, &[], &[("RUST_LOG", "warn")], Duration::from_secs(90)).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("OK: all 3 nodes agree"),
        "{}",
        out.stdout
    );
    // The last report has one line per node; their tips at the common height matched, and the
    // printed lines carry height, tip and balances of all three accounts.
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(" height ") && l.contains(" tip "))
        .collect();
    assert!(lines.len() >= 3, "{}", out.stdout);
    for l in &lines[lines.len() - 3..] {
        assert!(
            l.contains("bootstrap=") && l.contains("node1=") && l.contains("node2="),
            "{l}"
        );
    }
}
