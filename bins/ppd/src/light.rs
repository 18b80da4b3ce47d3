//! `ppd light`: the light client's command line ([`pp_light::cli`], shared with the slim
//! `pp-light` binary), with the built-in devnet genesis as the default network.

use crate::cli::LightArgs;

/// Runs `ppd light` with `args`.
pub fn run(args: &LightArgs) -> anyhow::Result<()> {
    Ok(pp_light::cli::run(args, Some(crate::devnet::genesis))?)
}
