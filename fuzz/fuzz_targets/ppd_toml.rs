//! The `ppd.toml` parser (`ppd::config::FileConfig::parse`) and its validation
//! (`Settings::merge_with` with no command-line flags and no DNS): never panic; an accepted file re-serializes
//! (`to_toml`, as `ppd testnet` writes it) to TOML that parses back to the same config, which
//! validates the same way.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use ppd::cli::RunArgs;
use ppd::config::{no_resolver, FileConfig, Settings};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("/fuzz/ppd.toml");
    let Ok(cfg) = FileConfig::parse(data, path) else {
        return;
    };
    let text = cfg.to_toml();
    let back = FileConfig::parse(text.as_bytes(), path).expect("written config parses back");
    assert_eq!(back, cfg, "TOML round trip differs");
    let base = PathBuf::from("/fuzz");
    let args = RunArgs::default();
    // No DNS: a host name in a listen address is refused instead of waiting on a resolver.
    let a = Settings::merge_with(Some((cfg, base.clone())), &args, no_resolver);
    let b = Settings::merge_with(Some((back, base)), &args, no_resolver);
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("validation differs after the round trip: {a:?} vs {b:?}"),
    }
});
