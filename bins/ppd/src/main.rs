//! `ppd`: the pp-ledger node daemon and its command-line tools.
//!
//! ```text
//! ppd [RUN OPTIONS]                     run a node; by default the built-in single-node devnet:
//!                                       ./ppd-data, HTTP 127.0.0.1:8080, P2P off, dev:alice produces
//!                                       (praos, f = 1/2: a block about every 2 s)
//! ppd run [--config FILE] [--data-dir DIR] [--genesis FILE] [--node-id ID] [--key FILE|dev:NAME]
//!         [--http HOST:PORT] [--p2p HOST:PORT] [--peer HOST:PORT]... [--max-peers N]
//!         [--min-fee FEE] [--log FILTER] [--log-format text|json]
//! ppd keygen --out FILE
//! ppd testnet --nodes N --dir DIR [--base-http-port P] [--base-p2p-port Q] [--slot-ms MS]
//!             [--leader-mode praos|classic]  (praos, the default, or classic)
//! ppd opcert issue --cold-key FILE|dev:NAME --hot-key KEY --counter N [--valid-from EPOCH]
//!                  --genesis FILE --out FILE
//! ppd account ACCOUNT                   ACCOUNT: 64 hex characters or dev:NAME
//! ppd tx transfer --key FILE|dev:NAME --to ACCOUNT --amount N [--fee N] [--wait]
//! ppd tx bond --key FILE|dev:NAME --amount N [--id NAME] [--vrf-key FILE|dev:NAME] [--fee N]
//!             [--wait]
//! ppd tx unbond --key FILE|dev:NAME --amount N [--fee N] [--wait]
//! ppd tx status TX_ID
//! ppd block INDEX|HASH
//! ppd status
//! ppd peers [list] | ppd peers add HOST:PORT [--data-dir DIR | --token-file FILE]
//! ppd bans
//! ppd purge [--data-dir DIR] [--yes] [--keep-key]
//! ppd completions SHELL
//! ppd man [--dir DIR]
//! ppd bench --key FILE|dev:NAME [--node URL] [--observer URL] [--watch URL]... [--accounts N]
//!           [--rate TX_PER_S] [--duration SECS] [--grace SECS] [--concurrency N] [--batch N]
//!           [--idle SECS] [--status-every MS] [--big-block TXS] [--json FILE]
//! ```
//!
//! Client commands take `--node URL` (default http://127.0.0.1:8080, or PPD_NODE) and
//! `--output text|json`. The binary is thin: it parses arguments and the config file, then hands
//! a `ServerConfig` to `pp_server::Server`, which does all the work. Errors are reported on
//! stderr, each cause once, with exit code 1.

mod bench;
mod client;
mod opcert;
mod purge;
mod run;
mod show;

use ppd::{cli, config};

mod testnet;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use pp_light::cli::limit_malloc_arenas;

use crate::cli::{Cli, Command, ManArgs, PeersCommand, TxCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, None | Some(Command::Run(_))) {
        limit_malloc_arenas(NODE_MALLOC_ARENAS);
    } else if matches!(cli.command, Some(Command::Light(_))) {
        limit_malloc_arenas(pp_light::cli::LIGHT_MALLOC_ARENAS);
    }
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// glibc malloc arenas a node runs with when the operator did not set `MALLOC_ARENA_MAX`.
///
/// glibc gives each thread that contends for the heap an arena of its own, up to 8 per core. A
/// node decodes blocks on one thread and frees them on another, which leaves most of those arenas
/// half empty: a node syncing 1M transactions peaked at 490 MB RSS with glibc's default on 2
/// cores and at 286 MB with 2 arenas (docs/testing.md, "Memory against history").
const NODE_MALLOC_ARENAS: &str = "2";

/// The error and its causes on one line, `: `-separated, each cause once: a cause whose text
/// the line already holds (a wrapper that quotes its source) is skipped.
fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs one subcommand. Only the commands that talk to the network build a tokio runtime.
fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.into_command() {
        Command::Run(args) => run::run(&args),
        Command::Light(args) => ppd::light::run(&args),
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
        Command::Opcert {
            command: cli::OpcertCommand::Issue(args),
        } => opcert::issue(&args),
        Command::Account(args) => client_cmd(
            args.client.output,
            client::account(&args.account, &args.client),
        ),
        Command::Tx { command } => match command {
            TxCommand::Transfer(a) => client_cmd(a.submit.client.output, client::transfer(&a)),
            TxCommand::Bond(a) => client_cmd(a.submit.client.output, client::bond(&a)),
            TxCommand::Unbond(a) => client_cmd(a.submit.client.output, client::unbond(&a)),
            TxCommand::Status(a) => client_cmd(a.client.output, client::tx_status(&a)),
        },
        Command::Block(args) => client_cmd(args.client.output, client::block(&args)),
        Command::Status(args) => client_cmd(args.client.output, client::status(&args.client)),
        Command::Peers {
            command: None,
            client,
        } => client_cmd(client.output, client::peers_list(&client)),
        Command::Peers {
            command: Some(PeersCommand::List(args)),
            ..
        } => client_cmd(args.client.output, client::peers_list(&args.client)),
        Command::Peers {
            command: Some(PeersCommand::Add(args)),
            ..
        } => client_cmd(args.client.output, client::peers_add(&args)),
        Command::Bans(args) => client_cmd(args.client.output, client::bans(&args.client)),
        Command::Bench(args) => bench(&args),
        Command::Purge(args) => purge::purge(&args),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "ppd",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man(args) => man(&args),
    }
}

/// Runs a client command on a small runtime, printing an error answer's body with `--output json`.
fn client_cmd(
    output: cli::Output,
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    runtime()?.block_on(client::with_output(output, fut))
}

/// `ppd man`: ppd.1 on stdout, or every page (ppd.1, ppd-run.1, ppd-tx-transfer.1, ...) in a
/// directory.
fn man(args: &ManArgs) -> anyhow::Result<()> {
    let cmd = Cli::command();
    match &args.dir {
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("cannot write the man page"),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            println!("wrote the man pages into {}", dir.display());
            Ok(())
        }
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
