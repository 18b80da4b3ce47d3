//! The command-line surface of `ppd` (clap derive). Only parsing lives here: each subcommand's
//! behaviour is in its own module, so the help text and the code that acts on it stay separate.
//!
//! Every setting of `ppd run` can come from a flag, a `PPD_*` environment variable or the config
//! file; the first of those that is set wins, then the default (flags > env > file > defaults).
//! The client commands default `--node` to [`DEFAULT_NODE`] (or `PPD_NODE`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pp_ledger::{KeyPair, PublicKey};

use crate::devnet::{dev_key, DEV_KEY_PREFIX};

/// The node URL client commands talk to unless `--node` or `PPD_NODE` says otherwise.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "ppd",
    version,
    about = "pp-ledger node daemon and command-line tools",
    long_about = "pp-ledger node daemon and command-line tools.\n\n\
        With no subcommand, `ppd` runs a node exactly as `ppd run` does (the same options are \
        accepted): by default a single-node devnet with the built-in genesis (Praos leader \
        election), producing blocks with the well-known key dev:alice, data in ./ppd-data, HTTP API on 127.0.0.1:8080, \
        peer-to-peer networking off. dev:alice, dev:bob and dev:charlie hold 1000000000 coins \
        each. Stop it with Ctrl-C (SIGINT) or SIGTERM; reset it with `ppd purge`.\n\n\
        Settings: flags > PPD_* environment variables > config file > defaults.",
    after_help = "Examples:\n  \
        ppd                                         # single-node devnet (dev:alice produces)\n  \
        ppd account dev:bob                         # balance, nonce, pending of an account\n  \
        ppd tx transfer --key dev:alice --to dev:bob --amount 10 --wait\n  \
        ppd tx bond --key dev:bob --id bob --amount 1000 --vrf-key dev:bob --wait\n  \
        ppd tx status <TX_ID>\n  \
        ppd block 1                                 # or a block hash\n  \
        ppd status --output json\n  \
        ppd purge --data-dir ./ppd-data --yes       # reset the devnet\n  \
        ppd testnet --nodes 3 --dir ./net           # write a 3-node loopback praos testnet\n  \
        ppd run --config ./net/node0/ppd.toml       # start one of its nodes\n  \
        ppd peers\n  \
        ppd peers add 127.0.0.1:9001 --data-dir ./ppd-data  # reads ./ppd-data/admin.token\n  \
        ppd keygen --out alice.key\n  \
        ppd completions bash > ppd.bash\n  \
        ppd man > ppd.1",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; none means `run` with the options given here.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The options of `ppd run`, for `ppd` without a subcommand.
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// The subcommand, `run` with the top-level options when none was given.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node. Flags override PPD_* variables, which override the TOML config file.
    Run(RunArgs),
    /// Run a light client: headers only, every header verified, balances and transactions
    /// proven against them (docs/light-client.md).
    Light(LightArgs),
    /// Write a new node/account key (64 hex characters of the secret seed, mode 0600).
    Keygen(KeygenArgs),
    /// Write the genesis, keys and configs of an N-node loopback testnet.
    Testnet(TestnetArgs),
    /// Praos operational certificates: delegate block signing from a stakeholder's cold key
    /// (kept off the node) to the node's hot key.
    Opcert {
        /// What to do.
        #[command(subcommand)]
        command: OpcertCommand,
    },
    /// Print an account: balance, stake, nonce and pending transactions (GET /accounts/ID).
    Account(AccountArgs),
    /// Build, sign and submit a transaction to a node, or look one up.
    Tx {
        /// The kind of transaction.
        #[command(subcommand)]
        command: TxCommand,
    },
    /// Print a block by index or hash (GET /blocks/INDEX, GET /blocks/hash/HASH).
    Block(BlockArgs),
    /// Print a node's status (GET /status).
    Status(StatusArgs),
    /// List a node's peers (the default), or connect it to one.
    #[command(args_conflicts_with_subcommands = true)]
    Peers {
        /// What to do; none means `list`.
        #[command(subcommand)]
        command: Option<PeersCommand>,
        /// Node and output, for `ppd peers` without a subcommand.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the node's bans (GET /bans).
    Bans(BansArgs),
    /// Load a node with signed transfers and measure accepted and included throughput, latency,
    /// slot fill and acknowledged-but-lost transactions.
    Bench(BenchArgs),
    /// Delete a data dir's chain, genesis, admin token and node key (asks first unless --yes).
    Purge(PurgeArgs),
    /// Print a shell completion script for SHELL to stdout.
    Completions(CompletionsArgs),
    /// Print ppd's man page (roff) to stdout, or write one page per command into --dir.
    Man(ManArgs),
}

