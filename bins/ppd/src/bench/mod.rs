//! `ppd bench`: a load generator that measures a node (or a network) from the outside, over its
//! HTTP API, the way a wallet or an exchange meets it.
//!
//! 1. Funds `--accounts` fresh accounts from `--key` and waits until the node includes that.
//! 2. Starts timing every watched node's block announcements ([`propagation`]) and probing the
//!    observer's `GET /status` ([`probe`]) on a thread of their own, and probes for `--idle`
//!    seconds with no load (the idle baseline).
//! 3. Starts following the observer's best chain ([`follow`]) and sampling both nodes' mempools.
//! 4. Submits signed transfers for `--duration` seconds ([`load`]): one worker per request in
//!    flight, each owning some accounts and their nonces, paced to `--rate` (or unpaced).
//! 5. Waits up to `--grace` seconds for every acknowledged transaction to be included, asks the
//!    submit node about those that were not, and reports ([`report`]).
//!
//! Modelled on Solana's bench-tps and Aptos' transaction emitter: fund, then load from many
//! accounts with locally managed sequence numbers, and judge by what the chain includes.

mod api;
mod follow;
mod fund;
mod load;
mod probe;
mod propagation;
mod report;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use pp_ledger::Hash;
use tokio::sync::watch;

use self::api::Api;
use self::follow::SharedView;
use self::load::{Ack, LoadCtx, Pace, Sender, Tally};
use self::probe::{Phases, SharedProbes};
use self::propagation::SharedArrivals;
use self::report::{
    ConfigEcho, Latency, Lost, LostTx, MempoolSample, Propagation, Report, SlotFill, StatusLatency,
};
use crate::cli::BenchArgs;

/// Lost transactions asked about at `GET /transactions/{id}` (the oldest first).
pub(crate) const MAX_LOST_QUERIED: usize = 200;
/// Lost transactions listed in the report.
const MAX_LOST_LISTED: usize = 20;
/// Time between two mempool samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Time between two checks for the end of the grace period.
const GRACE_CHECK_EVERY: Duration = Duration::from_millis(250);
/// Most `--watch` nodes.
const MAX_WATCHED: usize = 32;

/// Checks the arguments before anything is sent.
fn check(args: &BenchArgs) -> anyhow::Result<()> {
    let within = |v: u64, lo: u64, hi: u64, name: &str| -> anyhow::Result<()> {
        if !(lo..=hi).contains(&v) {
            bail!("{name} {v} is not between {lo} and {hi}");
        }
        Ok(())
    };
    within(args.accounts as u64, 1, 1000, "--accounts")?;
    within(args.concurrency as u64, 1, 512, "--concurrency")?;
    within(args.batch as u64, 1, 256, "--batch")?;
    within(args.duration, 1, 86_400, "--duration")?;
    within(args.grace, 0, 3600, "--grace")?;
    within(args.progress, 1, 3600, "--progress")?;
    within(args.fund, 1, u64::MAX, "--fund")?;
    within(args.idle, 0, 600, "--idle")?;
    within(args.status_every, 5, 10_000, "--status-every")?;
    within(args.big_block, 1, u64::MAX, "--big-block")?;
    within(
        args.watch.len() as u64,
        0,
        MAX_WATCHED as u64,
        "the number of --watch nodes",
    )?;
    Ok(())
}

