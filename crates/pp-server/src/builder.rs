//! The builder: resolves a node's configuration once — genesis, node key, praos keys — opens its
//! storage and replays it into a [`Core`] that is ready to run. [`crate::launch`] then starts it.
//!
//! The choices, in order (also in the crate docs):
//! * genesis: configured > `genesis.json` in the data dir > built from the registrations > a
//!   devnet genesis with this node as the only stakeholder; a configured genesis that differs
//!   from the file or from the database's is refused;
//! * key: configured > `node.key` > the dev key of a registered (or genesis) stakeholder named
//!   like the node > a new random key; a key not read from `node.key` is written there.
//!
//! The same rules answer [`Server::genesis`](crate::Server::genesis) and
//! [`Server::public_key`](crate::Server::public_key) before start ([`Builder::genesis_preview`],
//! [`Builder::key_preview`]), without touching the data dir.

use std::path::Path;
use std::sync::Arc;

use pp_ledger::{Chain, Genesis, InitialBalance, InitialStakeholder, KeyPair, PublicKey};
use pp_ouroboros::{Ouroboros, SlotClock};
use tokio::sync::{mpsc, watch};

use crate::blocking::Blocking;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::keys::{dev_key, random_key, read_key, write_key};
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::node::{Core, Parts, SyncRequest};
use crate::storage::{Storage, StorageFault};
use crate::writer::{Health, Writer};

/// Name of the genesis file in the data dir.
pub const GENESIS_FILE: &str = "genesis.json";
/// Name of the database file in the data dir.
pub const DB_FILE: &str = "chain.redb";
/// Balance given to each registered stakeholder in a genesis built from registrations.
pub const REGISTERED_BALANCE: u64 = 1_000_000_000;

/// What building a node needs: the configuration and the seams a simulation replaces.
pub(crate) struct Builder<'a> {
    pub(crate) config: &'a ServerConfig,
    pub(crate) clock: &'a Arc<dyn Clock>,
    pub(crate) blocking: &'a Arc<dyn Blocking>,
    /// Where the node's CPU-bound jobs run (see [`crate::CpuPool`]).
    pub(crate) cpu: &'a Arc<dyn Blocking>,
    /// Where the storage writer's commits run.
    pub(crate) commit: &'a Arc<dyn Blocking>,
    pub(crate) fault: &'a StorageFault,
}

/// A node that is built, replayed and ready to launch.
pub(crate) struct Built {
    pub(crate) core: Arc<Core>,
    /// The storage writer, to be spawned (it stops on `shutdown`).
    pub(crate) writer_task: futures::future::BoxFuture<'static, ()>,
    /// The sync task's end of the node's sync hints.
    pub(crate) sync_rx: mpsc::Receiver<SyncRequest>,
    /// The node's key (its network identity).
    pub(crate) key: KeyPair,
}

