//! The command-line surface of `ppd` (clap derive). Only parsing lives here: each subcommand's
//! behaviour is in its own module, so the help text and the code that acts on it stay separate.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "ppd",
    version,
    about = "pp-ledger node daemon and command-line tools",
    long_about = "pp-ledger node daemon and command-line tools.\n\n\
        With no subcommand, `ppd` runs a single-node devnet with the built-in genesis: data in \
        ./ppd-data, HTTP API on 127.0.0.1:8080, peer-to-peer networking off. It logs a line per \
        block. Stop it with Ctrl-C (SIGINT) or SIGTERM.",
    after_help = "Examples:\n  \
        ppd                                         # single-node devnet\n  \
        ppd testnet --nodes 3 --dir ./net           # write a 3-node loopback testnet\n  \
        ppd run --config ./net/node0/ppd.toml       # start one of its nodes\n  \
        ppd status --node http://127.0.0.1:8080\n  \
        ppd peers list\n  \
        ppd peers add 127.0.0.1:9001 --data-dir ./ppd-data  # reads ./ppd-data/admin.token\n  \
        ppd keygen --out alice.key\n  \
        ppd tx transfer --key ./net/node0/node.key --to <ACCOUNT> --amount 10 --node http://127.0.0.1:8080\n  \
        ppd bench --node http://127.0.0.1:8080 --key ./net/node0/node.key --observer http://127.0.0.1:8081 --duration 60"
)]
pub struct Cli {
    /// What to do; none means `run` with defaults.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node. Flags override the values of the TOML config file.
    Run(RunArgs),
    /// Write a new node/account key (64 hex characters of the secret seed, mode 0600).
    Keygen(KeygenArgs),
    /// Write the genesis, keys and configs of an N-node loopback testnet.
    Testnet(TestnetArgs),
    /// Build, sign and submit a transaction to a node.
    Tx {
        /// The kind of transaction.
        #[command(subcommand)]
        command: TxCommand,
    },
    /// Print a node's status (GET /status).
    Status(StatusArgs),
    /// Load a node with signed transfers and measure accepted and included throughput, latency,
    /// slot fill and acknowledged-but-lost transactions.
    Bench(BenchArgs),
    /// List a node's peers or connect it to one.
    Peers {
        /// What to do.
        #[command(subcommand)]
        command: PeersCommand,
    },
}

/// `ppd peers <what>`.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Print the node's connected peers (GET /peers).
    List(PeersListArgs),
    /// Make the node dial a peer and keep it (POST /peers; needs the node's admin token).
    Add(PeersAddArgs),
}

/// `ppd peers list`.
#[derive(Debug, Args)]
pub struct PeersListArgs {
    /// Base URL of the node's HTTP API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
}

/// `ppd peers add`.
#[derive(Debug, Args)]
pub struct PeersAddArgs {
    /// The peer's P2P address.
    #[arg(value_name = "HOST:PORT")]
    pub addr: String,
    /// Base URL of the node's HTTP API.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Where to find the node's admin token.
    #[command(flatten)]
    pub token: TokenArgs,
}

/// Where an admin command finds the node's admin token.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The node's data directory; the token is read from DIR/admin.token [default: ./ppd-data].
    #[arg(long, value_name = "DIR", conflicts_with = "token_file")]
    pub data_dir: Option<PathBuf>,
    /// A file holding the node's admin token (its data_dir/admin.token, or a copy).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenArgs {
    /// The token file these flags name.
    pub fn path(&self) -> PathBuf {
        match (&self.token_file, &self.data_dir) {
            (Some(f), _) => f.clone(),
            (None, Some(d)) => d.join(pp_server::ADMIN_TOKEN_FILE),
            (None, None) => PathBuf::from("ppd-data").join(pp_server::ADMIN_TOKEN_FILE),
        }
    }
}

/// `ppd run`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML config file (keys: data_dir, genesis, node_id, http, p2p, peers, max_peers, min_fee,
    /// db_cache_mb, log).
    /// Relative paths inside it are resolved against the file's directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (chain, state, node.key) [default: ./ppd-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Genesis file (JSON) [default: the built-in devnet genesis].
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Human-readable node id (1..=32 of [A-Za-z0-9._-]).
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,
    /// HTTP API listen address [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// Peer-to-peer listen address; giving it turns P2P on.
    #[arg(long, value_name = "ADDR:PORT")]
    pub p2p: Option<SocketAddr>,
    /// A peer to connect to at start (repeatable); replaces the config file's list.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// Connection slots [default: 32]: outbound min(8, N/2), inbound the rest.
    #[arg(long, value_name = "N")]
    pub max_peers: Option<usize>,
    /// Smallest fee this node admits to its mempool [default: 1]. Node policy, not a consensus
    /// rule: blocks holding cheaper transactions stay valid.
    #[arg(long, value_name = "FEE")]
    pub min_fee: Option<u64>,
    /// Database page cache in MiB, 1..=65536 [default: 64]. Blocks are written once and read
    /// rarely, so a small cache keeps memory independent of the chain's length.
    #[arg(long, value_name = "MIB")]
    pub db_cache_mb: Option<u64>,
}

