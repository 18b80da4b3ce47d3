#!/usr/bin/env bash
# Sizes of a light client against a full node after N blocks of a transfer load (issue 13):
# disk (data dir, bytes) and memory (VmRSS now, VmHWM peak) of `ppd light` and of a full node of
# the same 3-node praos testnet, and the size of one account-proof answer.
#
#   scripts/light-sizes.sh [BLOCKS]          (default 10000)
#
# Environment: PPD (the ppd binary; default: target/release/ppd of this checkout, built if
# missing), PP_SIZES_DIR (default /tmp/pp-light-sizes; wiped first), PP_SIZES_SLOT_MS (25),
# PP_SIZES_RATE (transfers per second, 100), PP_SIZES_HTTP_PORT (18280; nodes use it and the next
# two, the light client +10), PP_SIZES_P2P_PORT (19280), PP_SIZES_LIGHTS (the light clients to
# run side by side against the same nodes, `;`-separated `label|env|binary` entries; default
# `light||$PPD`; e.g. `light||$PPD;arena1|MALLOC_ARENA_MAX=1|$PPD;old||/path/to/old/ppd`; a binary
# whose name starts with `pp-light` is the slim light client, run without the `light`
# subcommand; each gets its own data dir and HTTP port, +10, +11, ...). Prints a summary and writes
# $PP_SIZES_DIR/sizes.json: for each light client its disk, RSS (fresh, 5 s after start, and at
# the end), peak RSS, threads and its end RSS split as /proc/PID/smaps_rollup does (anonymous:
# heap and stacks; file: the mapped binary and libraries), and copies each one's
# /proc/PID/smaps to $PP_SIZES_DIR/LABEL.smaps. Needs curl and jq. Every wait is bounded.
set -euo pipefail

blocks=${1:-10000}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=${PP_SIZES_DIR:-/tmp/pp-light-sizes}
slot_ms=${PP_SIZES_SLOT_MS:-25}
rate=${PP_SIZES_RATE:-100}
http=${PP_SIZES_HTTP_PORT:-18280}
p2p=${PP_SIZES_P2P_PORT:-19280}
light_http=$((http + 10))
ppd=${PPD:-$repo/target/release/ppd}
log() { echo "light-sizes: $*" >&2; }
for tool in curl jq; do
    command -v "$tool" >/dev/null || { log "$tool is needed"; exit 2; }
done
if [[ ! -x $ppd ]]; then
    log "building $ppd"
    (cd "$repo" && cargo build --release -p ppd --bin ppd >&2)
fi

rm -rf "$dir"
mkdir -p "$dir"
"$ppd" testnet --nodes 3 --dir "$dir/net" --slot-ms "$slot_ms" --slots-per-epoch 600 \
    --base-http-port "$http" --base-p2p-port "$p2p" --start-delay-ms 3000 >"$dir/testnet.txt"

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
for i in 0 1 2; do
    RUST_LOG=warn "$ppd" run --config "$dir/net/node$i/ppd.toml" >"$dir/node$i.log" 2>&1 &
    pids+=("$!")
done
node0_pid=${pids[0]}
IFS=';' read -r -a lights <<<"${PP_SIZES_LIGHTS:-light||$ppd}"
light_labels=(); light_pids=(); light_ports=()
for n in "${!lights[@]}"; do
    IFS='|' read -r label env bin <<<"${lights[$n]}"
    port=$((light_http + n))
    mkdir -p "$dir/$label"
    # `ppd light ...`, or `pp-light ...` (the slim binary: no subcommand).
    sub=(light); [[ $(basename "$bin") == pp-light* ]] && sub=()
    # shellcheck disable=SC2086 # env is a list of VAR=value words
    env RUST_LOG=warn $env "$bin" "${sub[@]}" --peer "127.0.0.1:$p2p" --genesis "$dir/net/genesis.json" \
        --full-node "http://127.0.0.1:$http" --data-dir "$dir/$label" \
        --http "127.0.0.1:$port" >"$dir/$label.log" 2>&1 &
    light_labels+=("$label"); light_pids+=("$!"); light_ports+=("$port")
    pids+=("$!")
done
light_pid=${light_pids[0]}

height() { curl -sf "http://127.0.0.1:$1/status" | jq -r '.height // empty' 2>/dev/null || true; }

# The nodes up (bounded: 60 s).
for _ in $(seq 1 120); do
    [[ -n $(height "$http") ]] && break
    sleep 0.5
done
[[ -n $(height "$http") ]] || { log "node0 did not start"; exit 1; }
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# Fresh: the light clients' RSS before they hold more than a few headers.
sleep 5
fresh_rss=()
for pid in "${light_pids[@]}"; do fresh_rss+=("$(kb "$pid" VmRSS)"); done

