//! Durable storage of the node in one redb database (`data_dir/chain.redb`).
//!
//! Layout (all keys and values are bytes unless noted):
//!
//! | table        | key                    | value                                   |
//! |--------------|------------------------|-----------------------------------------|
//! | `blocks`     | block hash (32)        | canonical block bytes (`pp_ledger::Encode`) |
//! | `best_chain` | index (`u64`)          | block hash (32) of the best chain       |
//! | `tx_index`   | transaction id (32)    | hash (32) of the last best-chain block holding it |
//! | `mempool`    | transaction id (32)    | canonical transaction bytes             |
//! | `addr_book`  | `"book"` (`&str`)      | JSON `pp_net::BookSnapshot`: bucket secret, entries, anchors |
//! | `bans`       | identity key (hex) or IP (`&str`) | JSON `{reason, expires_at_ms, manual}` |
//! | `meta`       | name (`&str`)          | bytes (`genesis_hash`)                  |
//! | `side_blocks` | index (`u64`, big-endian) ‖ hash (32) | empty: a stored block not on the best chain |
//! | `evidence`   | slot (`u64`, big-endian) ‖ producer key (32) | JSON `pp_ledger::Equivocation` |
//!
//! Blocks more than `k` below the tip are read from here, not from memory (the chain keeps a
//! window, see `pp_ledger::chain`; `history.rs` reads through both). Side blocks are tracked in
//! `side_blocks` (blocks stored off the best chain, and best blocks a fork switch abandoned) and
//! deleted, with their `blocks` row, once they are `k` or more below the tip
//! ([`ChainCommit::side_floor`]): no fork from there can ever be adopted. Side blocks stored by
//! versions before this table are not tracked and stay. `evidence` holds at most
//! [`MAX_STORED_EVIDENCE`] equivocations (the first ones; later ones are counted, not stored).
//!
//! The page cache redb keeps in memory is bounded by the `cache_bytes` given at open
//! ([`DEFAULT_DB_CACHE_BYTES`] by default, instead of redb's 1 GiB): blocks are written once and
//! read rarely (sync serving, old-block queries), so a large cache buys little and would make
//! the node's memory grow with its history.
//!
//! The `addr_book` table replaces the flat `peers` table of earlier versions: a database that
//! still has `peers` and no book yet loads those addresses as new entries of the book (with no
//! secret, so a fresh one is made), and the first save of the book drops the old table.
//!
//! Every write is one redb transaction committed with the default durability (fsync before
//! `commit` returns), so a block or a transaction is on disk before the node acknowledges it, and
//! a `kill -9` loses nothing acknowledged. [`Storage::apply`] commits many changes in one such
//! transaction: the storage writer (`writer.rs`) uses it to commit whatever is queued with one
//! fsync. Quick repair is enabled so that reopening after a crash does not scan the whole file.
//!
//! Calls are synchronous; a running node makes them through the writer, which runs them on the
//! `Blocking` seam (tokio's blocking pool, or inline under a simulation). The database sits
//! behind an `RwLock<Option<..>>` so that [`Storage::close`] can release the file even while
//! other handles to the storage are still alive (a restart in the same process reopens the same
//! file). [`StorageFault`] makes the file's writes fail on demand, for tests.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use pp_ledger::{Block, BlockHeader, Decode, Decoder, Encode, Hash, SignedHeader, Transaction};
use redb::backends::FileBackend;
use redb::{
    BackendError, Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageBackend,
    TableDefinition,
};

const BLOCKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blocks");
const BEST: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("best_chain");
const TX_INDEX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tx_index");
const MEMPOOL: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("mempool");
/// The flat address list of earlier versions, read once to migrate into `addr_book`.
const LEGACY_PEERS: TableDefinition<'_, &str, u64> = TableDefinition::new("peers");
const ADDR_BOOK: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("addr_book");
const BANS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("bans");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const SIDE_BLOCKS: TableDefinition<'_, &[u8], ()> = TableDefinition::new("side_blocks");
const EVIDENCE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("evidence");
/// `GET /proofs/stake` answers of epoch-boundary blocks (the stake snapshot after each), by
/// block hash: kept after the block's state-tree version is pruned, so that a light client
/// that starts late can still prove every epoch's stake distribution (docs/http-api.md).
const STAKE_PROOFS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("stake_proofs");

