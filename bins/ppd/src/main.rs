//! `ppd`: the pp-ledger node daemon and its command-line tools.
//!
//! ```text
//! ppd                                   single-node devnet: ./ppd-data, HTTP 127.0.0.1:8080, P2P off
//! ppd run [--config FILE] [--data-dir DIR] [--genesis FILE] [--node-id ID] [--http ADDR:PORT]
//!         [--p2p ADDR:PORT] [--peer HOST:PORT]... [--max-peers N]
//! ppd keygen --out FILE
//! ppd testnet --nodes N --dir DIR [--base-http-port P] [--base-p2p-port Q] [--slot-ms MS]
//! ppd tx transfer --key FILE --to ACCOUNT --amount N [--fee N] --node URL
//! ppd status --node URL
//! ppd peers list [--node URL]
//! ppd peers add HOST:PORT [--node URL] [--data-dir DIR | --token-file FILE]
//! ppd bench --key FILE [--node URL] [--observer URL] [--accounts N] [--rate TX_PER_S]
//!           [--duration SECS] [--grace SECS] [--concurrency N] [--batch N] [--json FILE]
//! ```
//!
//! The binary is thin: it parses arguments and the config file, then hands a `ServerConfig` to
//! `pp_server::Server`, which does all the work. Errors are reported on stderr with exit code 1.

mod bench;
mod client;
mod run;

use ppd::{cli, config};

mod testnet;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use crate::cli::{Cli, Command, PeersCommand, RunArgs, TxCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand. Only the commands that talk to the network build a tokio runtime.
fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run::run(&args),
        Command::Keygen(args) => {
            let key = pp_server::keys::random_key();
            pp_server::keys::save_key_file(&args.out, &key)?;
            println!("wrote {}; account {}", args.out.display(), key.public());
            Ok(())
        }
        Command::Testnet(args) => {
            let written = testnet::write(&args)?;
            testnet::report(&written);
            Ok(())
        }
        Command::Tx {
            command: TxCommand::Transfer(args),
        } => {
            let id = runtime()?.block_on(client::transfer(&args))?;
            println!("submitted transaction {id}");
            Ok(())
        }
        Command::Bench(args) => bench(&args),
        Command::Status(args) => runtime()?.block_on(client::status(&args.node)),
        Command::Peers {
            command: PeersCommand::List(args),
        } => runtime()?.block_on(client::peers_list(&args.node)),
        Command::Peers {
            command: PeersCommand::Add(args),
        } => runtime()?.block_on(client::peers_add(&args)),
    }
}

/// `ppd bench`: runs the load, prints the summary, writes the JSON results if asked.
fn bench(args: &cli::BenchArgs) -> anyhow::Result<()> {
    // Two workers: signing and the block follower's parsing share the machine with the nodes.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(bench::run(args))?;
    println!("{}", report.summary());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// A tokio runtime for the client commands (a current-thread one is plenty for a few requests).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
