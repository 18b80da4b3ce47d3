//! Helpers shared by the integration tests: fast test nodes and bounded waiting.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::{Duration, Instant};

use pp_ledger::{Block, Genesis, Hash, KeyPair};
use pp_net::ChainView;
use pp_server::{Clock, Server, SystemClock};

/// Slot length used by the tests: short so blocks come quickly, long enough for 2 cores.
pub const SLOT: Duration = Duration::from_millis(150);

/// Polls `cond` every 25 ms until it holds or `limit` passes; returns whether it held.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    cond()
}

/// Now, unix ms.
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// A single-node devnet server with the given key, difficulty 1, fast slots, in `dir`.
pub fn single(dir: &Path, key: &KeyPair) -> Server {
    let mut s = Server::new(1);
    s.set_data_dir(dir);
    s.set_key(key.clone());
    s.set_slot_duration(SLOT);
    s
}

/// A devnet genesis with `id` as sole stakeholder, fast slots, difficulty 1.
pub fn fast_genesis(id: &str, key: &KeyPair) -> Genesis {
    let mut g = Genesis::devnet(id, key.public(), now_ms());
    g.slot_duration_ms = SLOT.as_millis() as u64;
    g.difficulty = 1;
    g
}

/// A raw pp-net peer's chain view with nothing to serve.
pub struct Empty;

impl ChainView for Empty {
    fn tip(&self) -> (u64, Hash) {
        (0, Hash::ZERO)
    }
    fn get_blocks(&self, _from_index: u64, _count: u32) -> Vec<Block> {
        Vec::new()
    }
    fn get_headers(&self, _locator: &[Hash], _count: u32) -> Vec<pp_ledger::SignedHeader> {
        Vec::new()
    }
}
