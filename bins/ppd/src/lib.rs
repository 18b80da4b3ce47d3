//! The library half of `ppd`: its command-line surface ([`cli`]), the `ppd.toml` loader and
//! validator ([`config`]) and the built-in devnet ([`devnet`]). It exists so that the config
//! parser can be fuzzed (`fuzz/`, target `ppd_toml`) and tested without starting a node; the
//! binary (`src/main.rs`) uses it.

pub mod cli;
pub mod config;
pub mod devnet;
pub mod light;