/// redb page cache of a node unless configured otherwise (`db_cache_mb`): 64 MiB. Enough for
/// the tables written and read on every block (best chain, transaction index, mempool journal)
/// and the newest blocks; older blocks are read from the file (and the OS page cache).
pub const DEFAULT_DB_CACHE_BYTES: usize = 64 << 20;
/// Most equivocations stored; later ones are counted (`pp_equivocations_total`) but not kept.
pub const MAX_STORED_EVIDENCE: usize = 1024;

/// Most legacy peer addresses migrated into the address book.
pub const MAX_STORED_PEERS: usize = 1_000;
/// Largest stored address book accepted at load (the book itself is bounded far below this).
const MAX_BOOK_BYTES: usize = 4 * 1024 * 1024;
/// Most bans stored.
pub const MAX_STORED_BANS: usize = 20_000;

/// A ban as stored: it is put back at start until it expires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredBan {
    /// The banned identity key (hex) or IP address.
    pub target: String,
    /// Why.
    pub reason: String,
    /// When it ends, unix ms.
    pub expires_at_ms: u64,
    /// Made by the operator.
    pub manual: bool,
}

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database reported an error (I/O, corruption, lock held by another process).
    #[error("database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        #[source]
        source: Box<redb::Error>,
    },
    /// A stored value could not be decoded (the file was altered or written by other code).
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The storage was closed by a shutdown.
    #[error("storage is closed")]
    Closed,
    /// An earlier write failed: the node stopped writing (fail-stop) and refuses every change.
    #[error("storage failed earlier: {0}")]
    Failed(String),
}

/// A change of the best chain to commit together with the blocks it needs.
#[derive(Debug, Default, Clone)]
pub struct ChainCommit {
    /// Blocks to store (by hash); the transactions of those also listed in `best` are indexed.
    pub blocks: Vec<Block>,
    /// New `(index, hash)` entries of the best chain.
    pub best: Vec<(u64, Hash)>,
    /// The best chain's height after the change: entries above it are deleted.
    pub height: Option<u64>,
    /// Transactions to remove from the mempool journal.
    pub mempool_remove: Vec<Hash>,
    /// Transactions to add to the mempool journal (re-admitted after a reorg).
    pub mempool_add: Vec<Transaction>,
    /// Side blocks (including best blocks a fork switch abandoned) at or below this index are
    /// deleted: they are `k` or more below the tip and can never be adopted.
    pub side_floor: Option<u64>,
    /// Equivocation evidence to keep (at most [`MAX_STORED_EVIDENCE`] in all).
    pub evidence: Vec<pp_ledger::Equivocation>,
    /// The state tree's writes for this change (see [`crate::state_commit`]): committed with
    /// it, so that the stored tree always matches the stored best chain.
    pub state_tree: Vec<crate::state_commit::TreeOp>,
    /// Stake-snapshot proofs of epoch-boundary blocks to keep: `(block hash, the JSON answer
    /// of GET /proofs/stake for it)`. A record is removed with its block when the block, off
    /// the best chain, falls below `side_floor`.
    pub stake_proofs: Vec<(Hash, Vec<u8>)>,
}

/// One change queued to the storage writer; several are committed together.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Blocks, best-chain and mempool journal changes.
    Chain(ChainCommit),
    /// Replace the stored bans.
    Bans(Vec<StoredBan>),
}

/// A switch that makes a database's writes fail as a full disk does (`ENOSPC` on every write,
/// resize and sync) while it is on. A seam for tests: a node opened without one never fails
/// on purpose. Clones share the switch.
#[derive(Debug, Clone, Default)]
pub struct StorageFault(Arc<AtomicBool>);

impl StorageFault {
    /// Turns the fault on (`true`) or off.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::SeqCst);
    }
}

/// redb's file backend, with writes failing while the fault switch is on.
#[derive(Debug)]
struct FaultyBackend {
    inner: FileBackend,
    fail: Arc<AtomicBool>,
}

impl FaultyBackend {
    fn check(&self) -> Result<(), std::io::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        Ok(())
    }
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.check()?;
        self.inner.write(offset, data)
    }
    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// The node's database.
#[derive(Debug)]
pub struct Storage {
    path: PathBuf,
    db: RwLock<Option<Database>>,
}