/// Runs the benchmark described by `args` and returns what it measured.
pub(crate) async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    check(args)?;
    let concurrency = args.concurrency.min(args.accounts);
    let api = Api::new(&args.node, concurrency + 4)?;
    let observer = match &args.observer {
        Some(url) => Api::new(url, 4)?,
        None => api.clone(),
    };
    let funder = args.key.load()?;
    let node_status = api
        .status()
        .await
        .with_context(|| format!("cannot read the status of {}", api.base()))?;
    let genesis = node_status.genesis_hash;
    let observed = observer
        .status()
        .await
        .with_context(|| format!("cannot read the status of {}", observer.base()))?;
    if observed.genesis_hash != genesis {
        bail!(
            "the observer {} is on another network (genesis {}) than {} (genesis {genesis})",
            observer.base(),
            observed.genesis_hash,
            api.base()
        );
    }

    let t = Instant::now();
    eprintln!(
        "bench: funding {} accounts from {}",
        args.accounts,
        funder.public()
    );
    let keys =
        fund::fund_accounts(&api, &funder, &genesis, args.accounts, args.fund, args.fee).await?;
    eprintln!("bench: funded in {:.1} s", t.elapsed().as_secs_f64());

    let watched = watched_nodes(&api, &observer, &args.watch, &genesis).await?;
    let observer_index = watched
        .iter()
        .position(|u| u == observer.base())
        .unwrap_or_default();
    let arrivals = SharedArrivals::new(watched.clone());
    let probes = SharedProbes::default();
    let status_every = Duration::from_millis(args.status_every);
    let (measure_stop, measure_stop_rx) = watch::channel(false);
    let idle_start = Instant::now();
    let measurer = spawn_measurements(
        Measurements {
            streams: propagation::stream_client()?,
            observer: Api::new(observer.base(), probe::MAX_PROBES_IN_FLIGHT)?,
            arrivals: arrivals.clone(),
            probes: probes.clone(),
            every: status_every,
        },
        measure_stop_rx,
    )?;
    eprintln!(
        "bench: timing block announcements on {} nodes; probing {}/status every {} ms, idle for \
         {} s",
        watched.len(),
        observer.base(),
        args.status_every,
        args.idle
    );
    tokio::time::sleep(Duration::from_secs(args.idle)).await;

    let first = observer
        .status()
        .await
        .context("cannot read the observer's status")?;
    let view = SharedView::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let follower = tokio::spawn(follow::follow(
        observer.clone(),
        view.clone(),
        first.height,
        stop_rx.clone(),
    ));

    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let measured = Measured {
        arrivals: arrivals.clone(),
        probes: probes.clone(),
        idle_start,
        observer_index,
        big_block: args.big_block,
        status_every,
        observer: observer.base().to_string(),
    };
    let tally = Arc::new(Tally::default());
    let recipients = keys.iter().map(|k| k.public()).collect();
    let ctx = Arc::new(LoadCtx::new(
        api.clone(),
        genesis,
        args.fee,
        args.batch,
        Pace::new(start, end, args.rate),
        tally.clone(),
        recipients,
    ));
    let sampler = tokio::spawn(sample(
        Sampling {
            node: api.clone(),
            observer: observer.clone(),
            view: view.clone(),
            tally: tally.clone(),
            start,
            progress: Duration::from_secs(args.progress),
            measured: measured.clone(),
        },
        stop_rx,
    ));
    eprintln!(
        "bench: loading {} for {} s from {} accounts, {} in flight, rate {}",
        api.base(),
        args.duration,
        args.accounts,
        concurrency,
        if args.rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{} tx/s", args.rate)
        }
    );
    run_workers(&ctx, keys, concurrency).await;
    let load_end = Instant::now();
    let load_seconds = (load_end - start).as_secs_f64();
    // The slot at the end of the load; if the observer does not answer now, the last slot its
    // follower saw (the results gathered so far are worth more than this one figure).
    let last_slot = match observer.status().await {
        Ok(s) => s.slot,
        Err(e) => {
            eprintln!("bench: cannot read the observer's status at the end of the load: {e:#}");
            view.lock().last_slot().unwrap_or(first.slot)
        }
    };

    wait_grace(&tally, &view, Duration::from_secs(args.grace)).await;
    let _ = stop_tx.send(true);
    let _ = follower.await;
    let samples = sampler.await.unwrap_or_default();
    let _ = measure_stop.send(true);
    if tokio::task::spawn_blocking(move || measurer.join())
        .await
        .map_or(true, |r| r.is_err())
    {
        eprintln!("bench: a measurement thread failed");
    }

    let lost = lost(&api, &tally, &view).await;
    let fill = slot_fill(&view, first.slot, last_slot);
    let (latency_ms, included_own) = latencies(&tally, &view);
    let v = view.lock();
    let included_tps = fill.slot_ms.filter(|_| fill.total > 0).map(|ms| {
        v.txs_in_slots(&(fill.first..=fill.last)) as f64 / (fill.total as f64 * ms / 1000.0)
    });
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let (propagation, status_latency) = measured.results(start, load_end, fill.slot_ms);
    let report = Report {
        version: 2,
        node: api.base().to_string(),
        observer: observer.base().to_string(),
        config: ConfigEcho {
            accounts: args.accounts,
            fund: args.fund,
            rate: args.rate,
            duration_s: args.duration,
            grace_s: args.grace,
            concurrency,
            batch: args.batch,
            fee: args.fee,
        },
        batch_form: ctx.batch_form().name(),
        load_seconds,
        submitted: tally.submitted.load(Ordering::Relaxed),
        accepted,
        accepted_tps: accepted as f64 / load_seconds,
        rejected_total: tally.rejected_total.load(Ordering::Relaxed),
        rejected: tally
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        included_own,
        included_tps,
        latency_slots: fill.slot_ms.map(|ms| latency_ms.scaled(ms)),
        latency_ms,
        slots: fill,
        lost,
        nonce_regressions: tally.nonce_regressions.load(Ordering::Relaxed),
        resync_failures: tally.resync_failures.load(Ordering::Relaxed),
        observer_blocks_rolled_back: v.blocks_rolled_back,
        observer_poll_errors: v.poll_errors,
        observer_last_error: v.last_error.clone(),
        mempool: samples,
        propagation,
        status_latency,
    };
    Ok(report)
}