/// `ppd light`: the light client's arguments, shared with the `pp-light` binary.
pub use pp_light::cli::LightArgs;

/// How a client command prints the node's answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Lines made for people.
    #[default]
    Text,
    /// The API's JSON answer, exactly (pretty-printed).
    Json,
}

/// The node a client command talks to, and how it prints the answer.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the node's HTTP API (http:// may be omitted).
    #[arg(long, value_name = "URL", env = "PPD_NODE", default_value = DEFAULT_NODE)]
    pub node: String,
    /// `text` for people, `json` for the API's answer exactly.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Output::Text)]
    pub output: Output,
}

impl Default for ClientArgs {
    fn default() -> Self {
        ClientArgs {
            node: DEFAULT_NODE.into(),
            output: Output::Text,
        }
    }
}

/// A signing key given on the command line: a key file, or `dev:NAME` for a well-known
/// development key (see [`crate::devnet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// `dev:NAME`.
    Dev(String),
    /// A key file as written by `ppd keygen` (or a data dir's node.key).
    File(PathBuf),
}

/// Why a key given on the command line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// `dev:` with a name that is not 1..=32 of [A-Za-z0-9._-].
    #[error(
        "development key {0:?} must be dev:NAME with NAME 1..=32 characters of [A-Za-z0-9._-]"
    )]
    BadDevName(String),
    /// An empty path.
    #[error("the key file path is empty")]
    EmptyPath,
    /// The key file cannot be read.
    #[error("cannot read key file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The key file is not a key.
    #[error("key file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl FromStr for KeySpec {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<KeySpec, KeyError> {
        if let Some(name) = s.strip_prefix(DEV_KEY_PREFIX) {
            if !pp_ledger::genesis::is_valid_stakeholder_id(name) {
                return Err(KeyError::BadDevName(s.to_string()));
            }
            return Ok(KeySpec::Dev(name.to_string()));
        }
        if s.is_empty() {
            return Err(KeyError::EmptyPath);
        }
        Ok(KeySpec::File(PathBuf::from(s)))
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Dev(name) => write!(f, "{DEV_KEY_PREFIX}{name}"),
            KeySpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl KeySpec {
    /// The key: derived for `dev:NAME`, read (bounded) for a file.
    pub fn load(&self) -> Result<KeyPair, KeyError> {
        match self {
            KeySpec::Dev(name) => Ok(dev_key(name)),
            KeySpec::File(path) => pp_server::keys::load_key_file(path).map_err(|e| match e {
                pp_server::ServerError::Io { path, source } => KeyError::Read {
                    path,
                    error: source,
                },
                pp_server::ServerError::BadKeyFile { path, reason } => {
                    KeyError::Invalid { path, reason }
                }
                other => KeyError::Invalid {
                    path: path.clone(),
                    reason: other.to_string(),
                },
            }),
        }
    }

    /// The public VRF key of a VRF key given on the command line: for `dev:NAME` the development
    /// VRF key of stakeholder NAME ([`pp_server::praos::dev_vrf_seed`], the one the built-in
    /// devnet registers for alice), for a file the VRF seed it holds (`vrf.key`, the key-file
    /// format).
    pub fn load_vrf_public(&self) -> Result<PublicKey, KeyError> {
        let seed = match self {
            KeySpec::Dev(name) => pp_server::praos::dev_vrf_seed(name),
            KeySpec::File(_) => self.load()?.secret_bytes(),
        };
        Ok(pp_server::praos::vrf_public_of(seed))
    }
}

