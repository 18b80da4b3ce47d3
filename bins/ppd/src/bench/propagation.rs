//! Block propagation: when each watched node had each block, from its `GET /events` stream.
//!
//! Every watched node (the submit node, the observer, and each `--watch` node) is followed on its
//! Server-Sent Events stream, and each `block` event (a block joined that node's best chain and is
//! on its disk) is timestamped when it reaches the generator. A block's origin is the first
//! watched node that announced it, which is its producer when the producer is watched (the
//! producer announces its block once it is durable; the others must receive, validate and store
//! it first). Its propagation to every other watched node is the time from that first
//! announcement to the node's own.
//!
//! All timestamps are taken by one clock, the generator's, on arrival of the event: on one
//! machine over loopback the streams' own delays are alike for every node, so the differences
//! measure the nodes. (On several machines, each stream's network delay would add to its node's
//! figure.)
//!
//! A node announces a block only once it is on its best chain. A node that first put a competing
//! block at that height on its best chain announces this one only when it switches forks, which
//! says when it adopted the block, not when it received it; such announcements are counted apart
//! (`via_fork_switch`), not in the propagation percentiles.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use pp_ledger::Hash;
use serde::Deserialize;
use tokio::sync::watch;

use super::report::{Latency, Propagation};

/// Most bytes of an SSE line or event not yet complete; more is not a node's event stream.
const MAX_PENDING: usize = 1024 * 1024;
/// A stream silent for this long is dead (the node sends `: ping` every 15 s when idle).
const STREAM_IDLE: Duration = Duration::from_secs(40);
/// Pause before reconnecting a stream that failed or ended.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Time allowed to connect to a node's stream and get its head.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Indexes per node whose announced hash is remembered (to tell a fork switch): far more than any
/// fork's depth.
const ANNOUNCED_KEPT: u64 = 4096;

/// One event of a Server-Sent Events stream: its name (`message` when it has none) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) name: String,
    pub(crate) data: String,
}

