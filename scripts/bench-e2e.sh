#!/usr/bin/env bash
# End-to-end throughput of a given commit's nodes, measured with this checkout's load generator.
#
#   scripts/bench-e2e.sh <commit-or-branch> [-- extra `ppd bench` options]
#
# 1. Builds the commit's `ppd` in release, from a clean tree of that commit (`git archive`, so the
#    repository's own worktrees and metadata are not touched) with its own target directory, both
#    kept in $PP_BENCH_CACHE: a second run of the same commit does not build again.
# 2. Builds this checkout's `ppd` in release: its `ppd bench` is the load generator, so two commits
#    are always measured with the same generator.
# 3. Writes a 3-node testnet with the commit's `ppd testnet`, starts the 3 nodes, waits for blocks.
# 4. Runs `ppd bench` against node0 for $PP_BENCH_DURATION seconds (default 60), observer node1,
#    node2 watched too (block propagation is timed among all 3), funded key node0's, and writes
#    its JSON result (with the commit added) to $PP_BENCH_OUT (default ./bench-e2e-<commit>.json).
# 5. Stops the nodes (by their pids); the run directory (nodes' logs and data, the summary) is left
#    in $PP_BENCH_CACHE/run-<commit>-<time> for inspection.
#
# Environment: PP_BENCH_LEADER_MODE (classic), PP_BENCH_CACHE (default /tmp/pp-bench), PP_BENCH_DURATION (60), PP_BENCH_GRACE (30),
# PP_BENCH_HTTP_PORT (18180; nodes use it and the next two), PP_BENCH_P2P_PORT (19180),
# PP_BENCH_GEN (a prebuilt generator `ppd`, skipping step 2), CARGO_TARGET_DIR (for step 2).
# Builds run under `nice -n 10`. Needs git, cargo, curl and jq.
set -euo pipefail

usage() { sed -n '2,4p' "$0" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
rev=$1
shift
[[ ${1:-} == "--" ]] && shift
for tool in git cargo curl jq; do
    command -v "$tool" >/dev/null || { echo "bench-e2e: $tool is needed" >&2; exit 2; }
done

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
sha=$(git -C "$repo" rev-parse --verify "$rev^{commit}")
short=${sha:0:10}
cache=${PP_BENCH_CACHE:-/tmp/pp-bench}
duration=${PP_BENCH_DURATION:-60}
grace=${PP_BENCH_GRACE:-30}
http_port=${PP_BENCH_HTTP_PORT:-18180}
p2p_port=${PP_BENCH_P2P_PORT:-19180}
out=${PP_BENCH_OUT:-$PWD/bench-e2e-$short.json}
mkdir -p "$cache"
log() { echo "bench-e2e: $*" >&2; }

# --- 1. the commit's node binary -------------------------------------------------------------
node_bin=$cache/ppd-$sha
if [[ ! -x $node_bin ]]; then
    src=$cache/src-$short
    log "building ppd of $rev ($short) in release in $src"
    rm -rf "$src"
    mkdir -p "$src"
    git -C "$repo" archive --format=tar "$sha" | tar -x -C "$src"
    (cd "$src" && CARGO_TARGET_DIR=$cache/target-$short nice -n 10 \
        cargo build --release --locked -p ppd --bin ppd >&2)
    cp "$cache/target-$short/release/ppd" "$node_bin.tmp"
    mv "$node_bin.tmp" "$node_bin"
fi

# --- 2. the generator ------------------------------------------------------------------------
if [[ -n ${PP_BENCH_GEN:-} ]]; then
    gen=$PP_BENCH_GEN
else
    log "building the load generator (this checkout's ppd) in release"
    (cd "$repo" && nice -n 10 cargo build --release --locked -p ppd --bin ppd >&2)
    gen=${CARGO_TARGET_DIR:-$repo/target}/release/ppd
    [[ $gen == /* ]] || gen=$repo/$gen
fi
"$gen" bench --help >/dev/null || { echo "bench-e2e: $gen has no \`bench\` subcommand" >&2; exit 1; }

# --- 3. the testnet --------------------------------------------------------------------------
run=$cache/run-$short-$(date +%Y%m%d-%H%M%S)
mkdir -p "$run"
# Leader mode: PP_BENCH_LEADER_MODE (default classic, where every slot has a leader, so "slots
# with a block" and latencies compare across commits; `ppd testnet` defaults to praos since
# session 8, where about half the slots are empty by design at f = 1/2). Commits from before
# `--leader-mode` existed are classic anyway.
mode=${PP_BENCH_LEADER_MODE:-classic}
mode_args=()
if "$node_bin" testnet --help 2>/dev/null | grep -q -- --leader-mode; then
    mode_args=(--leader-mode "$mode")
elif [[ $mode != classic ]]; then
    log "ppd of $short has no --leader-mode (classic only)"; exit 2
fi
"$node_bin" testnet --nodes 3 --dir "$run/net" --base-http-port "$http_port" \
    --base-p2p-port "$p2p_port" "${mode_args[@]}" >"$run/testnet.txt"
pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_nodes EXIT
for i in 0 1 2; do
    RUST_LOG=${RUST_LOG:-info} "$node_bin" run --config "$run/net/node$i/ppd.toml" \
        >"$run/node$i.log" 2>&1 &
    pids+=("$!")
done
url() { echo "http://127.0.0.1:$((http_port + $1))"; }
# Every node up and the chain past block 2 on all of them (bounded: 120 s).
for _ in $(seq 1 600); do
    ok=1
    for i in 0 1 2; do
        h=$(curl -sf --max-time 2 "$(url "$i")/status" | jq -r '.height // 0' 2>/dev/null || echo 0)
        [[ ${h:-0} -ge 2 ]] || ok=0
    done
    [[ $ok == 1 ]] && break
    sleep 0.2
done
[[ $ok == 1 ]] || { log "the testnet did not reach height 2 within 120 s; logs in $run"; exit 1; }

# --- 4. the load -----------------------------------------------------------------------------
log "nodes of $short up; loading node0 for $duration s, observer node1; run dir $run"
raw=$run/bench.json
# The funded stakeholder key of node0: a praos testnet keeps it in net/cold/ (node.key is then
# only the node's network key); a classic one (older commits, or PP_BENCH_LEADER_MODE=classic,
# the default here) in the node's node.key.
key=$run/net/cold/node0.key
[[ -f $key ]] || key=$run/net/node0/node.key
"$gen" bench --node "$(url 0)" --observer "$(url 1)" --watch "$(url 2)" --key "$key" \
    --duration "$duration" --grace "$grace" --json "$raw" "$@" | tee "$run/summary.txt"
jq --arg commit "$sha" --arg rev "$rev" --arg gen "$(git -C "$repo" rev-parse HEAD)" \
    '{nodes_commit: $commit, nodes_rev: $rev, generator_commit: $gen} + .' "$raw" >"$out"
log "wrote $out"
