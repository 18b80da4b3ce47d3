//! `pp-light`: the pp-ledger light client alone, the same command line as `ppd light`
//! (docs/light-client.md), in a binary built without the full node (pp-server):
//!
//! ```text
//! pp-light --peer HOST:PORT --genesis FILE [--http ADDR:PORT] [--data-dir DIR]
//!          [--full-node URL]
//! ```
//!
//! Errors are reported on stderr with exit code 1.

use std::process::ExitCode;

use clap::Parser as _;
use pp_light::cli::{limit_malloc_arenas, run, LightArgs, LIGHT_MALLOC_ARENAS};

/// The pp-ledger light client: headers only, every header verified, balances and transactions
/// proven against them (docs/light-client.md).
#[derive(Debug, clap::Parser)]
#[command(name = "pp-light", version)]
struct Cli {
    #[command(flatten)]
    args: LightArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    limit_malloc_arenas(LIGHT_MALLOC_ARENAS);
    match run(&cli.args, None) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
