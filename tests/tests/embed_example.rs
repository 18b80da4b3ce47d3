//! The README's "Embedding the node" program: the README quotes `crates/pp-server/examples/embed.rs`
//! verbatim, lists the dependencies it uses, and the program runs to completion (two nodes, a
//! transfer included on both).

use std::time::Duration;

use pp_integration_tests::{example_bin, run_bounded};

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../crates/pp-server/examples/embed.rs");

/// The README's section on embedding.
fn section() -> &'static str {
    let start = README
        .find("## Embedding the node")
        .expect("README has no \"Embedding the node\" section");
    let rest = &README[start + 1..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    &README[start..start + end]
}

/// The body of the first fenced block of `lang` in `text`.
fn fenced<'a>(text: &'a str, lang: &str) -> &'a str {
    let open = format!("```{lang}\n");
    let start = text.find(&open).expect("no such fenced block") + open.len();
    let len = text[start..].find("```\n").expect("unterminated block");
    &text[start..start + len]
}

#[test]
fn the_readme_quotes_the_embedding_example_verbatim() {
    assert_eq!(
        fenced(section(), "rust"),
        EXAMPLE,
        "README.md's embedding block differs from crates/pp-server/examples/embed.rs: copy the file into the README"
    );
}

#[test]
fn the_readme_lists_every_crate_the_embedding_example_uses() {
    let toml = fenced(section(), "toml");
    for (krate, path) in [
        ("pp-server", "pp_server::"),
        ("pp-ledger", "pp_ledger::"),
        ("tokio", "tokio::"),
        ("tracing-subscriber", "tracing_subscriber::"),
    ] {
        assert!(EXAMPLE.contains(path), "the example no longer uses {krate}");
        assert!(
            toml.lines().any(|l| l.starts_with(&format!("{krate} = "))),
            "the README's [dependencies] lack {krate}"
        );
    }
    // And nothing else outside std.
    let used: Vec<&str> = EXAMPLE
        .lines()
        .filter_map(|l| l.trim().strip_prefix("use "))
        .map(|l| l.split("::").next().unwrap_or(""))
        .filter(|c| *c != "std")
        .collect();
    for c in used {
        assert!(
            toml.contains(&format!("{} = ", c.replace('_', "-"))),
            "the example uses {c}, missing from the README's [dependencies]"
        );
    }
}

#[test]
fn the_embedding_example_runs_to_completion() {
    let bin = example_bin("embed").unwrap();
    let out = run_bounded(&bin, &[], &[("RUST_LOG", "warn")], Duration::from_secs(120)).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("carol's balance: 1000 on alice, 1000 on bob"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout
            .matches("explorer and HTTP API at http://127.0.0.1:")
            .count(),
        2,
        "{}",
        out.stdout
    );
}