/// The nodes whose block announcements are timed: the submit node, the observer and the `watch`
/// nodes, each once, all checked to be on the network of `genesis`.
async fn watched_nodes(
    api: &Api,
    observer: &Api,
    watch: &[String],
    genesis: &Hash,
) -> anyhow::Result<Vec<String>> {
    let mut nodes = vec![api.base().to_string()];
    for url in watch {
        let node = Api::new(url, 1)?;
        let status = node
            .status()
            .await
            .with_context(|| format!("cannot read the status of {}", node.base()))?;
        if status.genesis_hash != *genesis {
            bail!(
                "the watched node {} is on another network (genesis {}) than {} (genesis \
                 {genesis})",
                node.base(),
                status.genesis_hash,
                api.base()
            );
        }
        nodes.push(node.base().to_string());
    }
    nodes.push(observer.base().to_string());
    let mut seen = std::collections::HashSet::new();
    nodes.retain(|n| seen.insert(n.clone()));
    Ok(nodes)
}

/// What the measurement thread needs.
struct Measurements {
    /// The event streams' client.
    streams: reqwest::Client,
    /// The observer, with a connection pool for the probes.
    observer: Api,
    arrivals: SharedArrivals,
    probes: SharedProbes,
    every: Duration,
}

/// Runs the block-announcement streams and the `/status` probes until `stop` changes, each on a
/// thread of its own with a single-threaded runtime of its own: the load's signing workers (on
/// the main runtime) cannot delay their timestamps, and neither can each other (three streams
/// parse bursts of events while a probe waits for its answer); only the operating system can.
fn spawn_measurements(m: Measurements, stop: watch::Receiver<bool>) -> anyhow::Result<Measurers> {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build a measurement runtime")
    };
    let (streams_rt, probe_rt) = (runtime()?, runtime()?);
    let streams_stop = stop.clone();
    let streams = std::thread::Builder::new()
        .name("bench-streams".into())
        .spawn(move || {
            streams_rt.block_on(async move {
                let nodes = m.arrivals.lock().nodes.clone();
                let streams: Vec<_> = nodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, base)| {
                        tokio::spawn(propagation::watch_node(
                            m.streams.clone(),
                            i,
                            base,
                            m.arrivals.clone(),
                            streams_stop.clone(),
                        ))
                    })
                    .collect();
                for s in streams {
                    let _ = s.await;
                }
            })
        })
        .context("cannot start the event-stream thread")?;
    let probe = std::thread::Builder::new()
        .name("bench-probe".into())
        .spawn(move || {
            m.probes.lock().scheduling = probe::realtime_prober();
            probe_rt.block_on(probe::probe(m.observer, m.every, m.probes, stop))
        })
        .context("cannot start the probe thread")?;
    Ok(Measurers { streams, probe })
}

/// The measurement threads of [`spawn_measurements`].
struct Measurers {
    streams: std::thread::JoinHandle<()>,
    probe: std::thread::JoinHandle<()>,
}

impl Measurers {
    /// Waits for both threads; `Err` if either panicked.
    fn join(self) -> Result<(), ()> {
        let streams = self.streams.join();
        let probe = self.probe.join();
        streams.and(probe).map_err(|_| ())
    }
}

