//! Funding the load accounts: fresh keys, one transfer each from the funded key, then a wait
//! until the submit node's best chain holds every funding transfer.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use pp_ledger::{Hash, KeyPair, Transaction};

use super::api::{Api, Outcome};

/// How long the funding transfers may take to be submitted and included.
const FUNDING_TIMEOUT: Duration = Duration::from_secs(180);
/// Pause before resubmitting a funding transfer the node refused for a full queue.
const FULL_QUEUE_PAUSE: Duration = Duration::from_millis(200);

/// Creates `n` fresh accounts and gives each `amount` coins from `funder`; returns their keys
/// once the node's best chain includes every funding transfer.
pub(crate) async fn fund_accounts(
    api: &Api,
    funder: &KeyPair,
    genesis: &Hash,
    n: usize,
    amount: u64,
    fee: u64,
) -> anyhow::Result<Vec<KeyPair>> {
    let from = funder.public();
    let account = api
        .account(&from)
        .await
        .with_context(|| format!("cannot read the funded account {from}"))?;
    let per = amount
        .checked_add(fee)
        .context("--fund + --fee overflows")?;
    let needed = per
        .checked_mul(n as u64)
        .context("funding needs more than 2^64 coins")?;
    if account.balance < needed {
        bail!(
            "the funded account {from} holds {} coins; funding {n} accounts with {amount} \
             (fee {fee}) needs {needed}: lower --accounts or --fund",
            account.balance
        );
    }
    let keys: Vec<KeyPair> = (0..n).map(|_| pp_server::keys::random_key()).collect();
    let deadline = Instant::now() + FUNDING_TIMEOUT;
    let mut nonce = account.pending_nonce;
    for key in &keys {
        let tx = Transaction::transfer(funder, key.public(), amount, fee, nonce, genesis);
        submit_until_accepted(api, &tx, deadline).await?;
        nonce += 1;
    }
    wait_included(api, funder, nonce, deadline).await?;
    Ok(keys)
}

/// Submits `tx`, retrying while the sender's queue or the pool is full.
async fn submit_until_accepted(
    api: &Api,
    tx: &Transaction,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        match api.submit(tx).await {
            Outcome::Accepted => return Ok(()),
            Outcome::Rejected(code) if code.ends_with("mempool_full") => {
                if Instant::now() > deadline {
                    bail!("funding timed out: the node's mempool stayed full ({code})");
                }
                tokio::time::sleep(FULL_QUEUE_PAUSE).await;
            }
            Outcome::Rejected(code) => bail!(
                "the node refused funding transfer {} (nonce {}): {code}",
                tx.id(),
                tx.body.nonce
            ),
        }
    }
}

/// Waits until the funder's on-chain nonce reaches `next`: every funding transfer is included.
async fn wait_included(
    api: &Api,
    funder: &KeyPair,
    next: u64,
    deadline: Instant,
) -> anyhow::Result<()> {
    let from = funder.public();
    loop {
        let a = api.account(&from).await?;
        if a.nonce >= next {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "funding transfers not included within {FUNDING_TIMEOUT:?}: the funder's nonce is \
                 {} on chain, {next} expected",
                a.nonce
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
