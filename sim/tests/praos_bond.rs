//! A stakeholder joins a running praos network (pp-sim): a node with no stake and its own VRF key
//! (`vrf.key` in its data dir) is funded, bonds with its VRF key, and produces blocks, the first
//! of them in an epoch at least two after the bond's (the snapshot that holds its stake and key),
//! none before. Its bond without a VRF key is refused first. Always praos; over the selected
//! seeds (CI: 2).

use std::time::Duration;

use pp_ledger::{Hash, KeyPair, Transaction, TxBody, TxKind};
use pp_sim::{run_seeds_or, Cluster, SimError, SimParams};

/// What the newcomer bonds (the five genesis nodes hold 100 each).
const BOND: u64 = 500;

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::Expectation(what()))
    }
}

fn bond_tx(key: &KeyPair, vrf: Option<pp_ledger::PublicKey>, gh: &Hash) -> Transaction {
    TxBody {
        kind: TxKind::Bond {
            stakeholder_id: "bonder".into(),
            vrf_key: vrf,
        },
        from: key.public(),
        amount: BOND,
        fee: 1,
        nonce: 0,
    }
    .sign(key, gh)
}

/// The (index, slot) of the first block of `node1`'s best chain that `pred` accepts.
fn first_block(c: &Cluster, pred: impl Fn(&pp_ledger::Block) -> bool) -> Option<(u64, u64)> {
    c.with_server("node1", |s| {
        (1..=s.height())
            .filter_map(|i| s.block_at(i))
            .find(|b| pred(b))
            .map(|b| (b.header.index, b.header.slot))
    })
    .flatten()
}

fn bonder(seed: u64) -> Result<String, SimError> {
    let mut params = SimParams::new(seed);
    params.praos = true;
    let e = params.slots_per_epoch;
    let epoch = params.epoch();
    let mut c = Cluster::new(params)?;
    c.add_newcomer("bonder")?;
    let vrf_seed = Hash::blake2b_parts(&[b"pp-sim/bonder-vrf", &seed.to_be_bytes()]).0;
    pp_server::keys::save_key_file(
        &c.data_dir("bonder").join(pp_server::praos::VRF_KEY_FILE),
        &KeyPair::from_seed(vrf_seed),
    )
    .map_err(|e| SimError::Setup(e.to_string()))?;
    let vrf = pp_server::praos::vrf_public_of(vrf_seed);
    let key = c.newcomer_key("bonder");
    let gh = c.genesis().hash();
    c.run_for(Duration::from_secs(2))?;

    // Funded by a wallet, through node1.
    let wallet = c.workload().wallets[0].key.clone();
    let submit = |c: &Cluster, tx: Transaction| {
        c.with_server("node1", |s| {
            s.submit_transaction(tx).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|| Err("node1 is down".into()))
    };
    let nonce = c
        .with_server("node1", |s| s.next_nonce(&wallet.public()).ok())
        .flatten()
        .unwrap_or(0);
    submit(
        &c,
        Transaction::transfer(&wallet, key.public(), 10_000, 1, nonce, &gh),
    )
    .map_err(SimError::Expectation)?;
    let pk = key.public();
    c.run_until(epoch * 2, |c| {
        c.with_server("node1", |s| s.balance(&pk).unwrap_or(0)) >= Some(10_000)
    })?
    .ok_or_else(|| SimError::Expectation("the funding transfer was not included".into()))?;

    // Without a VRF key: refused.
    let refused = submit(&c, bond_tx(&key, None, &gh));
    expect(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("must carry the VRF key")),
        || format!("a keyless praos bond was not refused as such: {refused:?}"),
    )?;
    // With it: accepted, included, and the ledger binds the key.
    let bond = bond_tx(&key, Some(vrf), &gh);
    let bond_id = bond.id();
    submit(&c, bond).map_err(SimError::Expectation)?;
    c.run_until(epoch * 2, |c| {
        first_block(c, |b| b.transactions.iter().any(|t| t.id() == bond_id)).is_some()
    })?
    .ok_or_else(|| SimError::Expectation("the bond was not included".into()))?;
    let (_, bond_slot) = first_block(&c, |b| b.transactions.iter().any(|t| t.id() == bond_id))
        .ok_or_else(|| SimError::Expectation("bond block lost".into()))?;
    let bond_epoch = bond_slot / e;

    // Its first block: in epoch bond_epoch + 2 or later, and there is one within four epochs.
    let by_bonder = |b: &pp_ledger::Block| b.header.producer == pk;
    c.run_until(epoch * 4, |c| first_block(c, by_bonder).is_some())?
        .ok_or_else(|| {
            SimError::Expectation(format!(
                "the bonder (bond in epoch {bond_epoch}) produced nothing within four epochs"
            ))
        })?;
    let (index, slot) =
        first_block(&c, by_bonder).ok_or_else(|| SimError::Expectation("lost".into()))?;
    expect(slot / e >= bond_epoch + 2, || {
        format!(
            "the bonder produced in epoch {} after bonding in epoch {bond_epoch}",
            slot / e
        )
    })?;
    c.converge(Duration::from_secs(60))?;
    let out = c.final_check()?;
    Ok(format!(
        "{out}; bonded in epoch {bond_epoch}, first block #{index} in epoch {}",
        slot / e
    ))
}

#[test]
fn a_node_that_bonds_with_its_vrf_key_produces_from_the_snapshot_that_holds_its_stake() {
    let name = "a_node_that_bonds_with_its_vrf_key_produces_from_the_snapshot_that_holds_its_stake";
    let report = run_seeds_or(name, 2, |s| bonder(s).map_err(|e| e.to_string()));
    pp_sim::assert_all_passed(name, &report);
}
