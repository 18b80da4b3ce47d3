//! The explorer in a real browser: a `ppd` devnet node, its page loaded in headless Chromium
//! (`--dump-dom` gives the DOM after the page's script ran). The tip height shown matches
//! `/status` and advances between two loads, a `?block=N` lookup shows that block's hash, the
//! page breaks no rule of its Content-Security-Policy, and a screenshot is written to
//! `target/explorer.png`.
//!
//! Chromium is Debian's `chromium` package (`chromium` or `chromium-browser` on PATH; `.ci/run`
//! installs it). Without it the test fails under CI (`CI` set) and is skipped, saying so,
//! elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pp_integration_tests::{
    free_port_block, get_json, height, http, run_bounded, target_dir, wait_all_up, wait_for, Node,
};

/// How long one Chromium run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
/// Virtual time the page gets to run its script before the DOM is dumped.
const PAGE_TIME_MS: u32 = 3_000;

/// The Chromium binary on PATH, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs headless Chromium on `url` with `extra` arguments; returns stdout and stderr.
fn browse(chromium: &Path, profile: &Path, url: &str, extra: &[&str]) -> (String, String) {
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let budget = format!("--virtual-time-budget={PAGE_TIME_MS}");
    let mut args = vec![
        "--headless",
        "--no-sandbox", // tests may run as root (containers), where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--enable-logging=stderr",
        "--v=0",
        &profile_arg,
        &budget,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = run_bounded(chromium, &args, &[], BROWSER_TIMEOUT).unwrap();
    assert!(out.status.success(), "chromium failed: {out:?}");
    (out.stdout, out.stderr)
}

/// The text of the element with `id` in serialized HTML (the page's values are plain text).
fn text_of<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!("id=\"{id}\""))?;
    let start = at + dom[at..].find('>')? + 1;
    let len = dom[start..].find('<')?;
    Some(dom[start..start + len].trim())
}

fn shown_height(dom: &str) -> u64 {
    let h = text_of(dom, "height").unwrap_or_else(|| panic!("no #height in the page:\n{dom}"));
    h.parse()
        .unwrap_or_else(|_| panic!("#height shows {h:?}, not a height:\n{dom}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_the_live_tip_and_looks_up_a_block_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed: CI must run the explorer's browser test (see .ci/run)"
        );
        eprintln!("SKIPPED: no chromium or chromium-browser on PATH (apt-get install chromium)");
        return;
    };
    pp_integration_tests::ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_block(1);
    let args: Vec<String> = vec![
        "run".into(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    let node = Node::spawn("explorer", port, &args, &dir.path().join("ppd.log")).unwrap();
    let client = http();
    wait_all_up(
        &client,
        std::slice::from_ref(&node.url),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    wait_for(
        "the devnet to reach height 2",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { (height(&client, &node.url).await? >= 2).then_some(()) },
    )
    .await
    .unwrap();
    let profile = dir.path().join("chromium");
    // `live=0`: the page polls /status instead of following /events, whose never-ending
    // request would keep headless Chromium from ever dumping the DOM (its virtual time waits
    // for pending requests). The event stream itself is tested in pp-server's tests/events.rs.
    let url = format!("{}/?block=2&live=0", node.url);

    // The page shows the height /status gave just before or just after it loaded.
    let before = height(&client, &node.url).await.unwrap();
    let (dom, log) = browse(&chromium, &profile, &url, &["--dump-dom"]);
    let after = height(&client, &node.url).await.unwrap();
    let first = shown_height(&dom);
    assert!(
        (before..=after).contains(&first),
        "shown {first}, /status said {before} then {after}"
    );
    let tip = get_json(&client, &format!("{}/blocks/{first}", node.url))
        .await
        .unwrap();
    assert_eq!(text_of(&dom, "tip-hash"), tip["hash"].as_str(), "{dom}");
    assert_eq!(text_of(&dom, "network"), Some("pp-devnet"), "{dom}");
    // The lookup of ?block=2 shows block 2's hash.
    let block2 = get_json(&client, &format!("{}/blocks/2", node.url))
        .await
        .unwrap();
    assert_eq!(
        text_of(&dom, "result-hash"),
        block2["hash"].as_str(),
        "{dom}"
    );
    assert_eq!(text_of(&dom, "result-index"), Some("2"), "{dom}");
    // The latest blocks are listed, newest first.
    assert!(dom.contains(&format!("data-index=\"{first}\"")), "{dom}");
    // Nothing the page does is refused by its own Content-Security-Policy.
    assert!(
        !log.contains("Content Security Policy") && !log.contains("Refused to"),
        "{log}"
    );

    // The tip advances: a later load shows a greater height.
    wait_for(
        "the node to pass the height shown",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { (height(&client, &node.url).await? > first).then_some(()) },
    )
    .await
    .unwrap();
    let (dom, _) = browse(&chromium, &profile, &url, &["--dump-dom"]);
    let second = shown_height(&dom);
    assert!(second > first, "shown {first} then {second}");

    // A screenshot for people (and CI artifacts).
    let png = target_dir().join("explorer.png");
    let _ = std::fs::remove_file(&png);
    let shot = format!("--screenshot={}", png.display());
    browse(
        &chromium,
        &profile,
        &url,
        &[&shot, "--window-size=1280,1600", "--hide-scrollbars"],
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 10_000,
        "a blank screenshot? {} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", png.display());
}