/// What the measurement thread records, with what the report needs to read it.
#[derive(Clone)]
struct Measured {
    arrivals: SharedArrivals,
    probes: SharedProbes,
    idle_start: Instant,
    observer_index: usize,
    big_block: u64,
    status_every: Duration,
    observer: String,
}

impl Measured {
    /// Propagation of the blocks first announced within the load `start..=end`, and the
    /// `/status` latencies (the load being `start..end`).
    fn results(
        &self,
        start: Instant,
        end: Instant,
        slot_ms: Option<f64>,
    ) -> (Propagation, StatusLatency) {
        let (propagation, imports) = {
            let a = self.arrivals.lock();
            (
                a.propagation(start, end, self.big_block, slot_ms),
                a.announcements_by(self.observer_index, self.big_block, start),
            )
        };
        let phases = Phases {
            idle_start: self.idle_start,
            load_start: start,
            load_end: end,
        };
        let status = self.probes.lock().summary(
            phases,
            imports,
            self.big_block,
            self.status_every,
            &self.observer,
        );
        (propagation, status)
    }
}

/// Spreads the accounts over `concurrency` workers and runs them to the end of the load.
async fn run_workers(ctx: &Arc<LoadCtx>, keys: Vec<pp_ledger::KeyPair>, concurrency: usize) {
    let mut groups: Vec<Vec<Sender>> = (0..concurrency).map(|_| Vec::new()).collect();
    for (i, key) in keys.into_iter().enumerate() {
        groups[i % concurrency].push(Sender::new(i, key));
    }
    let handles: Vec<_> = groups
        .into_iter()
        .map(|g| tokio::spawn(load::worker(ctx.clone(), g)))
        .collect();
    for h in handles {
        if let Err(e) = h.await {
            eprintln!("bench: a worker failed: {e}");
        }
    }
}

/// How many acknowledged transactions the view includes.
fn included_count(tally: &Tally, view: &SharedView) -> (u64, u64) {
    let acks = tally.acks.lock().unwrap_or_else(|e| e.into_inner());
    let v = view.lock();
    let included = acks.keys().filter(|id| v.included_at(id).is_some()).count() as u64;
    (included, acks.len() as u64)
}

/// Waits until every acknowledged transaction is included, or `grace` has passed.
async fn wait_grace(tally: &Tally, view: &SharedView, grace: Duration) {
    let deadline = Instant::now() + grace;
    loop {
        let (included, acked) = included_count(tally, view);
        if included >= acked || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(GRACE_CHECK_EVERY).await;
    }
}

/// Submit → included latencies (ms) of the included acknowledged transactions, and their count.
fn latencies(tally: &Tally, view: &SharedView) -> (Latency, u64) {
    let acks = tally.acks.lock().unwrap_or_else(|e| e.into_inner());
    let v = view.lock();
    let ms: Vec<f64> = acks
        .iter()
        .filter_map(|(id, a)| {
            let seen = v.included_at(id)?;
            Some(seen.saturating_duration_since(a.submitted_at).as_secs_f64() * 1000.0)
        })
        .collect();
    let n = ms.len() as u64;
    (Latency::of(ms), n)
}

/// The measured slots: those that began after `first_slot` (the slot at the start of the load)
/// and ended before `last_slot` (the slot at its end) began.
fn slot_fill(view: &SharedView, first_slot: u64, last_slot: u64) -> SlotFill {
    let v = view.lock();
    let first = first_slot + 1;
    let last = last_slot.saturating_sub(1);
    let total = (last + 1).saturating_sub(first);
    let with_block = if total > 0 {
        v.slots_with_block(&(first..=last))
    } else {
        0
    };
    SlotFill {
        first,
        last,
        total,
        with_block,
        fill: (total > 0).then(|| with_block as f64 / total as f64),
        slot_ms: v.slot_ms(),
    }
}

