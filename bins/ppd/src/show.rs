//! Text output of the client commands (`--output text`): the node's JSON answers as lines made
//! for people. Pure functions of the answer, tolerant of missing fields (a field the node does
//! not send prints as `-`) and of new ones (a newer node's extra status fields are listed too).

use serde_json::Value;

/// A field as text: strings bare, null or missing as `-`, anything else as JSON.
fn field(v: &Value, key: &str) -> String {
    scalar(v.get(key))
}

fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(other) => other.to_string(),
    }
}

/// `label  value` lines with the values aligned.
fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS.mmm UTC` (proleptic Gregorian calendar).
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm), in unsigned arithmetic:
    // shifted to an era starting on 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// `GET /status`.
pub(crate) fn status(v: &Value) -> String {
    let p2p = match v.get("p2p_enabled").and_then(Value::as_bool) {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    let mut rows = vec![
        ("node", field(v, "node_id")),
        ("account", field(v, "public_key")),
        ("network", field(v, "network")),
        ("genesis", field(v, "genesis_hash")),
        ("height", field(v, "height")),
        ("tip", field(v, "tip_hash")),
        (
            "slot",
            format!("{} (epoch {})", field(v, "slot"), field(v, "epoch")),
        ),
        (
            "peers",
            format!(
                "{} ({} outbound, {} inbound; P2P {p2p})",
                field(v, "peers"),
                field(v, "outbound"),
                field(v, "inbound")
            ),
        ),
        (
            "pending",
            format!("{} transactions", field(v, "pending_transactions")),
        ),
    ];
    const SHOWN: [&str; 13] = [
        "node_id",
        "public_key",
        "network",
        "genesis_hash",
        "height",
        "tip_hash",
        "slot",
        "epoch",
        "peers",
        "outbound",
        "inbound",
        "p2p_enabled",
        "pending_transactions",
    ];
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            if !SHOWN.contains(&k.as_str()) && !val.is_object() && !val.is_array() {
                rows.push((k.as_str(), scalar(Some(val))));
            }
        }
    }
    table(&rows)
}

/// `GET /accounts/{id}`: balance, stake, nonce and how many transactions are pending.
pub(crate) fn account(v: &Value) -> String {
    let nonce = v.get("nonce").and_then(Value::as_u64);
    let pending_nonce = v.get("pending_nonce").and_then(Value::as_u64);
    let pending = match (nonce, pending_nonce) {
        (Some(n), Some(p)) => format!("{} (next nonce {p})", p.saturating_sub(n)),
        _ => "-".to_string(),
    };
    let stake = match v.get("stakeholder_id").and_then(Value::as_str) {
        Some(id) => format!("{} (stakeholder {id})", field(v, "stake")),
        None => field(v, "stake"),
    };
    table(&[
        ("account", field(v, "account")),
        ("balance", field(v, "balance")),
        ("stake", stake),
        ("nonce", field(v, "nonce")),
        ("pending", pending),
    ])
}

/// One transaction of a block, on one line.
fn tx_line(t: &Value) -> String {
    let kind = field(t, "type");
    let what = match kind.as_str() {
        "transfer" => format!(
            "transfer {} from {} to {}",
            field(t, "amount"),
            field(t, "from"),
            field(t, "to")
        ),
        "bond" => format!(
            "bond {} from {} as stakeholder {}",
            field(t, "amount"),
            field(t, "from"),
            field(t, "stakeholder_id")
        ),
        "unbond" => format!("unbond {} from {}", field(t, "amount"), field(t, "from")),
        other => format!("{other} {} from {}", field(t, "amount"), field(t, "from")),
    };
    format!(
        "{what} (fee {}, nonce {})",
        field(t, "fee"),
        field(t, "nonce")
    )
}

/// `GET /blocks/{index}` or `GET /blocks/hash/{hash}`.
pub(crate) fn block(v: &Value) -> String {
    let h = v.get("header").unwrap_or(&Value::Null);
    let time = match h.get("timestamp").and_then(Value::as_u64) {
        Some(ms) => format!("{} ({ms})", utc(ms)),
        None => "-".to_string(),
    };
    let txs: &[Value] = v
        .get("transactions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut rows = vec![
        ("block", field(h, "index")),
        ("hash", field(v, "hash")),
        ("prev", field(h, "prev_hash")),
        ("slot", field(h, "slot")),
        ("time", time),
        ("producer", field(h, "producer")),
        ("transactions", txs.len().to_string()),
    ];
    if let Some(best) = v.get("on_best_chain").and_then(Value::as_bool) {
        rows.push(("best chain", if best { "yes" } else { "no" }.to_string()));
    }
    let mut out = table(&rows);
    for t in txs {
        out.push_str("\n  ");
        out.push_str(&tx_line(t));
    }
    out
}

/// Why a transaction was dropped, from a `GET /transactions/{id}` answer.
pub(crate) fn drop_reason(v: &Value) -> String {
    match v.get("message").and_then(Value::as_str) {
        Some(m) => format!("{}: {m}", field(v, "reason")),
        None => field(v, "reason"),
    }
}

/// `GET /transactions/{id}`.
pub(crate) fn tx_status(v: &Value) -> String {
    let id = field(v, "id");
    match v.get("status").and_then(Value::as_str) {
        Some("included") => format!(
            "transaction {id} is included in block {} {}",
            scalar(v.pointer("/block/index")),
            scalar(v.pointer("/block/hash"))
        ),
        Some("pending") => format!("transaction {id} is pending (in the mempool)"),
        Some("dropped") => format!("transaction {id} was dropped: {}", drop_reason(v)),
        _ => format!("transaction {id}: {}", field(v, "status")),
    }
}

/// `node_id addr direction listen=.. tip=..` for a peer of `/peers`.
pub(crate) fn peer_line(p: &Value) -> String {
    format!(
        "{} {} {} listen={} tip={}",
        field(p, "node_id"),
        field(p, "addr"),
        field(p, "direction"),
        field(p, "listen_addr"),
        field(p, "tip_index")
    )
}

/// `GET /peers`: one line per peer.
pub(crate) fn peers(v: &Value) -> String {
    let peers: &[Value] = v
        .get("peers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if peers.is_empty() {
        return "no peers".to_string();
    }
    peers.iter().map(peer_line).collect::<Vec<_>>().join("\n")
}

/// A duration in milliseconds as `1d2h3m4s` (seconds resolution).
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m")] {
        if n > 0 || !out.is_empty() {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out.push_str(&format!("{s}s"));
    out
}

/// `GET /bans`: one line per ban.
pub(crate) fn bans(v: &Value) -> String {
    let bans: &[Value] = v
        .get("bans")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if bans.is_empty() {
        return "no bans".to_string();
    }
    bans.iter()
        .map(|b| {
            let kind = if b.get("manual").and_then(Value::as_bool) == Some(true) {
                "manual"
            } else {
                "automatic"
            };
            let left = b
                .get("remaining_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "-".to_string(), duration);
            format!(
                "{} {kind} expires in {left}: {}",
                field(b, "target"),
                field(b, "reason")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_735_689_600_000), "2025-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        assert_eq!(utc(1_795_498_793_105), "2026-11-24 05:39:53.105 UTC");
    }

    #[test]
    fn peer_lines_name_the_peer() {
        let p = json!({"node_id":"node1","addr":"127.0.0.1:5","direction":"outbound",
            "listen_addr":null,"tip_index":7});
        assert_eq!(peer_line(&p), "node1 127.0.0.1:5 outbound listen=- tip=7");
        assert_eq!(peers(&json!({"peers": []})), "no peers");
    }

    #[test]
    fn account_shows_pending_as_the_nonce_gap() {
        let t = account(
            &json!({"account":"ab","balance":10,"nonce":3,"pending_nonce":5,
            "stake":1000,"stakeholder_id":"alice"}),
        );
        assert!(t.contains("balance  10"), "{t}");
        assert!(t.contains("pending  2 (next nonce 5)"), "{t}");
        assert!(t.contains("1000 (stakeholder alice)"), "{t}");
    }

    #[test]
    fn block_lists_its_transactions() {
        let t = block(
            &json!({"hash":"hh","header":{"index":2,"slot":9,"timestamp":0,
            "producer":"pp","prev_hash":"qq"},"transactions":[
            {"type":"transfer","from":"a","to":"b","amount":5,"fee":1,"nonce":0},
            {"type":"bond","from":"a","stakeholder_id":"bob","amount":7,"fee":1,"nonce":1},
            {"type":"unbond","from":"a","amount":3,"fee":1,"nonce":2}]}),
        );
        assert!(t.starts_with("block         2\nhash          hh"), "{t}");
        assert!(t.contains("transfer 5 from a to b (fee 1, nonce 0)"), "{t}");
        assert!(t.contains("bond 7 from a as stakeholder bob"), "{t}");
        assert!(t.contains("unbond 3 from a"), "{t}");
        assert!(t.contains("1970-01-01 00:00:00.000 UTC"), "{t}");
    }

    #[test]
    fn tx_status_says_where_or_why() {
        assert!(
            tx_status(&json!({"id":"x","status":"included","block":{"index":4,"hash":"h"}}))
                .contains("included in block 4 h")
        );
        assert!(tx_status(&json!({"id":"x","status":"pending","block":null})).contains("pending"));
        let t = tx_status(&json!({"id":"x","status":"dropped","reason":"conflict",
            "message":"nonce taken"}));
        assert!(t.contains("dropped: conflict: nonce taken"), "{t}");
    }

    #[test]
    fn bans_and_status_render() {
        let t = bans(&json!({"bans":[{"target":"127.0.0.77","reason":"scanner",
            "remaining_ms":3_723_000,"manual":true}]}));
        assert_eq!(t, "127.0.0.77 manual expires in 1h2m3s: scanner");
        assert_eq!(bans(&json!({"bans":[]})), "no bans");
        let s = status(
            &json!({"node_id":"alice","height":3,"p2p_enabled":false,"peers":0,
            "version":"0.1.0"}),
        );
        assert!(s.contains("node     alice"), "{s}");
        assert!(s.contains("P2P off"), "{s}");
        assert!(s.contains("version  0.1.0"), "{s}");
    }
}
