//! Praos production: the node's VRF secret key (`data_dir/vrf.key`, next to `node.key`) and the
//! per-slot question "do I lead this slot, and with what evidence".
//!
//! In a classic network nothing here is used (no VRF key is read or written). In a praos
//! network the VRF key is resolved like the signing key: the configured seed, else
//! `data_dir/vrf.key`, else the well-known development VRF key of a dev stakeholder named like
//! this node (`dev_vrf_key(id)`, registered in the genesis by `pp-sim` and by servers that build
//! their genesis from registrations). A node without one never leads (it follows the chain).

use std::path::Path;

use pp_ledger::{Chain, Genesis, Hash, KeyPair, LeaderMode, OpCert, PublicKey, VrfEvidence};
use pp_ouroboros::{Ouroboros, VrfSecretKey};

use crate::error::ServerError;
use crate::keys::{load_key_file, save_key_file};

/// Name of the VRF key file in the data dir: the 32-byte VRF secret seed as 64 hex characters
/// (the format of `node.key`).
pub const VRF_KEY_FILE: &str = "vrf.key";

/// The development VRF seed of stakeholder `id`: `Blake2b-256("pp-ledger/dev-vrf-key/v1" ‖ id)`.
/// Anyone can compute it, like [`crate::dev_key`]: only for devnets and simulations.
pub fn dev_vrf_seed(id: &str) -> [u8; 32] {
    Hash::blake2b_parts(&[b"pp-ledger/dev-vrf-key/v1", id.as_bytes()]).0
}

/// The development VRF key of stakeholder `id` (see [`dev_vrf_seed`]).
pub fn dev_vrf_key(id: &str) -> VrfSecretKey {
    VrfSecretKey::from_seed(dev_vrf_seed(id))
}

/// The public VRF key of `seed` in the genesis form (32 bytes).
pub fn vrf_public_of(seed: [u8; 32]) -> PublicKey {
    PublicKey(*VrfSecretKey::from_seed(seed).public().as_bytes())
}

/// Reads a VRF key file (64 hex characters of the seed; bounded read, as for `node.key`).
pub fn load_vrf_key_file(path: &Path) -> Result<VrfSecretKey, ServerError> {
    Ok(VrfSecretKey::from_seed(load_key_file(path)?.secret_bytes()))
}

/// Writes a VRF seed to a new `dir/vrf.key` (mode 0600, synced, never overwriting).
pub fn write_vrf_seed(dir: &Path, seed: [u8; 32]) -> Result<(), ServerError> {
    save_key_file(&dir.join(VRF_KEY_FILE), &KeyPair::from_seed(seed))
}

/// The VRF key this node proves with, if the genesis is praos: `configured` seed, else
/// `dir/vrf.key`, else the dev VRF key of `node_id` if the genesis registers exactly it for the
/// stakeholder `node_id`. `None` in classic mode or when no key is found.
pub(crate) fn resolve_vrf_key(
    configured: Option<[u8; 32]>,
    dir: &Path,
    node_id: &str,
    genesis: &Genesis,
) -> Result<Option<VrfSecretKey>, ServerError> {
    if genesis.leader_mode != LeaderMode::Praos {
        return Ok(None);
    }
    if let Some(seed) = configured {
        return Ok(Some(VrfSecretKey::from_seed(seed)));
    }
    let path = dir.join(VRF_KEY_FILE);
    match load_vrf_key_file(&path) {
        Ok(k) => return Ok(Some(k)),
        Err(ServerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dev = vrf_public_of(dev_vrf_seed(node_id));
    let registered = genesis
        .initial_stakeholders
        .iter()
        .any(|s| s.id == node_id && s.vrf_key == Some(dev));
    Ok(registered.then(|| dev_vrf_key(node_id)))
}

/// Whether `me` leads `slot` on the chain's tip: `None` if not, `Some(None)` for a classic
/// leader (no evidence), `Some(Some(evidence))` for a praos leader. In praos mode this needs
/// `vrf`, the secret key registered for `me`; without it (or with another key) the node never
/// leads. Nor does it with a `cert` the chain would refuse in `slot` (revoked by a newer
/// certificate, not yet valid, or skipping a counter): it logs why instead of spending the slot
/// on a block every node refuses.
pub(crate) fn leader_evidence(
    chain: &Chain<Ouroboros>,
    slot: u64,
    me: &PublicKey,
    vrf: Option<&VrfSecretKey>,
    cert: Option<&OpCert>,
) -> Option<Option<VrfEvidence>> {
    let rules = chain.rules();
    match rules.mode() {
        LeaderMode::Classic => (chain.leader_for_next(slot) == Some(*me)).then_some(None),
        LeaderMode::Praos => {
            let state = chain.state_for_next(slot);
            match rules.prove_slot(&state, slot, me, vrf?) {
                Ok(Some(evidence)) => {
                    if let Err(error) = rules.check_ocert(&state, slot, me, cert?) {
                        tracing::warn!(slot, %error, "leading this slot, but not producing: the operational certificate is not valid on this chain");
                        return None;
                    }
                    Some(Some(evidence))
                }
                Ok(None) => None,
                Err(error) => {
                    tracing::debug!(slot, %error, "no praos leadership check for this slot");
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrf_key_file_round_trips_and_the_dev_key_needs_its_registration() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([3; 32]);
        let classic = Genesis::devnet("n1", key.public(), 0);
        assert!(resolve_vrf_key(None, dir.path(), "n1", &classic)
            .unwrap()
            .is_none());
        let praos = classic.clone().into_praos(
            pp_ledger::DEVNET_ACTIVE_SLOT_COEFF,
            &[vrf_public_of(dev_vrf_seed("n1"))],
        );
        // No file: the dev key, because the genesis registers it for n1; not for another id.
        let got = resolve_vrf_key(None, dir.path(), "n1", &praos)
            .unwrap()
            .unwrap();
        assert_eq!(got.public(), dev_vrf_key("n1").public());
        assert!(resolve_vrf_key(None, dir.path(), "n2", &praos)
            .unwrap()
            .is_none());
        // A file wins over the dev key, and a configured seed over the file.
        write_vrf_seed(dir.path(), [8; 32]).unwrap();
        let got = resolve_vrf_key(None, dir.path(), "n1", &praos)
            .unwrap()
            .unwrap();
        assert_eq!(got.public(), VrfSecretKey::from_seed([8; 32]).public());
        assert!(
            write_vrf_seed(dir.path(), [9; 32]).is_err(),
            "never overwrites"
        );
        let got = resolve_vrf_key(Some([7; 32]), dir.path(), "n1", &praos)
            .unwrap()
            .unwrap();
        assert_eq!(got.public(), VrfSecretKey::from_seed([7; 32]).public());
    }
}