impl Storage {
    /// Opens (or creates) the database at `path` and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Storage, StorageError> {
        Storage::open_with_fault(path, &StorageFault::default())
    }

    /// Like [`Storage::open`], with the file's writes failing whenever `fault` is on (a seam for
    /// tests of what a node does when its disk fails).
    pub fn open_with_fault(path: &Path, fault: &StorageFault) -> Result<Storage, StorageError> {
        Storage::open_with_cache(path, fault, DEFAULT_DB_CACHE_BYTES)
    }

    /// Like [`Storage::open_with_fault`], with redb's page cache bounded by `cache_bytes`.
    pub fn open_with_cache(
        path: &Path,
        fault: &StorageFault,
        cache_bytes: usize,
    ) -> Result<Storage, StorageError> {
        let err = |e: redb::Error| StorageError::Db {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| err(e.into()))?;
        let backend = FaultyBackend {
            inner: FileBackend::new(file).map_err(|e| err(e.into()))?,
            fail: fault.0.clone(),
        };
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| err(e.into()))?;
        let storage = Storage {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
        };
        storage.write(|tx| {
            tx.open_table(BLOCKS)?;
            tx.open_table(BEST)?;
            tx.open_table(TX_INDEX)?;
            tx.open_table(MEMPOOL)?;
            tx.open_table(ADDR_BOOK)?;
            tx.open_table(BANS)?;
            tx.open_table(META)?;
            tx.open_table(SIDE_BLOCKS)?;
            tx.open_table(EVIDENCE)?;
            tx.open_table(STAKE_PROOFS)?;
            Ok(())
        })?;
        Ok(storage)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the file. Later calls fail with [`StorageError::Closed`].
    pub fn close(&self) {
        let mut guard = match self.db.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = None;
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StorageError {
        StorageError::Db {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    /// Runs `f` on the open database (a poisoned lock is taken over: the database itself keeps
    /// its own consistency, a panic elsewhere cannot have left it half-written).
    fn with_db<R>(
        &self,
        f: impl FnOnce(&redb::Database) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let guard = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(guard.as_ref().ok_or(StorageError::Closed)?)
    }

    /// Runs `f` in a write transaction and commits it durably.
    fn write<R>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R, redb::Error>,
    ) -> Result<R, StorageError> {
        self.with_db(|db| {
            let mut tx = db.begin_write().map_err(|e| self.db_err(e))?;
            tx.set_quick_repair(true);
            let r = f(&tx).map_err(|e| self.db_err(e))?;
            tx.commit().map_err(|e| self.db_err(e))?;
            Ok(r)
        })
    }

    /// Runs `f` in a read transaction.
    fn read<R>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<R, redb::Error>,
    ) -> Result<R, StorageError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(|e| self.db_err(e))?;
            f(&tx).map_err(|e| self.db_err(e))
        })
    }

    /// The genesis hash this database belongs to, if recorded.
    pub fn genesis_hash(&self) -> Result<Option<Hash>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(META)?;
            Ok(t.get("genesis_hash")?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| hash_from(&b, "genesis hash")).transpose()
    }

    /// Records the genesis hash this database belongs to.
    pub fn set_genesis_hash(&self, h: &Hash) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.open_table(META)?
                .insert("genesis_hash", h.as_bytes().as_slice())?;
            Ok(())
        })
    }

    /// Commits blocks, best-chain changes and mempool journal changes atomically and durably.
    pub fn commit_chain(&self, c: &ChainCommit) -> Result<(), StorageError> {
        self.write(|tx| write_chain(tx, c))
    }

    /// The stored state tree (`Err(why)` inside if a record does not decode).
    pub(crate) fn state_tree(
        &self,
    ) -> Result<Result<crate::state_commit::RedbNodeStore, String>, StorageError> {
        self.read(crate::state_commit::read_all)
    }

    /// Applies `ops` in order in **one** durable commit (one fsync for all of them): the group
    /// commit of the storage writer. Either all of them are on disk afterwards, or none.
    pub fn apply(&self, ops: &[WriteOp]) -> Result<(), StorageError> {
        self.write(|tx| {
            for op in ops {
                match op {
                    WriteOp::Chain(c) => write_chain(tx, c)?,
                    WriteOp::Bans(bans) => write_bans(tx, bans)?,
                }
            }
            Ok(())
        })
    }

    /// Stores one block that is not (yet) on the best chain.
    pub fn put_block(&self, b: &Block) -> Result<(), StorageError> {
        self.commit_chain(&ChainCommit {
            blocks: vec![b.clone()],
            ..ChainCommit::default()
        })
    }

    /// The best chain as stored: hashes by index from 1 upward, stopping at the first gap.
    pub fn best_chain(&self) -> Result<Vec<Hash>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(BEST)?;
            let mut out = Vec::new();
            for (expect, r) in (1u64..).zip(t.range(1u64..)?) {
                let (k, v) = r?;
                if k.value() != expect {
                    break;
                }
                out.push(v.value().to_vec());
            }
            Ok(out)
        })?;
        raw.iter()
            .map(|b| hash_from(b, "best chain hash"))
            .collect()
    }

    /// A stored block by hash.
    pub fn block(&self, h: &Hash) -> Result<Option<Block>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(BLOCKS)?;
            Ok(t.get(h.as_bytes().as_slice())?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| {
            Block::from_canonical_bytes(&b).map_err(|e| StorageError::Corrupt {
                what: "block",
                reason: format!("{h}: {e}"),
            })
        })
        .transpose()
    }

    /// The header version of the stored best-chain block at `index` (the first four bytes of
    /// its canonical encoding), read without decoding the block: how a data dir written under
    /// older header rules is recognised.
    pub fn stored_header_version(&self, index: u64) -> Result<Option<u32>, StorageError> {
        let Some(h) = self.best_hash(index)? else {
            return Ok(None);
        };
        let raw = self.read(|tx| {
            let t = tx.open_table(BLOCKS)?;
            Ok(t.get(h.as_bytes().as_slice())?
                .map(|v| v.value().get(..4).map(|b| [b[0], b[1], b[2], b[3]])))
        })?;
        Ok(raw.flatten().map(u32::from_be_bytes))
    }

    /// Hash of the stored best-chain block at `index`.
    pub fn best_hash(&self, index: u64) -> Result<Option<Hash>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(BEST)?;
            Ok(t.get(index)?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| hash_from(&b, "best chain hash")).transpose()
    }

    /// The stored stake-snapshot proof of block `h` (the JSON bytes of its `GET /proofs/stake`
    /// answer), if one was kept ([`ChainCommit::stake_proofs`]). Whether `h` is on the best
    /// chain is the caller's question.
    pub fn stake_proof(&self, h: &Hash) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|tx| {
            let t = tx.open_table(STAKE_PROOFS)?;
            Ok(t.get(h.as_bytes().as_slice())?.map(|v| v.value().to_vec()))
        })
    }

    /// Deletes every kept stake-snapshot record: a data directory written before records
    /// were kept (tests only).
    #[cfg(test)]
    pub(crate) fn forget_stake_proofs(&self) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.delete_table(STAKE_PROOFS)?;
            tx.open_table(STAKE_PROOFS)?;
            Ok(())
        })
    }

    /// The header of a stored block (decoded from the front of its bytes only).
    pub fn block_header(&self, h: &Hash) -> Result<Option<BlockHeader>, StorageError> {
        self.read(|tx| {
            let t = tx.open_table(BLOCKS)?;
            Ok(t.get(h.as_bytes().as_slice())?
                .map(|v| BlockHeader::decode(&mut Decoder::new(v.value()))))
        })?
        .transpose()
        .map_err(|e| StorageError::Corrupt {
            what: "block",
            reason: format!("{h}: {e}"),
        })
    }

    /// The header and signature of a stored block, without decoding its transactions (a
    /// block's encoding starts with both).
    pub fn signed_header(&self, h: &Hash) -> Result<Option<SignedHeader>, StorageError> {
        self.read(|tx| {
            let t = tx.open_table(BLOCKS)?;
            Ok(t.get(h.as_bytes().as_slice())?
                .map(|v| SignedHeader::decode(&mut Decoder::new(v.value()))))
        })?
        .transpose()
        .map_err(|e| StorageError::Corrupt {
            what: "block",
            reason: format!("{h}: {e}"),
        })
    }

    /// Hashes of the stored side blocks (see the module docs), lowest index first.
    pub fn side_blocks(&self) -> Result<Vec<Hash>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(SIDE_BLOCKS)?;
            let mut out = Vec::new();
            for r in t.iter()? {
                let (k, _) = r?;
                out.push(k.value().get(8..).unwrap_or_default().to_vec());
            }
            Ok(out)
        })?;
        raw.iter().map(|b| hash_from(b, "side block key")).collect()
    }

    /// The stored equivocation evidence, in (slot, producer) order.
    pub fn evidence(&self) -> Result<Vec<pp_ledger::Equivocation>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(EVIDENCE)?;
            let mut out = Vec::new();
            for r in t.iter()? {
                let (_, v) = r?;
                out.push(v.value().to_vec());
            }
            Ok(out)
        })?;
        raw.iter()
            .map(|b| {
                serde_json::from_slice(b).map_err(|e| StorageError::Corrupt {
                    what: "evidence",
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The hash of the last block that held transaction `id` when it joined the best chain (check
    /// that it still is on it).
    pub fn tx_block(&self, id: &Hash) -> Result<Option<Hash>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(TX_INDEX)?;
            Ok(t.get(id.as_bytes().as_slice())?.map(|v| v.value().to_vec()))
        })?;
        raw.map(|b| hash_from(&b, "tx index entry")).transpose()
    }

    /// Journals an accepted mempool transaction (durably, before it is acknowledged).
    pub fn put_mempool_tx(&self, t: &Transaction) -> Result<(), StorageError> {
        self.commit_chain(&ChainCommit {
            mempool_add: vec![t.clone()],
            ..ChainCommit::default()
        })
    }

    /// Every journaled mempool transaction. Undecodable entries are skipped (they could never
    /// have been accepted) and reported in the second value.
    pub fn mempool_txs(&self) -> Result<(Vec<Transaction>, usize), StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(MEMPOOL)?;
            let mut out = Vec::new();
            for r in t.iter()? {
                let (_, v) = r?;
                out.push(v.value().to_vec());
            }
            Ok(out)
        })?;
        let mut bad = 0;
        let mut txs = Vec::with_capacity(raw.len());
        for b in raw {
            match Transaction::from_canonical_bytes(&b) {
                Ok(t) => txs.push(t),
                Err(_) => bad += 1,
            }
        }
        Ok((txs, bad))
    }

    /// Replaces the stored bans (at most [`MAX_STORED_BANS`]).
    pub fn save_bans(&self, bans: &[StoredBan]) -> Result<(), StorageError> {
        self.write(|tx| write_bans(tx, bans))
    }

    /// The stored bans (entries that do not parse are skipped: a ban is advice, not state).
    pub fn bans(&self) -> Result<Vec<StoredBan>, StorageError> {
        #[derive(serde::Deserialize)]
        struct Value {
            reason: String,
            expires_at_ms: u64,
            manual: bool,
        }
        self.read(|tx| {
            let t = tx.open_table(BANS)?;
            let mut out = Vec::new();
            for r in t.iter()? {
                let (k, v) = r?;
                if let Ok(v) = serde_json::from_slice::<Value>(v.value()) {
                    out.push(StoredBan {
                        target: k.value().to_string(),
                        reason: v.reason,
                        expires_at_ms: v.expires_at_ms,
                        manual: v.manual,
                    });
                }
            }
            Ok(out)
        })
    }

    /// The stored address book; a database of an earlier version yields its flat `peers`
    /// list as new entries (see the module docs).
    pub fn addr_book(&self) -> Result<Option<pp_net::BookSnapshot>, StorageError> {
        let raw = self.read(|tx| {
            let t = tx.open_table(ADDR_BOOK)?;
            Ok(t.get("book")?.map(|v| v.value().to_vec()))
        })?;
        if let Some(raw) = raw {
            if raw.len() > MAX_BOOK_BYTES {
                return Err(StorageError::Corrupt {
                    what: "address book",
                    reason: format!("{} bytes, at most {MAX_BOOK_BYTES}", raw.len()),
                });
            }
            return serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|e| StorageError::Corrupt {
                    what: "address book",
                    reason: e.to_string(),
                });
        }
        let legacy = self.read(|tx| {
            let t = match tx.open_table(LEGACY_PEERS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::new();
            for r in t.iter()?.take(MAX_STORED_PEERS) {
                let (k, _) = r?;
                out.push(k.value().to_string());
            }
            Ok(out)
        })?;
        if legacy.is_empty() {
            return Ok(None);
        }
        let entries = legacy
            .iter()
            .filter_map(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|addr| pp_net::addrman::AddrEntry {
                addr,
                source: addr.ip(),
                table: pp_net::addrman::Table::New,
                attempts: 0,
                last_try: 0,
                last_success: 0,
                added: 0,
            })
            .collect();
        Ok(Some(pp_net::BookSnapshot {
            secret: None,
            entries,
            anchors: Vec::new(),
        }))
    }

    /// Replaces the stored address book (and drops the legacy `peers` table).
    pub fn save_addr_book(&self, book: &pp_net::BookSnapshot) -> Result<(), StorageError> {
        let raw = serde_json::to_vec(book).map_err(|e| StorageError::Corrupt {
            what: "address book",
            reason: e.to_string(),
        })?;
        self.write(|tx| {
            tx.open_table(ADDR_BOOK)?.insert("book", raw.as_slice())?;
            tx.delete_table(LEGACY_PEERS)?;
            Ok(())
        })
    }
}

