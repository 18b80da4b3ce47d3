//! `ppd opcert issue`: a stakeholder signs an operational certificate with its cold key, off
//! the node (docs/leader-election.md §10.8).

use anyhow::Context as _;

use crate::cli::OpcertIssueArgs;

/// Signs the certificate and writes it (never overwriting), then says where it goes.
pub(crate) fn issue(args: &OpcertIssueArgs) -> anyhow::Result<()> {
    let genesis = ppd::config::load_genesis(&args.genesis)?;
    let cold = args.cold_key.load()?;
    let is_stakeholder = genesis
        .initial_stakeholders
        .iter()
        .any(|s| s.public_key == cold.public());
    let file = pp_server::opcert::issue(
        &cold,
        args.hot_key,
        args.counter,
        args.valid_from,
        &genesis.hash(),
    );
    pp_server::opcert::save_cert_file(&args.out, &file)
        .with_context(|| format!("cannot write the certificate to {}", args.out.display()))?;
    println!(
        "wrote {}: stakeholder {} delegates to hot key {} (counter {}, valid from epoch {}, network {} genesis {})",
        args.out.display(),
        cold.public(),
        args.hot_key,
        args.counter,
        args.valid_from,
        genesis.network,
        genesis.hash()
    );
    if !is_stakeholder {
        eprintln!(
            "warning: {} is not a genesis stakeholder; its blocks lead only once it has bonded stake",
            cold.public()
        );
    }
    println!(
        "install it as DATA_DIR/{} next to the hot key's DATA_DIR/{}, then restart the node",
        pp_server::opcert::OPCERT_FILE,
        pp_server::opcert::HOT_KEY_FILE
    );
    Ok(())
}