/// An account on the command line: 64 hex characters, or `dev:NAME` for a development key's
/// account.
pub fn parse_account(s: &str) -> Result<PublicKey, String> {
    if s.starts_with(DEV_KEY_PREFIX) {
        let spec: KeySpec = s.parse().map_err(|e: KeyError| e.to_string())?;
        return spec.load().map(|k| k.public()).map_err(|e| e.to_string());
    }
    PublicKey::from_hex(s)
        .map_err(|e| format!("{s:?} is not an account (64 hex characters or dev:NAME): {e}"))
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
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd peers add`.
#[derive(Debug, Args)]
pub struct PeersAddArgs {
    /// The peer's P2P address (a host name or an IP address, and a port).
    #[arg(value_name = "HOST:PORT")]
    pub addr: String,
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
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

/// The format of the node's log lines.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// `ppd run` (and `ppd` without a subcommand).
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML config file (keys: data_dir, genesis, node_id, http, p2p, peers, max_peers, min_fee,
    /// log, log_format, db_cache_mb, cpu_priority, http_threads; see contrib/ppd.toml). Relative paths inside it are resolved against the
    /// file's directory.
    #[arg(long, value_name = "FILE", env = "PPD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (chain, state, node.key) [default: ./ppd-data].
    #[arg(long, value_name = "DIR", env = "PPD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Genesis file (JSON) [default: the built-in devnet genesis, or the one the data dir
    /// already holds].
    #[arg(long, value_name = "FILE", env = "PPD_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Human-readable node id (1..=32 of [A-Za-z0-9._-]) [default: node0; on the built-in
    /// devnet the name of its dev key, e.g. alice].
    #[arg(long, value_name = "ID", env = "PPD_NODE_ID")]
    pub node_id: Option<String>,
    /// The node's signing key for this run: a key file or dev:NAME [default: DIR/node.key; on a
    /// new built-in devnet, dev:alice].
    #[arg(long, value_name = "FILE|dev:NAME", env = "PPD_KEY")]
    pub key: Option<KeySpec>,
    /// HTTP API listen address; a host name is resolved at start [default: 127.0.0.1:8080].
    #[arg(long, value_name = "HOST:PORT", env = "PPD_HTTP")]
    pub http: Option<String>,
    /// Peer-to-peer listen address; giving it turns P2P on.
    #[arg(long, value_name = "HOST:PORT", env = "PPD_P2P")]
    pub p2p: Option<String>,
    /// A peer to connect to at start (repeatable, or comma-separated); replaces the config
    /// file's list.
    #[arg(
        long = "peer",
        value_name = "HOST:PORT",
        env = "PPD_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// Connection slots [default: 32]: outbound min(8, N/2), inbound the rest.
    #[arg(long, value_name = "N", env = "PPD_MAX_PEERS")]
    pub max_peers: Option<usize>,
    /// Smallest fee this node admits to its mempool [default: 1]. Node policy, not a consensus
    /// rule: blocks holding cheaper transactions stay valid.
    #[arg(long, value_name = "FEE", env = "PPD_MIN_FEE")]
    pub min_fee: Option<u64>,
    /// Log filter (RUST_LOG syntax) [default: RUST_LOG, else the config's `log`, else info].
    #[arg(long, value_name = "FILTER", env = "PPD_LOG")]
    pub log: Option<String>,
    /// Log line format [default: text].
    #[arg(long, value_enum, value_name = "FORMAT", env = "PPD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Database page cache in MiB, 1..=65536 [default: 64]. Blocks are written once and read
    /// rarely, so a small cache keeps memory independent of the chain's length.
    #[arg(long, value_name = "MIB", env = "PPD_DB_CACHE_MB")]
    pub db_cache_mb: Option<u64>,
    /// Scheduling of the node's CPU pool (signature checks, block application, large frames):
    /// normal, low (nice +10) or idle (SCHED_IDLE), the last two on Linux [default: normal].
    /// Lower keeps the HTTP API and peers answered quickly while blocks are imported, but any
    /// other busy process on the machine then goes first, and the node can fall behind.
    #[arg(long, value_name = "PRIORITY", env = "PPD_CPU_PRIORITY")]
    pub cpu_priority: Option<pp_server::CpuPriority>,
    /// Threads of the HTTP API's own runtime, 0..=64; 0 serves the API on the node's runtime
    /// [default: 1]. On its own thread the API answers while the node's workers import blocks,
    /// and takes at most that many cores from the node however many requests arrive.
    #[arg(long, value_name = "N", env = "PPD_HTTP_THREADS")]
    pub http_threads: Option<usize>,
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
    /// Leader election: `praos` (private VRF election, f = 1/2; every node gets `vrf.key`,
    /// `hot.key` and `opcert.json` next to its `node.key`, and the stakeholders' cold keys go to
    /// DIR/cold/, off the nodes) or `classic` (public schedule, one leader per slot, the nodes
    /// hold the stakeholder keys; kept for compatibility).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = TestnetLeaderMode::Praos)]
    pub leader_mode: TestnetLeaderMode,
}

/// `ppd opcert ...`.
#[derive(Debug, Subcommand)]
pub enum OpcertCommand {
    /// Sign a certificate {hot key, counter, valid from epoch} with the stakeholder's cold key
    /// and write it as an opcert.json for the node that holds the hot key.
    Issue(OpcertIssueArgs),
}

/// `ppd opcert issue`.
#[derive(Debug, Args)]
pub struct OpcertIssueArgs {
    /// The stakeholder's cold key: its account key (genesis, bonds), a key file or dev:NAME.
    /// Keep it off the node.
    #[arg(long, value_name = "FILE|dev:NAME")]
    pub cold_key: KeySpec,
    /// The hot public key the node signs blocks with (64 hex characters: the account that
    /// `ppd keygen --out hot.key` prints).
    #[arg(long, value_name = "KEY", value_parser = parse_account)]
    pub hot_key: PublicKey,
    /// The issue number: one above the stakeholder's last certificate on the chain (a higher
    /// counter revokes the older certificates; the chain refuses a jump of more than one).
    #[arg(long, value_name = "N")]
    pub counter: u64,
    /// The first epoch whose blocks may carry the certificate.
    #[arg(long, value_name = "EPOCH", default_value_t = 0)]
    pub valid_from: u64,
    /// The network's genesis file: the certificate is bound to its hash.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Where to write the certificate (the node reads it as DATA_DIR/opcert.json, next to
    /// DATA_DIR/hot.key); an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `ppd testnet --leader-mode`: Praos, the default of new networks, or classic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TestnetLeaderMode {
    /// Ouroboros classic (docs/leader-election.md §1–§8).
    Classic,
    /// Ouroboros Praos (docs/leader-election.md §10): the default.
    #[default]
    Praos,
}

/// `ppd account`.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The account: 64 hex characters, or dev:NAME.
    #[arg(value_name = "ACCOUNT", value_parser = parse_account)]
    pub account: PublicKey,
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd tx <kind>`.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Transfer coins from the key's account to another account.
    Transfer(TransferArgs),
    /// Move coins from the key's balance into its stake (stake counts for leadership two
    /// epochs later).
    Bond(BondArgs),
    /// Move coins from the key's stake back to its balance.
    Unbond(UnbondArgs),
    /// Print what the node knows of a transaction: pending, included (and where) or dropped.
    Status(TxStatusArgs),
}