/// The acknowledged transactions not included, with what the submit node says about the oldest.
async fn lost(api: &Api, tally: &Tally, view: &SharedView) -> Lost {
    let mut missing: Vec<(Hash, Ack)> = {
        let acks = tally.acks.lock().unwrap_or_else(|e| e.into_inner());
        let v = view.lock();
        acks.iter()
            .filter(|(id, _)| v.included_at(id).is_none())
            .map(|(id, a)| (*id, *a))
            .collect()
    };
    missing.sort_by_key(|(_, a)| a.submitted_at);
    let mut out = Lost {
        count: missing.len() as u64,
        ..Lost::default()
    };
    for (i, (id, ack)) in missing.iter().enumerate() {
        let reason = if i < MAX_LOST_QUERIED {
            api.tx_status(id).await
        } else {
            "not_queried".to_string()
        };
        *out.by_reason.entry(reason.clone()).or_default() += 1;
        if out.examples.len() < MAX_LOST_LISTED {
            out.examples.push(LostTx {
                id: id.to_string(),
                from: ack.from.to_string(),
                nonce: ack.nonce,
                reason,
            });
        }
    }
    out
}

/// What the sampler reads.
struct Sampling {
    node: Api,
    observer: Api,
    view: SharedView,
    tally: Arc<Tally>,
    start: Instant,
    progress: Duration,
    measured: Measured,
}

/// Samples both mempools every second and prints a progress line every `progress`, until `stop`.
async fn sample(s: Sampling, mut stop: watch::Receiver<bool>) -> Vec<MempoolSample> {
    let mut samples = Vec::new();
    let mut next_line = s.start + s.progress;
    loop {
        let (n, o) = tokio::join!(s.node.status(), s.observer.status());
        let t = Instant::now();
        let sample = MempoolSample {
            t_s: t.duration_since(s.start).as_secs_f64(),
            node: n.as_ref().ok().map(|x| x.pending_transactions),
            observer: o.as_ref().ok().map(|x| x.pending_transactions),
            observer_height: o.as_ref().ok().map(|x| x.height),
        };
        if t >= next_line {
            eprintln!("{}", progress_line(&s, &sample));
            let slot_ms = s.view.lock().slot_ms();
            let (p, st) = s.measured.results(s.start, t, slot_ms);
            eprintln!("        {} | {}", p.short(), st.short());
            next_line += s.progress;
        }
        samples.push(sample);
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return samples;
        }
    }
}

/// `[ 10s] accepted 12034 (1203/s) rejected 0 | included 11000 | mempool node 900 observer 850 | height 42`
fn progress_line(s: &Sampling, sample: &MempoolSample) -> String {
    let accepted = s.tally.accepted.load(Ordering::Relaxed);
    let rejected = s.tally.rejected_total.load(Ordering::Relaxed);
    let (included, acked) = included_count(&s.tally, &s.view);
    let show = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |x| x.to_string());
    format!(
        "[{:>5.0}s] accepted {accepted} ({:.0}/s) rejected {rejected} | included {included} of \
         {acked} | mempool node {} observer {} | height {}",
        sample.t_s,
        accepted as f64 / sample.t_s.max(0.001),
        show(sample.node),
        show(sample.observer),
        show(sample.observer_height),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn args(extra: &[&str]) -> BenchArgs {
        let mut all = vec!["ppd", "bench", "--key", "k"];
        all.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(all).unwrap().command {
            Some(crate::cli::Command::Bench(b)) => b,
            other => panic!("not bench: {other:?}"),
        }
    }

    #[test]
    fn out_of_range_options_are_refused_before_anything_is_sent() {
        assert!(check(&args(&[])).is_ok());
        let watch = args(&["--watch", "http://a:1,http://b:2", "--watch", "http://c:3"]).watch;
        assert_eq!(watch.len(), 3);
        let many: Vec<String> = (0..=MAX_WATCHED).map(|i| format!("h{i}:1")).collect();
        assert!(check(&args(&["--watch", &many.join(",")])).is_err());
        for bad in [
            &["--accounts", "0"][..],
            &["--accounts", "1001"],
            &["--concurrency", "0"],
            &["--batch", "257"],
            &["--duration", "0"],
            &["--grace", "3601"],
            &["--progress", "0"],
            &["--fund", "0"],
            &["--idle", "601"],
            &["--status-every", "4"],
            &["--status-every", "10001"],
            &["--big-block", "0"],
        ] {
            assert!(check(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_measured_slots_are_those_wholly_inside_the_load() {
        let view = SharedView::default();
        let f = slot_fill(&view, 10, 20);
        assert_eq!((f.first, f.last, f.total, f.with_block), (11, 19, 9, 0));
        assert_eq!(f.fill, Some(0.0));
        let f = slot_fill(&view, 10, 11);
        assert_eq!((f.total, f.fill), (0, None));
    }
}