impl Builder<'_> {
    /// Resolves genesis and keys in `data_dir` (which exists), opens the database, and replays
    /// it: the node, with its journaled mempool back, before any task runs.
    pub(crate) fn build(
        &self,
        data_dir: &Path,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Built, ServerError> {
        let node_id = self.config.effective_node_id();
        let (genesis, key) = self.resolve_genesis_and_key(data_dir, &node_id)?;
        let genesis_hash = genesis.hash();

        let cache_bytes =
            usize::try_from(self.config.db_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let storage = Arc::new(Storage::open_with_cache(
            &data_dir.join(DB_FILE),
            self.fault,
            cache_bytes,
        )?);
        match storage.genesis_hash()? {
            Some(h) if h != genesis_hash => {
                return Err(ServerError::GenesisMismatch {
                    data_dir: data_dir.to_path_buf(),
                    stored: h,
                    configured: genesis_hash,
                })
            }
            Some(_) => {}
            None => storage.set_genesis_hash(&genesis_hash)?,
        }
        // Blocks stored under older header rules (before the state root: classic version 2,
        // praos 3 and 4) cannot be replayed under the current ones: refuse clearly rather than
        // start an empty chain over them.
        if let Some(found) = storage.stored_header_version(1)? {
            let expected = genesis.block_version();
            if found != expected {
                return Err(ServerError::OldHeaderVersion {
                    data_dir: data_dir.to_path_buf(),
                    found,
                    expected,
                });
            }
        }
        let bad_genesis = |e: pp_ouroboros::OuroborosError| ServerError::BadGenesis {
            source_name: "consensus".into(),
            error: pp_ledger::GenesisError::BadField {
                field: "consensus",
                reason: e.to_string(),
            },
        };
        let rules = Ouroboros::new(&genesis).map_err(bad_genesis)?;
        let slots = SlotClock::from_genesis(&genesis).map_err(bad_genesis)?;
        let chain =
            Chain::new(genesis.clone(), rules).map_err(|error| ServerError::BadGenesis {
                source_name: "configured".into(),
                error,
            })?;
        let mut mempool = Mempool::new(
            self.config.mempool_max_txs,
            self.config.mempool_max_per_sender,
        );
        mempool.set_min_fee(self.config.mempool_min_fee);
        let vrf =
            crate::praos::resolve_vrf_key(self.config.vrf_seed, data_dir, &node_id, &genesis)?;
        let producer = crate::opcert::resolve_producer(data_dir, &key, &genesis)?;
        if let Some(p) = &producer {
            tracing::info!(stakeholder = %p.cold, hot_key = %p.hot.public(), counter = p.cert.counter, valid_from = p.cert.valid_from, "operational certificate loaded");
        }
        let (sync_tx, sync_rx) = mpsc::channel(64);
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let (writer, writer_task) = Writer::new(
            storage.clone(),
            self.commit.clone(),
            health.clone(),
            &metrics,
            shutdown,
        );
        let core = Core::new(Parts {
            node_id: node_id.clone(),
            genesis,
            key: key.clone(),
            vrf,
            producer,
            clock: self.clock.clone(),
            slots,
            chain,
            mempool,
            storage,
            writer,
            health,
            metrics,
            sync_batch: self.config.sync_batch,
            sync_tx,
            blocking: self.blocking.clone(),
            cpu: self.cpu.clone(),
        });
        let height = core.replay()?;
        let pending = core.restore_mempool()?;
        tracing::info!(
            node = %node_id,
            genesis = %genesis_hash,
            key = %key.public(),
            height,
            pending,
            data_dir = %data_dir.display(),
            "node state loaded"
        );
        Ok(Built {
            core,
            writer_task: Box::pin(writer_task),
            sync_rx,
            key,
        })
    }

    /// The genesis (validated, written to `genesis.json` if it was not there) and the node key.
    fn resolve_genesis_and_key(
        &self,
        data_dir: &Path,
        node_id: &str,
    ) -> Result<(Genesis, KeyPair), ServerError> {
        let stored_genesis = read_genesis_file(data_dir)?;
        let fixed_genesis = match (&self.config.genesis, &stored_genesis) {
            (Some(g), Some(s)) if g.hash() != s.hash() => {
                return Err(ServerError::GenesisMismatch {
                    data_dir: data_dir.to_path_buf(),
                    stored: s.hash(),
                    configured: g.hash(),
                })
            }
            (Some(g), _) => Some(g.clone()),
            (None, Some(s)) => Some(s.clone()),
            (None, None) if !self.config.registrations.is_empty() => {
                Some(self.registered_genesis()?)
            }
            (None, None) => None,
        };
        let key = self.resolve_key(data_dir, node_id, fixed_genesis.as_ref())?;
        let genesis = match fixed_genesis {
            Some(g) => g,
            None => self.devnet_genesis(node_id, key.public()),
        };
        genesis
            .validate()
            .map_err(|error| ServerError::BadGenesis {
                source_name: "configured".into(),
                error,
            })?;
        if stored_genesis.is_none() {
            write_genesis_file(data_dir, &genesis)?;
        }
        Ok((genesis, key))
    }

    /// The genesis a start would use, as far as it is known without the data dir: configured,
    /// built from registrations, else a devnet genesis for [`Builder::key_preview`].
    pub(crate) fn genesis_preview(&self) -> Genesis {
        if let Some(g) = &self.config.genesis {
            return g.clone();
        }
        if !self.config.registrations.is_empty() {
            if let Ok(g) = self.registered_genesis() {
                return g;
            }
        }
        self.apply_params(Genesis::devnet(
            &self.config.effective_node_id(),
            self.key_preview(),
            self.genesis_time(),
        ))
    }

    /// The node key a start would use, as far as it is known without the data dir: configured,
    /// or the dev key of a registered stakeholder named like the node, else the zero key.
    pub(crate) fn key_preview(&self) -> PublicKey {
        if let Some(k) = &self.config.key {
            return k.public();
        }
        let id = self.config.effective_node_id();
        let dev = dev_key(&id).public();
        if self
            .config
            .registrations
            .iter()
            .any(|r| r.id == id && r.key == dev)
        {
            return dev;
        }
        PublicKey::default()
    }

    fn genesis_time(&self) -> u64 {
        self.config
            .genesis_time_ms
            .unwrap_or_else(|| self.clock.now_ms())
    }

    /// A genesis from the registered stakeholders: each gets [`REGISTERED_BALANCE`] and its stake;
    /// stakeholders in id order, so every node that registers the same set computes the same hash.
    fn registered_genesis(&self) -> Result<Genesis, ServerError> {
        let time = self.genesis_time();
        let first =
            self.config
                .registrations
                .first()
                .ok_or_else(|| ServerError::BadStakeholder {
                    id: String::new(),
                    reason: "no stakeholder registered".into(),
                })?;
        let mut g = self.apply_params(Genesis::devnet(&first.id, first.key, time));
        let mut regs = self.config.registrations.clone();
        regs.sort_by(|a, b| a.id.cmp(&b.id));
        g.initial_balances = regs
            .iter()
            .map(|r| InitialBalance {
                account: r.key,
                amount: REGISTERED_BALANCE,
            })
            .collect();
        g.initial_stakeholders = regs
            .iter()
            .map(|r| InitialStakeholder {
                id: r.id.clone(),
                public_key: r.key,
                stake: r.stake,
                vrf_key: None,
            })
            .collect();
        Ok(self.apply_leader_mode(g))
    }

    fn apply_params(&self, mut g: Genesis) -> Genesis {
        g.difficulty = self.config.difficulty;
        if let Some(d) = self.config.slot_duration {
            g.slot_duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        }
        g
    }

    /// In praos mode: every stakeholder registers its development VRF key (by id).
    fn apply_leader_mode(&self, g: Genesis) -> Genesis {
        if self.config.leader_mode != pp_ledger::LeaderMode::Praos {
            return g;
        }
        let vrf_keys: Vec<PublicKey> = g
            .initial_stakeholders
            .iter()
            .map(|s| crate::praos::vrf_public_of(crate::praos::dev_vrf_seed(&s.id)))
            .collect();
        g.into_praos(pp_ledger::DEVNET_ACTIVE_SLOT_COEFF, &vrf_keys)
    }

    fn devnet_genesis(&self, node_id: &str, key: PublicKey) -> Genesis {
        let g = Genesis::devnet(node_id, key, self.genesis_time());
        self.apply_leader_mode(self.apply_params(g))
    }

    /// Config key > `node.key` > the dev key of a registered/genesis dev stakeholder named like
    /// this node > a new random key. A key that was not read from the file is written to it.
    fn resolve_key(
        &self,
        dir: &Path,
        node_id: &str,
        genesis: Option<&Genesis>,
    ) -> Result<KeyPair, ServerError> {
        if let Some(k) = &self.config.key {
            return Ok(k.clone());
        }
        if let Some(k) = read_key(dir)? {
            return Ok(k);
        }
        let dev = dev_key(node_id);
        let is_dev_stakeholder = self
            .config
            .registrations
            .iter()
            .any(|r| r.id == node_id && r.key == dev.public())
            || genesis.is_some_and(|g| {
                g.initial_stakeholders
                    .iter()
                    .any(|s| s.id == node_id && s.public_key == dev.public())
            });
        let key = if is_dev_stakeholder {
            dev
        } else {
            random_key()
        };
        write_key(dir, &key)?;
        Ok(key)
    }
}

fn read_genesis_file(dir: &Path) -> Result<Option<Genesis>, ServerError> {
    let path = dir.join(GENESIS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(&path, e)),
    };
    Genesis::from_json(&bytes)
        .map(Some)
        .map_err(|error| ServerError::BadGenesis {
            source_name: path.display().to_string(),
            error,
        })
}

/// Writes `genesis.json` atomically (temporary file, fsync, rename).
fn write_genesis_file(dir: &Path, g: &Genesis) -> Result<(), ServerError> {
    use std::io::Write as _;
    let path = dir.join(GENESIS_FILE);
    let tmp = dir.join(format!("{GENESIS_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| ServerError::io(&tmp, e))?;
    f.write_all(g.to_json_pretty().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ServerError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ServerError::io(&path, e))
}