/// Writes one [`ChainCommit`] into `tx`.
fn write_chain(tx: &redb::WriteTransaction, c: &ChainCommit) -> Result<(), redb::Error> {
    {
        let mut blocks = tx.open_table(BLOCKS)?;
        let mut txi = tx.open_table(TX_INDEX)?;
        for b in &c.blocks {
            let h = b.hash();
            blocks.insert(h.as_bytes().as_slice(), b.to_canonical_bytes().as_slice())?;
            // Only best-chain blocks are indexed, so that a side-chain block holding the
            // same transaction cannot hide where it is included.
            if c.best.iter().any(|(_, bh)| *bh == h) {
                for t in &b.transactions {
                    txi.insert(t.id().as_bytes().as_slice(), h.as_bytes().as_slice())?;
                }
            }
        }
    }
    {
        let mut best = tx.open_table(BEST)?;
        let mut side = tx.open_table(SIDE_BLOCKS)?;
        // Blocks stored off the best chain are side blocks until they join it.
        for b in &c.blocks {
            let h = b.hash();
            if !c.best.iter().any(|(_, bh)| *bh == h) {
                side.insert(side_key(b.header.index, &h).as_slice(), ())?;
            }
        }
        for (i, h) in &c.best {
            // A best block replaced by a fork switch becomes a side block.
            if let Some(old) = best.insert(*i, h.as_bytes().as_slice())? {
                if old.value() != h.as_bytes().as_slice() {
                    let old = hash_from(old.value(), "best chain hash").map_err(corrupt)?;
                    side.insert(side_key(*i, &old).as_slice(), ())?;
                }
            }
            side.remove(side_key(*i, h).as_slice())?;
        }
        if let Some(height) = c.height {
            // Entries above the new height belong to a chain that was abandoned.
            let stale: Vec<(u64, Vec<u8>)> = best
                .range(height.saturating_add(1)..)?
                .map(|r| r.map(|(k, v)| (k.value(), v.value().to_vec())))
                .collect::<Result<_, _>>()?;
            for (k, v) in stale {
                best.remove(k)?;
                let old = hash_from(&v, "best chain hash").map_err(corrupt)?;
                side.insert(side_key(k, &old).as_slice(), ())?;
            }
        }
        if let Some(floor) = c.side_floor {
            let end = side_key(floor, &Hash([0xff; 32]));
            let doomed: Vec<Vec<u8>> = side
                .range(..=end.as_slice())?
                .map(|r| r.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            let mut blocks = tx.open_table(BLOCKS)?;
            let mut stake = tx.open_table(STAKE_PROOFS)?;
            for k in doomed {
                side.remove(k.as_slice())?;
                if let Some(h) = k.get(8..) {
                    blocks.remove(h)?;
                    // A block off the best chain is never asked for again.
                    stake.remove(h)?;
                }
            }
        }
    }
    if !c.evidence.is_empty() {
        let mut ev = tx.open_table(EVIDENCE)?;
        for e in &c.evidence {
            let mut key = e.slot.to_be_bytes().to_vec();
            key.extend_from_slice(&e.producer.0);
            if ev.get(key.as_slice())?.is_some() || ev.len()? >= MAX_STORED_EVIDENCE as u64 {
                continue;
            }
            let value = serde_json::to_vec(e).map_err(|e| {
                corrupt(StorageError::Corrupt {
                    what: "evidence",
                    reason: e.to_string(),
                })
            })?;
            ev.insert(key.as_slice(), value.as_slice())?;
        }
    }
    {
        let mut mp = tx.open_table(MEMPOOL)?;
        for id in &c.mempool_remove {
            mp.remove(id.as_bytes().as_slice())?;
        }
        for t in &c.mempool_add {
            mp.insert(
                t.id().as_bytes().as_slice(),
                t.to_canonical_bytes().as_slice(),
            )?;
        }
    }
    if !c.stake_proofs.is_empty() {
        let mut t = tx.open_table(STAKE_PROOFS)?;
        for (h, answer) in &c.stake_proofs {
            t.insert(h.as_bytes().as_slice(), answer.as_slice())?;
        }
    }
    crate::state_commit::write_ops(tx, &c.state_tree)?;
    Ok(())
}

/// Key of a side block: its index (big-endian, so that keys sort by index) then its hash.
fn side_key(index: u64, h: &Hash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&index.to_be_bytes());
    k[8..].copy_from_slice(h.as_bytes());
    k
}