/// `ppd keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key; an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `ppd testnet`.
#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// Number of nodes (each a stakeholder with equal stake).
    #[arg(long, value_name = "N")]
    pub nodes: usize,
    /// Directory to write genesis.json and node0..nodeN-1 into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// HTTP port of node0; node I listens on P+I.
    #[arg(long, value_name = "P", default_value_t = 8080)]
    pub base_http_port: u16,
    /// P2P port of node0; node I listens on Q+I.
    #[arg(long, value_name = "Q", default_value_t = 9000)]
    pub base_p2p_port: u16,
    /// Slot duration in milliseconds (10..=3600000).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub slot_ms: u64,
    /// Genesis time = now + this many milliseconds, so every node is up before slot 0.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub start_delay_ms: u64,
    /// Proof-of-work difficulty (leading zero hex digits of block hashes).
    #[arg(long, value_name = "D", default_value_t = 2)]
    pub difficulty: u32,
    /// Slots per epoch.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub slots_per_epoch: u64,
    /// Network name written into the genesis.
    #[arg(long, value_name = "NAME", default_value = "pp-testnet")]
    pub network: String,
}

/// `ppd tx <kind>`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Transfer coins from the key's account to another account.
    Transfer(TransferArgs),
}

/// `ppd tx transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Key file of the sender (as written by `ppd keygen` or a node's node.key).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Receiving account (64 hex characters).
    #[arg(long, value_name = "ACCOUNT")]
    pub to: pp_ledger::PublicKey,
    /// Amount to transfer (> 0).
    #[arg(long, value_name = "N")]
    pub amount: u64,
    /// Fee paid to the block producer.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fee: u64,
    /// Base URL of the node's HTTP API, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub node: String,
}

/// `ppd status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Base URL of the node's HTTP API, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
}

/// `ppd bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Base URL of the node the transactions are submitted to.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Key file of a funded account; it pays for the load accounts.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Another node on which inclusion, latency and slot fill are measured [default: --node].
    #[arg(long, value_name = "URL")]
    pub observer: Option<String>,
    /// Number of load accounts funded from --key (1..=1000).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub accounts: usize,
    /// Coins given to each load account.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub fund: u64,
    /// Target submission rate in transactions per second; 0 = as fast as the node accepts.
    #[arg(long, value_name = "TX_PER_S", default_value_t = 0)]
    pub rate: u64,
    /// How long to submit, in seconds (1..=86400).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub duration: u64,
    /// After the load, how long to wait for acknowledged transactions to be included (0..=3600).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// Requests in flight at once (1..=512, and at most --accounts: one per account at a time).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Transactions per request (1..=256). Above 1, POST /transactions gets a JSON array if the
    /// node accepts that form (tried on the first request); otherwise one per request.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: usize,
    /// Fee of each transfer.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fee: u64,
    /// Seconds between progress lines (1..=3600).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub progress: u64,
    /// Write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_means_default_run() {
        let cli = Cli::try_parse_from(["ppd"]).unwrap();
        assert!(cli.command.is_none());
    }

    #[test]
    fn run_collects_repeated_peers_and_addresses() {
        let cli = Cli::try_parse_from([
            "ppd",
            "run",
            "--p2p",
            "127.0.0.1:9001",
            "--peer",
            "127.0.0.1:9000",
            "--peer",
            "localhost:9002",
            "--max-peers",
            "4",
        ])
        .unwrap();
        let Some(Command::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.peers, vec!["127.0.0.1:9000", "localhost:9002"]);
        assert_eq!(a.p2p, Some("127.0.0.1:9001".parse().unwrap()));
        assert_eq!(a.max_peers, Some(4));
    }

    #[test]
    fn run_rejects_an_http_address_without_port() {
        assert!(Cli::try_parse_from(["ppd", "run", "--http", "127.0.0.1"]).is_err());
    }

    #[test]
    fn transfer_rejects_a_malformed_account() {
        let r = Cli::try_parse_from([
            "ppd", "tx", "transfer", "--key", "k", "--to", "abc", "--amount", "1", "--node", "x",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn peers_add_reads_the_token_from_the_data_dir_or_a_file() {
        let parse = |args: &[&str]| {
            let mut all = vec!["ppd", "peers", "add", "127.0.0.1:9001"];
            all.extend_from_slice(args);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Some(Command::Peers {
                    command: PeersCommand::Add(a),
                })) => Ok(a),
                Ok(other) => panic!("not peers add: {other:?}"),
                Err(e) => Err(e),
            }
        };
        let a = parse(&[]).unwrap();
        assert_eq!(a.addr, "127.0.0.1:9001");
        assert_eq!(a.node, "http://127.0.0.1:8080");
        assert_eq!(a.token.path(), PathBuf::from("ppd-data/admin.token"));
        let a = parse(&["--data-dir", "/x/d"]).unwrap();
        assert_eq!(a.token.path(), PathBuf::from("/x/d/admin.token"));
        let a = parse(&["--token-file", "/t"]).unwrap();
        assert_eq!(a.token.path(), PathBuf::from("/t"));
        assert!(parse(&["--token-file", "/t", "--data-dir", "/d"]).is_err());
        assert!(Cli::try_parse_from(["ppd", "peers", "add"]).is_err());
    }

    #[test]
    fn bench_defaults_and_required_key() {
        let cli = Cli::try_parse_from(["ppd", "bench", "--key", "k"]).unwrap();
        let Some(Command::Bench(b)) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(
            (b.accounts, b.rate, b.duration, b.concurrency, b.batch),
            (64, 0, 60, 32, 1)
        );
        assert_eq!(b.node, "http://127.0.0.1:8080");
        assert!(b.observer.is_none() && b.json.is_none());
        assert!(Cli::try_parse_from(["ppd", "bench"]).is_err());
    }

    #[test]
    fn testnet_defaults_match_the_documented_ports() {
        let cli = Cli::try_parse_from(["ppd", "testnet", "--nodes", "3", "--dir", "d"]).unwrap();
        let Some(Command::Testnet(t)) = cli.command else {
            panic!("not testnet")
        };
        assert_eq!(
            (t.base_http_port, t.base_p2p_port, t.slot_ms),
            (8080, 9000, 1000)
        );
    }
}
