//! The library half of `ppd`: its command-line surface ([`cli`]) and the `ppd.toml` loader and
//! validator ([`config`]). It exists so that the config parser can be fuzzed (`fuzz/`, target
//! `ppd_toml`) and tested without starting a node; the binary (`src/main.rs`) uses it.

pub mod cli;
pub mod config;