/// A decoding failure inside a write transaction, as the error redb's closures return.
fn corrupt(e: StorageError) -> redb::Error {
    redb::Error::Corrupted(e.to_string())
}

fn write_bans(tx: &redb::WriteTransaction, bans: &[StoredBan]) -> Result<(), redb::Error> {
    let mut t = tx.open_table(BANS)?;
    t.retain(|_, _| false)?;
    for b in bans.iter().take(MAX_STORED_BANS) {
        let value = serde_json::json!({
            "reason": b.reason,
            "expires_at_ms": b.expires_at_ms,
            "manual": b.manual,
        })
        .to_string();
        t.insert(b.target.as_str(), value.as_bytes())?;
    }
    Ok(())
}

impl pp_net::AddrStore for Storage {
    fn load(&self) -> Result<Option<pp_net::BookSnapshot>, pp_net::StoreError> {
        Ok(self.addr_book()?)
    }
    fn save(&self, snapshot: &pp_net::BookSnapshot) -> Result<(), pp_net::StoreError> {
        Ok(self.save_addr_book(snapshot)?)
    }
}

fn hash_from(b: &[u8], what: &'static str) -> Result<Hash, StorageError> {
    <[u8; 32]>::try_from(b)
        .map(Hash)
        .map_err(|_| StorageError::Corrupt {
            what,
            reason: format!("{} bytes instead of 32", b.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{Genesis, KeyPair};

    fn chain_of(n: u64) -> (Genesis, KeyPair, Vec<Block>) {
        let key = KeyPair::from_seed([5u8; 32]);
        let g = Genesis::devnet("n", key.public(), 1_700_000_000_000);
        let gh = g.hash();
        let mut parent = g.block().header;
        let mut out = Vec::new();
        for i in 1..=n {
            let tx = Transaction::transfer(
                &key,
                KeyPair::from_seed([6u8; 32]).public(),
                1,
                0,
                i - 1,
                &gh,
            );
            let b = pp_ledger::testing::produce_on(
                &g,
                &parent,
                i,
                g.genesis_time + i * 1000,
                1,
                vec![tx],
                &key,
                1 << 20,
            )
            .unwrap();
            parent = b.header.clone();
            out.push(b);
        }
        (g, key, out)
    }

    #[test]
    fn committed_blocks_survive_reopen_in_best_chain_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let (g, _, blocks) = chain_of(3);
        {
            let s = Storage::open(&path).unwrap();
            s.set_genesis_hash(&g.hash()).unwrap();
            s.commit_chain(&ChainCommit {
                blocks: blocks.clone(),
                best: blocks.iter().map(|b| (b.header.index, b.hash())).collect(),
                height: Some(3),
                ..Default::default()
            })
            .unwrap();
            s.close();
            assert!(matches!(s.best_chain(), Err(StorageError::Closed)));
        }
        let s = Storage::open(&path).unwrap();
        assert_eq!(s.genesis_hash().unwrap(), Some(g.hash()));
        let best = s.best_chain().unwrap();
        assert_eq!(best, blocks.iter().map(Block::hash).collect::<Vec<_>>());
        assert_eq!(s.block(&best[2]).unwrap().as_ref(), Some(&blocks[2]));
        let tx_id = blocks[1].transactions[0].id();
        assert_eq!(s.tx_block(&tx_id).unwrap(), Some(blocks[1].hash()));
    }

    #[test]
    fn lowering_the_height_truncates_the_best_chain() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&dir.path().join("c.redb")).unwrap();
        let (_, _, blocks) = chain_of(3);
        s.commit_chain(&ChainCommit {
            blocks: blocks.clone(),
            best: blocks.iter().map(|b| (b.header.index, b.hash())).collect(),
            height: Some(3),
            ..Default::default()
        })
        .unwrap();
        s.commit_chain(&ChainCommit {
            height: Some(1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.best_chain().unwrap(), vec![blocks[0].hash()]);
    }

    #[test]
    fn mempool_journal_adds_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&dir.path().join("c.redb")).unwrap();
        let (_, _, blocks) = chain_of(2);
        let t0 = blocks[0].transactions[0].clone();
        let t1 = blocks[1].transactions[0].clone();
        s.put_mempool_tx(&t0).unwrap();
        s.put_mempool_tx(&t1).unwrap();
        s.commit_chain(&ChainCommit {
            mempool_remove: vec![t0.id()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.mempool_txs().unwrap(), (vec![t1], 0));
    }

    #[test]
    fn bans_are_replaced_as_a_set_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.redb");
        let ban = |t: &str, manual| StoredBan {
            target: t.into(),
            reason: "r".into(),
            expires_at_ms: 99,
            manual,
        };
        {
            let s = Storage::open(&path).unwrap();
            s.save_bans(&[ban("127.0.0.9", true), ban("10.0.0.1", false)])
                .unwrap();
            s.save_bans(&[ban("127.0.0.9", true)]).unwrap();
            s.close();
        }
        let s = Storage::open(&path).unwrap();
        assert_eq!(s.bans().unwrap(), vec![ban("127.0.0.9", true)]);
    }

    #[test]
    fn the_address_book_survives_a_reopen_and_legacy_peers_migrate_into_it() {
        use pp_net::addrman::{AddrBook, Table};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let s = Storage::open(&path).unwrap();
        assert_eq!(s.addr_book().unwrap(), None);
        // A database of the earlier layout: a flat `peers` table.
        s.write(|tx| {
            let mut t = tx.open_table(LEGACY_PEERS)?;
            t.insert("127.0.0.1:1", 5)?;
            t.insert("10.0.0.2:7000", 5)?;
            t.insert("not an address", 5)?;
            Ok(())
        })
        .unwrap();
        let migrated = s.addr_book().unwrap().expect("legacy peers are read");
        assert_eq!(migrated.secret, None);
        let addrs: Vec<String> = migrated
            .entries
            .iter()
            .map(|e| e.addr.to_string())
            .collect();
        assert_eq!(addrs, vec!["10.0.0.2:7000", "127.0.0.1:1"]);
        assert!(migrated.entries.iter().all(|e| e.table == Table::New));
        // Saving the book replaces the legacy table; the book comes back after a reopen.
        let book = AddrBook::restore(&migrated, Hash([3; 32]), 10);
        let snap = book.snapshot(vec!["10.0.0.2:7000".parse().unwrap()]);
        s.save_addr_book(&snap).unwrap();
        s.close();
        let s = Storage::open(&path).unwrap();
        assert_eq!(s.addr_book().unwrap(), Some(snap));
        let legacy_gone = s
            .read(|tx| Ok(tx.open_table(LEGACY_PEERS).is_err()))
            .unwrap();
        assert!(legacy_gone);
    }

    #[test]
    fn only_best_chain_blocks_index_their_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(&dir.path().join("c.redb")).unwrap();
        let (_, _, blocks) = chain_of(1);
        s.put_block(&blocks[0]).unwrap();
        let id = blocks[0].transactions[0].id();
        assert_eq!(s.tx_block(&id).unwrap(), None);
        s.commit_chain(&ChainCommit {
            blocks: blocks.clone(),
            best: vec![(1, blocks[0].hash())],
            height: Some(1),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.tx_block(&id).unwrap(), Some(blocks[0].hash()));
    }
}