# The load, for long enough (the generator stops at its duration; we stop it at BLOCKS).
expected_s=$(( blocks * slot_ms * 2 / 1000 + 60 ))
"$ppd" bench --node "http://127.0.0.1:$http" --key "$dir/net/cold/node0.key" --rate "$rate" \
    --duration "$expected_s" --grace 0 --progress 10 >"$dir/bench.log" 2>&1 &
bench_pid=$!
pids+=("$bench_pid")

# Until node0 reaches BLOCKS (bounded: 3 × the expected time).
deadline=$(( $(date +%s) + 3 * expected_s ))
while :; do
    h=$(height "$http")
    [[ -n $h && $h -ge $blocks ]] && break
    (( $(date +%s) < deadline )) || { log "node0 at height ${h:-?} after $((3 * expected_s)) s"; exit 1; }
    sleep 2
done
kill "$bench_pid" 2>/dev/null || true
# The light clients at the nodes' tip (bounded: 120 s).
for _ in $(seq 1 240); do
    nh=$(height "$http"); behind=0
    for port in "${light_ports[@]}"; do
        lh=$(height "$port")
        [[ -n $lh && -n $nh && $((nh - lh)) -le 2 ]] || behind=1
    done
    [[ $behind == 0 ]] && break
    sleep 0.5
done
lh=$(height "$light_http"); nh=$(height "$http")
log "node0 height $nh, light client height ${lh:-?}"
load=$(cut -d' ' -f1-3 /proc/loadavg)

node_rss=$(kb "$node0_pid" VmRSS); node_hwm=$(kb "$node0_pid" VmHWM)
light_rss=$(kb "$light_pid" VmRSS); light_hwm=$(kb "$light_pid" VmHWM)
node_disk=$(du -sb "$dir/net/node0" | cut -f1)
light_disk=$(du -sb "$dir/${light_labels[0]}" | cut -f1)
rollup() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/smaps_rollup"; }
clients='[]'
for n in "${!light_pids[@]}"; do
    pid=${light_pids[$n]}
    clients=$(jq -c --arg lab "${light_labels[$n]}" --arg envs "$(cut -d'|' -f2 <<<"${lights[$n]}")" \
        --argjson height "$(height "${light_ports[$n]}" || echo 0)" \
        --argjson disk "$(du -sb "$dir/${light_labels[$n]}" | cut -f1)" \
        --argjson fresh "${fresh_rss[$n]}" --argjson rss "$(kb "$pid" VmRSS)" \
        --argjson hwm "$(kb "$pid" VmHWM)" --argjson threads "$(kb "$pid" Threads)" \
        --argjson anon "$(rollup "$pid" Anonymous)" \
        --argjson file "$(( $(rollup "$pid" Rss) - $(rollup "$pid" Anonymous) ))" \
        '. + [{"label": $lab, "env": $envs, height: $height, disk_bytes: $disk,
               fresh_rss_kb: $fresh, rss_kb: $rss, peak_rss_kb: $hwm, threads: $threads,
               anon_kb: $anon, file_kb: $file}]' <<<"$clients")
done
# The whole memory map of each light client, for a breakdown by mapping.
for n in "${!light_pids[@]}"; do
    cp "/proc/${light_pids[$n]}/smaps" "$dir/${light_labels[$n]}.smaps" 2>/dev/null || true
done
account=$(awk '/node1: account/ {print $3}' "$dir/testnet.txt")
proof_bytes=$(curl -sf "http://127.0.0.1:$http/proofs/accounts/$account" | wc -c)
# Transactions the generator had acknowledged at its last progress line (it is stopped mid-run).
txs=$(grep -o 'accepted [0-9]*' "$dir/bench.log" | tail -1 | cut -d' ' -f2 || true)

jq -n --argjson blocks "$nh" --argjson light_height "${lh:-0}" \
    --argjson node_disk "$node_disk" --argjson light_disk "$light_disk" \
    --argjson node_rss_kb "$node_rss" --argjson node_hwm_kb "$node_hwm" \
    --argjson light_rss_kb "$light_rss" --argjson light_hwm_kb "$light_hwm" \
    --argjson proof_answer_bytes "$proof_bytes" --arg slot_ms "$slot_ms" --arg rate "$rate" \
    --arg transactions "${txs:-}" --arg load "$load" --argjson clients "$clients" \
    '{blocks: $blocks, light_height: $light_height, slot_ms: $slot_ms, rate: $rate,
      transactions: $transactions, load_average: $load, light_clients: $clients,
      full_node: {disk_bytes: $node_disk, rss_kb: $node_rss_kb, peak_rss_kb: $node_hwm_kb},
      light_client: {disk_bytes: $light_disk, rss_kb: $light_rss_kb, peak_rss_kb: $light_hwm_kb},
      disk_ratio: ($light_disk / $node_disk), rss_ratio: ($light_rss_kb / $node_rss_kb),
      account_proof_answer_bytes: $proof_answer_bytes}' | tee "$dir/sizes.json"