/// What every submitted transaction takes besides its kind.
#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// Signing key of the sender: a key file (as written by `ppd keygen`, or a node.key) or
    /// dev:NAME.
    #[arg(long, value_name = "FILE|dev:NAME")]
    pub key: KeySpec,
    /// Amount (> 0).
    #[arg(long, value_name = "N")]
    pub amount: u64,
    /// Fee paid to the block producer.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub fee: u64,
    /// Wait until the transaction is in a block of the node's best chain, then print the block.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds (exit 1).
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
    pub wait_timeout: u64,
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd tx transfer`.
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Receiving account (64 hex characters, or dev:NAME).
    #[arg(long, value_name = "ACCOUNT", value_parser = parse_account)]
    pub to: PublicKey,
    /// Key, amount, fee, waiting, node and output.
    #[command(flatten)]
    pub submit: SubmitArgs,
}

/// `ppd tx bond`.
#[derive(Debug, Args)]
pub struct BondArgs {
    /// Stakeholder id bound to the key by its first bond (later bonds repeat it) [default: the
    /// account's current stakeholder id].
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// Praos networks: the VRF key file of the stakeholder's node (`vrf.key`, next to its
    /// `node.key`), or dev:NAME for NAME's development VRF key; the bond registers its public
    /// key, which its node proves leadership with. Every bond on a praos network (the built-in
    /// devnet, `ppd testnet`) carries one (later bonds repeat the first); a classic network's
    /// bond carries none.
    #[arg(long, value_name = "FILE|dev:NAME")]
    pub vrf_key: Option<KeySpec>,
    /// Key, amount, fee, waiting, node and output.
    #[command(flatten)]
    pub submit: SubmitArgs,
}

/// `ppd tx unbond`.
#[derive(Debug, Args)]
pub struct UnbondArgs {
    /// Key, amount, fee, waiting, node and output.
    #[command(flatten)]
    pub submit: SubmitArgs,
}

/// `ppd tx status`.
#[derive(Debug, Args)]
pub struct TxStatusArgs {
    /// The transaction id (64 hex characters, as printed by `ppd tx transfer`).
    #[arg(value_name = "TX_ID")]
    pub id: pp_ledger::Hash,
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd block`.
#[derive(Debug, Args)]
pub struct BlockArgs {
    /// A block index (0 is genesis) or a block hash (64 hex characters).
    #[arg(value_name = "INDEX|HASH")]
    pub block: BlockRef,
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A block named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockRef {
    /// By index on the best chain.
    Index(u64),
    /// By hash (any block the node holds).
    Hash(pp_ledger::Hash),
}

impl FromStr for BlockRef {
    type Err = String;