/// An incremental Server-Sent Events parser (the subset a node sends: `event:`, `data:`, comment
/// lines, events ended by an empty line), bounded in what it holds.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    name: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds `bytes` and appends the events they complete to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> anyhow::Result<()> {
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                if self.line.len() > MAX_PENDING {
                    bail!("an event stream line is longer than {MAX_PENDING} bytes");
                }
                continue;
            }
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8(line).context("an event stream line is not UTF-8")?;
            self.line_done(&line, out)?;
        }
        Ok(())
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<SseEvent>) -> anyhow::Result<()> {
        if line.is_empty() {
            let name = self.name.take();
            if let Some(data) = self.data.take() {
                out.push(SseEvent {
                    name: name.unwrap_or_else(|| "message".into()),
                    data,
                });
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_string()),
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
                if data.len() > MAX_PENDING {
                    bail!("an event's data is longer than {MAX_PENDING} bytes");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The `data` of a `block` event (`docs/http-api.md#get-events`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BlockEvent {
    pub(crate) index: u64,
    pub(crate) hash: Hash,
    pub(crate) tx_count: u64,
}

/// When one node announced one block.
#[derive(Debug, Clone, Copy)]
struct Announced {
    at: Instant,
    /// The node had announced another block at the same index before: it adopted this one by a
    /// fork switch.
    replaced: bool,
}

/// One block, with when each watched node first announced it.
#[derive(Debug)]
struct BlockTimes {
    tx_count: u64,
    /// By watched node.
    by_node: Vec<Option<Announced>>,
}

impl BlockTimes {
    /// The first announcement: (node, time).
    fn origin(&self) -> Option<(usize, Instant)> {
        self.by_node
            .iter()
            .enumerate()
            .filter_map(|(n, a)| a.map(|a| (n, a.at)))
            .min_by_key(|(_, at)| *at)
    }
}

/// Every watched node's block announcements, as received so far.
#[derive(Debug)]
pub(crate) struct Arrivals {
    /// The watched nodes' base URLs, by index.
    pub(crate) nodes: Vec<String>,
    blocks: HashMap<Hash, BlockTimes>,
    /// Per node: the hash it announced last at each recent index.
    announced: Vec<BTreeMap<u64, Hash>>,
    /// Events the nodes skipped because the generator read their stream too slowly (`lagged`).
    pub(crate) missed_events: u64,
    /// Streams that failed (connection refused, ended, unreadable).
    pub(crate) stream_errors: u64,
    /// The last stream error, for the report.
    pub(crate) last_error: Option<String>,
}

impl Arrivals {
    /// Nothing announced yet by `nodes`.
    pub(crate) fn new(nodes: Vec<String>) -> Arrivals {
        let n = nodes.len();
        Arrivals {
            nodes,
            blocks: HashMap::new(),
            announced: vec![BTreeMap::new(); n],
            missed_events: 0,
            stream_errors: 0,
            last_error: None,
        }
    }

    /// Records that node `node` announced `ev` at `at` (only its first announcement counts).
    pub(crate) fn record(&mut self, node: usize, ev: &BlockEvent, at: Instant) {
        let Some(announced) = self.announced.get_mut(node) else {
            return;
        };
        let replaced = announced.get(&ev.index).is_some_and(|h| *h != ev.hash);
        announced.insert(ev.index, ev.hash);
        if ev.index > ANNOUNCED_KEPT {
            *announced = announced.split_off(&(ev.index - ANNOUNCED_KEPT));
        }
        let n = self.nodes.len();
        let b = self.blocks.entry(ev.hash).or_insert_with(|| BlockTimes {
            tx_count: ev.tx_count,
            by_node: vec![None; n],
        });
        b.by_node[node].get_or_insert(Announced { at, replaced });
    }

    /// When node `node` announced blocks of at least `min_txs` transactions, at or after `from`.
    pub(crate) fn announcements_by(
        &self,
        node: usize,
        min_txs: u64,
        from: Instant,
    ) -> Vec<Instant> {
        self.blocks
            .values()
            .filter(|b| b.tx_count >= min_txs)
            .filter_map(|b| b.by_node.get(node).copied().flatten())
            .map(|a| a.at)
            .filter(|at| *at >= from)
            .collect()
    }

    /// Propagation of the blocks first announced within `from..=to`; blocks of at least `big`
    /// transactions are also counted apart; `slot_ms` converts to slots.
    pub(crate) fn propagation(
        &self,
        from: Instant,
        to: Instant,
        big: u64,
        slot_ms: Option<f64>,
    ) -> Propagation {
        let (mut all, mut large, mut switched) = (Vec::new(), Vec::new(), Vec::new());
        let (mut blocks, mut big_blocks, mut not_reached) = (0, 0, 0);
        for b in self.blocks.values() {
            let Some((origin, t0)) = b.origin() else {
                continue;
            };
            if t0 < from || t0 > to {
                continue;
            }
            let is_big = b.tx_count >= big;
            blocks += 1;
            big_blocks += u64::from(is_big);
            for (n, a) in b.by_node.iter().enumerate() {
                if n == origin {
                    continue;
                }
                match a {
                    None => not_reached += 1,
                    Some(a) => {
                        let ms = a.at.saturating_duration_since(t0).as_secs_f64() * 1000.0;
                        if a.replaced {
                            switched.push(ms);
                        } else {
                            all.push(ms);
                            if is_big {
                                large.push(ms);
                            }
                        }
                    }
                }
            }
        }
        let (all_ms, big_ms) = (Latency::of(all), Latency::of(large));
        Propagation {
            nodes: self.nodes.clone(),
            big_block_txs: big,
            blocks,
            big_blocks,
            all_slots: slot_ms.map(|s| all_ms.scaled(s)),
            all_ms,
            big_slots: slot_ms.map(|s| big_ms.scaled(s)),
            big_ms,
            via_fork_switch_ms: Latency::of(switched),
            not_reached,
            missed_events: self.missed_events,
            stream_errors: self.stream_errors,
            last_error: self.last_error.clone(),
        }
    }
}

/// [`Arrivals`] shared between the stream readers (writers) and the reporting code; the lock is
/// taken briefly and never across an `.await`.
#[derive(Debug, Clone)]
pub(crate) struct SharedArrivals(Arc<Mutex<Arrivals>>);

impl SharedArrivals {
    /// Nothing announced yet by `nodes`.
    pub(crate) fn new(nodes: Vec<String>) -> SharedArrivals {
        SharedArrivals(Arc::new(Mutex::new(Arrivals::new(nodes))))
    }

    /// Locks the arrivals (a poisoned lock still holds consistent data: writers never panic
    /// mid-way).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Arrivals> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Follows node `node`'s event stream at `base` into `arrivals` until `stop` turns true,
/// reconnecting (after [`RECONNECT_PAUSE`]) when the stream fails or ends.
pub(crate) async fn watch_node(
    http: reqwest::Client,
    node: usize,
    base: String,
    arrivals: SharedArrivals,
    mut stop: watch::Receiver<bool>,
) {
    while !*stop.borrow() {
        let result = tokio::select! {
            r = read_stream(&http, node, &base, &arrivals) => r,
            _ = stop.changed() => return,
        };
        {
            let mut a = arrivals.lock();
            a.stream_errors += 1;
            a.last_error = Some(match result {
                Ok(()) => format!("{base}/events ended"),
                Err(e) => format!("{e:#}"),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A client for event streams: no overall request timeout (a stream lasts the whole run), a
/// bounded connect.
pub(crate) fn stream_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")
}

/// Reads one connection of `base`'s event stream until it ends (`Ok`) or fails.
async fn read_stream(
    http: &reqwest::Client,
    node: usize,
    base: &str,
    arrivals: &SharedArrivals,
) -> anyhow::Result<()> {
    // Blocks only: a node that knows `types` does not send (or serialize) an event per
    // transaction; an older one ignores the query and the other events are skipped below.
    let url = format!("{base}/events?types=block");
    let mut resp = tokio::time::timeout(CONNECT_TIMEOUT, http.get(&url).send())
        .await
        .map_err(|_| anyhow::anyhow!("GET {url}: no answer within {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("GET {url} failed"))?;
    if !resp.status().is_success() {
        bail!("GET {url} answered {}", resp.status());
    }
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    loop {
        let chunk = tokio::time::timeout(STREAM_IDLE, resp.chunk())
            .await
            .map_err(|_| anyhow::anyhow!("{url} sent nothing for {STREAM_IDLE:?}"))?
            .with_context(|| format!("reading {url}"))?;
        let Some(chunk) = chunk else {
            return Ok(());
        };
        // One clock for every node: the moment the bytes reached the generator.
        let at = Instant::now();
        parser.feed(&chunk, &mut events)?;
        for ev in events.drain(..) {
            match ev.name.as_str() {
                "block" => {
                    let b: BlockEvent = serde_json::from_str(&ev.data)
                        .with_context(|| format!("{url}: unreadable block event {}", ev.data))?;
                    arrivals.lock().record(node, &b, at);
                }
                "lagged" => {
                    let missed = serde_json::from_str::<serde_json::Value>(&ev.data)
                        .ok()
                        .and_then(|v| v.get("missed")?.as_u64())
                        .unwrap_or(0);
                    arrivals.lock().missed_events += missed;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&str]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c.as_bytes(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn sse_events_are_parsed_across_chunks_and_comments_are_skipped() {
        let got = parse(&[
            ": ping\n\nevent: bl",
            "ock\r\ndata: {\"index\":1}\n",
            "\nevent: tx\ndata:a\ndata: b\n\ndata: x\n\n",
        ]);
        let ev = |n: &str, d: &str| SseEvent {
            name: n.into(),
            data: d.into(),
        };
        assert_eq!(
            got,
            vec![
                ev("block", "{\"index\":1}"),
                ev("tx", "a\nb"),
                ev("message", "x")
            ]
        );
        assert!(parse(&["event: block\ndata: 1\n"]).is_empty(), "not ended");
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut p = SseParser::default();
        let long = vec![b'a'; MAX_PENDING + 1];
        assert!(p.feed(&long, &mut Vec::new()).is_err());
    }

    fn block(index: u64, tag: u8, tx_count: u64) -> BlockEvent {
        BlockEvent {
            index,
            hash: Hash([tag; 32]),
            tx_count,
        }
    }

    #[test]
    fn propagation_is_timed_from_the_first_announcement_and_fork_switches_are_apart() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        let mut a = Arrivals::new(vec!["a".into(), "b".into(), "c".into()]);
        // Block 1 (1,200 txs) from a: b has it 100 ms later, c 300 ms later.
        a.record(0, &block(1, 1, 1200), ms(1000));
        a.record(1, &block(1, 1, 1200), ms(1100));
        a.record(2, &block(1, 1, 1200), ms(1300));
        // Block 2 (10 txs) from c; b has it 50 ms later, a never.
        a.record(2, &block(2, 2, 10), ms(2000));
        a.record(1, &block(2, 2, 10), ms(2050));
        // Block 2' from a at the same height; b adopts it by a fork switch 900 ms later.
        a.record(0, &block(2, 3, 10), ms(2010));
        a.record(1, &block(2, 3, 10), ms(2910));
        // Announced again later by a: the first announcement stands.
        a.record(0, &block(1, 1, 1200), ms(5000));
        // Block 0, before the window.
        a.record(0, &block(0, 9, 0), ms(0));
        a.record(1, &block(0, 9, 0), ms(10));

        let p = a.propagation(ms(500), ms(3000), 1000, Some(1000.0));
        assert_eq!((p.blocks, p.big_blocks), (3, 1));
        assert_eq!(p.all_ms.count, 3);
        assert_eq!(
            (p.all_ms.p50, p.all_ms.max),
            (Some(100.0), Some(300.0)),
            "{p:?}"
        );
        assert_eq!((p.big_ms.count, p.big_ms.p50), (2, Some(100.0)));
        assert_eq!(p.big_slots.as_ref().and_then(|l| l.max), Some(0.3));
        assert_eq!(
            (p.via_fork_switch_ms.count, p.via_fork_switch_ms.max),
            (1, Some(900.0))
        );
        // Block 2 never reached a; block 2' never reached c.
        assert_eq!(p.not_reached, 2);
        // What times the observer's imports: its announcements of blocks of N+ transactions.
        assert_eq!(a.announcements_by(1, 1000, ms(0)), vec![ms(1100)]);
        assert_eq!(a.announcements_by(1, 10, ms(2000)).len(), 2);
    }
}