    fn from_str(s: &str) -> Result<BlockRef, String> {
        if s.len() == 64 {
            return pp_ledger::Hash::from_hex(s)
                .map(BlockRef::Hash)
                .map_err(|e| format!("{s:?} is not a block hash: {e}"));
        }
        s.parse()
            .map(BlockRef::Index)
            .map_err(|_| format!("{s:?} is neither a block index nor a 64-hex-character hash"))
    }
}

/// `ppd status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd bans`.
#[derive(Debug, Args)]
pub struct BansArgs {
    /// Node and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `ppd purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The data dir to reset [default: ./ppd-data].
    #[arg(
        long,
        value_name = "DIR",
        env = "PPD_DATA_DIR",
        default_value = "ppd-data"
    )]
    pub data_dir: PathBuf,
    /// Do not ask (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Keep node.key (the node's identity and stake), delete only the chain and genesis.
    #[arg(long)]
    pub keep_key: bool,
}

/// `ppd completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `ppd man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write ppd.1 and one page per subcommand (ppd-tx-transfer.1, ...) into this directory
    /// instead of printing ppd.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `ppd bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Base URL of the node the transactions are submitted to.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Key of a funded account (a key file or dev:NAME); it pays for the load accounts.
    #[arg(long, value_name = "FILE|dev:NAME")]
    pub key: KeySpec,
    /// Another node on which inclusion, latency and slot fill are measured [default: --node].
    #[arg(long, value_name = "URL")]
    pub observer: Option<String>,
    /// More nodes whose block announcements (GET /events) are timed for block propagation, besides
    /// --node and --observer (repeatable, or comma-separated; at most 32).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub watch: Vec<String>,
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
    /// Seconds of idle GET /status probing on the observer before the load (0..=600): the
    /// baseline of the latency under load.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub idle: u64,
    /// Milliseconds between two GET /status probes of the observer (5..=10000).
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub status_every: u64,
    /// Blocks of at least this many transactions get their own propagation figures, and their
    /// import on the observer its own GET /status latency (>= 1).
    #[arg(long, value_name = "TXS", default_value_t = 1000)]
    pub big_block: u64,
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
        assert!(matches!(cli.into_command(), Command::Run(_)));
    }

    #[test]
    fn run_options_work_without_the_run_subcommand_but_not_mixed_with_another() {
        let cli = Cli::try_parse_from(["ppd", "--http", "localhost:18312"]).unwrap();
        let Command::Run(a) = cli.into_command() else {
            panic!("not run")
        };
        assert_eq!(a.http.as_deref(), Some("localhost:18312"));
        assert!(Cli::try_parse_from(["ppd", "--http", "localhost:1", "status"]).is_err());
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
            "localhost:9002,localhost:9003",
            "--max-peers",
            "4",
            "--key",
            "dev:bob",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Some(Command::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            a.peers,
            vec!["127.0.0.1:9000", "localhost:9002", "localhost:9003"]
        );
        assert_eq!(a.p2p.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(a.max_peers, Some(4));
        assert_eq!(a.key, Some(KeySpec::Dev("bob".into())));
        assert_eq!(a.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn keys_are_files_or_dev_names() {
        assert_eq!(
            "dev:alice".parse::<KeySpec>().unwrap(),
            KeySpec::Dev("alice".into())
        );
        assert_eq!(
            "./a.key".parse::<KeySpec>().unwrap(),
            KeySpec::File("./a.key".into())
        );
        assert!("dev:".parse::<KeySpec>().is_err());
        assert!("dev:bad name".parse::<KeySpec>().is_err());
        assert!("".parse::<KeySpec>().is_err());
        assert_eq!(
            KeySpec::Dev("alice".into()).load().unwrap().public(),
            pp_server::dev_key("alice").public()
        );
        assert_eq!(KeySpec::Dev("bob".into()).to_string(), "dev:bob");
    }

    #[test]
    fn a_missing_or_bad_key_file_names_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nonexist.key");
        let e = KeySpec::File(missing.clone()).load().unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }));
        let m = e.to_string();
        assert_eq!(m.matches("nonexist.key").count(), 1, "{m}");
        assert_eq!(m.matches("No such file").count(), 1, "{m}");
        // The message carries the cause itself: no source to be printed a second time.
        assert!(std::error::Error::source(&e).is_none());
        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "nope").unwrap();
        let e = KeySpec::File(bad).load().unwrap_err();
        assert!(matches!(e, KeyError::Invalid { .. }), "{e}");
    }

    #[test]
    fn accounts_are_hex_or_dev_names() {
        assert_eq!(
            parse_account("dev:bob").unwrap(),
            pp_server::dev_key("bob").public()
        );
        let hex = pp_server::dev_key("x").public().to_hex();
        assert_eq!(parse_account(&hex).unwrap().to_hex(), hex);
        assert!(parse_account("abc").is_err());
        assert!(parse_account("dev:").is_err());
    }

    #[test]
    fn client_commands_default_to_the_local_node_and_text() {
        let cli = Cli::try_parse_from(["ppd", "account", "dev:alice"]).unwrap();
        let Some(Command::Account(a)) = cli.command else {
            panic!("not account")
        };
        if std::env::var_os("PPD_NODE").is_none() {
            assert_eq!(a.client.node, DEFAULT_NODE);
        }
        assert_eq!(a.client.output, Output::Text);
        let cli =
            Cli::try_parse_from(["ppd", "bans", "--output", "json", "--node", "h:1"]).unwrap();
        let Some(Command::Bans(b)) = cli.command else {
            panic!("not bans")
        };
        assert_eq!(
            (b.client.node.as_str(), b.client.output),
            ("h:1", Output::Json)
        );
        assert!(Cli::try_parse_from(["ppd", "bans", "--output", "xml"]).is_err());
    }

    #[test]
    fn peers_alone_lists_and_the_subcommands_still_work() {
        let cli = Cli::try_parse_from(["ppd", "peers", "--output", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Peers { command: None, ref client }) if client.output == Output::Json
        ));
        let cli = Cli::try_parse_from(["ppd", "peers", "list", "--node", "x:1"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Peers { command: Some(PeersCommand::List(ref l)), .. }) if l.client.node == "x:1"
        ));
    }

    #[test]
    fn blocks_are_named_by_index_or_hash() {
        assert_eq!("7".parse::<BlockRef>().unwrap(), BlockRef::Index(7));
        let h = "ab".repeat(32);
        assert!(matches!(h.parse::<BlockRef>().unwrap(), BlockRef::Hash(_)));
        assert!("zz".repeat(32).parse::<BlockRef>().is_err());
        assert!("-1".parse::<BlockRef>().is_err());
    }

    #[test]
    fn tx_commands_parse_with_wait_and_bond_id() {
        let cli = Cli::try_parse_from([
            "ppd", "tx", "bond", "--key", "dev:bob", "--id", "bob", "--amount", "5", "--wait",
        ])
        .unwrap();
        let Some(Command::Tx {
            command: TxCommand::Bond(b),
        }) = cli.command
        else {
            panic!("not bond")
        };
        assert_eq!(b.id.as_deref(), Some("bob"));
        assert!(b.submit.wait);
        assert_eq!(b.submit.wait_timeout, 60);
        assert!(
            Cli::try_parse_from([
                "ppd",
                "tx",
                "unbond",
                "--key",
                "k",
                "--amount",
                "1",
                "--wait-timeout",
                "5"
            ])
            .is_err(),
            "--wait-timeout needs --wait"
        );
        assert!(Cli::try_parse_from(["ppd", "tx", "status", "nothex"]).is_err());
    }

    #[test]
    fn purge_needs_nothing_but_defaults_to_the_default_data_dir() {
        let cli = Cli::try_parse_from(["ppd", "purge", "--yes"]).unwrap();
        let Some(Command::Purge(p)) = cli.command else {
            panic!("not purge")
        };
        if std::env::var_os("PPD_DATA_DIR").is_none() {
            assert_eq!(p.data_dir, PathBuf::from("ppd-data"));
        }
        assert!(p.yes && !p.keep_key);
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
                    command: Some(PeersCommand::Add(a)),
                    ..
                })) => Ok(a),
                Ok(other) => panic!("not peers add: {other:?}"),
                Err(e) => Err(e),
            }
        };
        let a = parse(&[]).unwrap();
        assert_eq!(a.addr, "127.0.0.1:9001");
        assert_eq!(a.client.node, "http://127.0.0.1:8080");
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
        assert_eq!(b.key, KeySpec::File("k".into()));
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
        // Praos is the default of new testnets; classic stays available.
        assert_eq!(t.leader_mode, TestnetLeaderMode::Praos);
        let cli = Cli::try_parse_from([
            "ppd",
            "testnet",
            "--nodes",
            "3",
            "--dir",
            "d",
            "--leader-mode",
            "classic",
        ])
        .unwrap();
        let Some(Command::Testnet(t)) = cli.command else {
            panic!("not testnet")
        };
        assert_eq!(t.leader_mode, TestnetLeaderMode::Classic);
    }

    #[test]
    fn a_vrf_key_is_a_file_or_a_dev_name() {
        let dev: KeySpec = "dev:bob".parse().unwrap();
        assert_eq!(
            dev.load_vrf_public().unwrap(),
            pp_server::praos::vrf_public_of(pp_server::praos::dev_vrf_seed("bob"))
        );
        // Not the signing key's seed: the VRF key has its own derivation.
        assert_ne!(
            dev.load_vrf_public().unwrap(),
            pp_server::praos::vrf_public_of(dev_key("bob").secret_bytes())
        );
        let dir = tempfile::tempdir().unwrap();
        pp_server::praos::write_vrf_seed(dir.path(), [7; 32]).unwrap();
        let file = KeySpec::File(dir.path().join("vrf.key"));
        assert_eq!(
            file.load_vrf_public().unwrap(),
            pp_server::praos::vrf_public_of([7; 32])
        );
        let missing = KeySpec::File(dir.path().join("missing.key"));
        assert!(matches!(
            missing.load_vrf_public(),
            Err(KeyError::Read { .. })
        ));
    }
}
