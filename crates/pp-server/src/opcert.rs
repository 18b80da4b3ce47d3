//! Praos block signing: the node's hot key (`data_dir/hot.key`) and the operational certificate
//! that delegates to it (`data_dir/opcert.json`), issued offline by the stakeholder's cold key
//! (`ppd opcert issue`; docs/leader-election.md §10.8).
//!
//! A praos node signs its blocks with the hot key and names the stakeholder (the cold public
//! key) as the producer; the cold secret key never needs to be on the node. At start the node
//! checks that the certificate is signed by the cold key it names, for this network, and that it
//! delegates to exactly the hot key in `hot.key`; anything else is refused with an error that
//! says which.
//!
//! Without `opcert.json` (the built-in devnet, pp-sim, library users that configure a
//! stakeholder's key directly), the node's own key is both cold and hot key and signs itself the
//! certificate `{its key, counter 0, valid from 0}` ([`OpCert::self_issued`]). Any certificate the
//! stakeholder issues later (counter ≥ 1) revokes it.

use std::io::Read as _;
use std::path::Path;

use pp_ledger::{Genesis, Hash, KeyPair, LeaderMode, OpCert, PublicKey};
use serde::{Deserialize, Serialize};

use crate::error::ServerError;
use crate::keys::{load_key_file, save_key_file};

/// Name of the hot key file in the data dir (the format of `node.key`).
pub const HOT_KEY_FILE: &str = "hot.key";
/// Name of the certificate file in the data dir ([`CertFile`] as JSON).
pub const OPCERT_FILE: &str = "opcert.json";
/// Largest certificate file read (the JSON is about 400 bytes).
pub const MAX_OPCERT_FILE_BYTES: u64 = 4096;

/// What `opcert.json` holds: the stakeholder's cold public key (the header's producer) and the
/// certificate it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    /// The stakeholder (cold) key that signed `cert`.
    pub cold_key: PublicKey,
    /// The certificate.
    pub cert: OpCert,
}

/// The keys a praos node produces with: the stakeholder it produces for (`cold`), the hot key
/// that signs its blocks and the certificate from `cold` to `hot`.
#[derive(Clone)]
pub struct ProducerKeys {
    /// The stakeholder's cold public key: the header's `producer`.
    pub cold: PublicKey,
    /// The key that signs the blocks.
    pub hot: KeyPair,
    /// The certificate every header carries.
    pub cert: OpCert,
}

impl std::fmt::Debug for ProducerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerKeys")
            .field("cold", &self.cold)
            .field("hot", &self.hot.public())
            .field("cert", &self.cert)
            .finish()
    }
}

/// Reads a certificate file (bounded read, strict JSON).
pub fn load_cert_file(path: &Path) -> Result<CertFile, ServerError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_OPCERT_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ServerError::io(path, e))?;
    let bad = |reason: String| ServerError::BadOpCert {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() as u64 > MAX_OPCERT_FILE_BYTES {
        return Err(bad("larger than a certificate file can be".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
}

/// Writes a new certificate file (mode 0600 like the keys, synced, never overwriting).
pub fn save_cert_file(path: &Path, file: &CertFile) -> Result<(), ServerError> {
    let mut text = serde_json::to_string_pretty(file).map_err(|e| ServerError::BadOpCert {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    crate::keys::write_new_private_file(path, text.as_bytes())
}

/// Issues a certificate with the cold key `cold` for `hot_key` on the network `genesis_hash`.
pub fn issue(
    cold: &KeyPair,
    hot_key: PublicKey,
    counter: u64,
    valid_from: u64,
    genesis_hash: &Hash,
) -> CertFile {
    CertFile {
        cold_key: cold.public(),
        cert: OpCert::issue(cold, hot_key, counter, valid_from, genesis_hash),
    }
}

/// Writes `dir/hot.key` and `dir/opcert.json` for a node (neither may exist yet).
pub fn write_node_files(dir: &Path, hot: &KeyPair, file: &CertFile) -> Result<(), ServerError> {
    save_key_file(&dir.join(HOT_KEY_FILE), hot)?;
    save_cert_file(&dir.join(OPCERT_FILE), file)
}

/// Checks that `file` is signed by the cold key it names for the network `genesis`, and
/// delegates to `hot`. `path` names the certificate in errors.
pub fn check_cert(
    path: &Path,
    file: &CertFile,
    hot: &KeyPair,
    genesis_hash: &Hash,
) -> Result<(), ServerError> {
    if file.cert.verify(&file.cold_key, genesis_hash).is_err() {
        return Err(ServerError::BadOpCert {
            path: path.to_path_buf(),
            reason: format!(
                "not signed by its cold key {} for this network (genesis {genesis_hash})",
                file.cold_key
            ),
        });
    }
    if file.cert.hot_key != hot.public() {
        return Err(ServerError::OpCertHotKeyMismatch {
            path: path.to_path_buf(),
            certified: file.cert.hot_key,
            held: hot.public(),
        });
    }
    Ok(())
}

/// The keys this node produces praos blocks with: `dir/opcert.json` with `dir/hot.key` (checked
/// by [`check_cert`]), else the self-issued certificate of `node_key`. `None` in classic mode.
pub(crate) fn resolve_producer(
    dir: &Path,
    node_key: &KeyPair,
    genesis: &Genesis,
) -> Result<Option<ProducerKeys>, ServerError> {
    if genesis.leader_mode != LeaderMode::Praos {
        return Ok(None);
    }
    let genesis_hash = genesis.hash();
    let cert_path = dir.join(OPCERT_FILE);
    let hot_path = dir.join(HOT_KEY_FILE);
    let file = match load_cert_file(&cert_path) {
        Ok(f) => f,
        Err(ServerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if hot_path.exists() {
                return Err(ServerError::BadOpCert {
                    path: cert_path,
                    reason: format!("missing, but {} is there", hot_path.display()),
                });
            }
            return Ok(Some(ProducerKeys {
                cold: node_key.public(),
                hot: node_key.clone(),
                cert: OpCert::self_issued(node_key, &genesis_hash),
            }));
        }
        Err(e) => return Err(e),
    };
    let hot = load_key_file(&hot_path)?;
    check_cert(&cert_path, &file, &hot, &genesis_hash)?;
    Ok(Some(ProducerKeys {
        cold: file.cold_key,
        hot,
        cert: file.cert,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn praos_genesis(cold: &KeyPair) -> Genesis {
        Genesis::devnet("n1", cold.public(), 0).into_praos(
            pp_ledger::DEVNET_ACTIVE_SLOT_COEFF,
            &[crate::praos::vrf_public_of([3; 32])],
        )
    }

    #[test]
    fn a_node_loads_its_hot_key_and_certificate_and_refuses_a_mismatch() {
        let cold = KeyPair::from_seed([1; 32]);
        let node = KeyPair::from_seed([2; 32]);
        let hot = KeyPair::from_seed([3; 32]);
        let g = praos_genesis(&cold);
        let gh = g.hash();
        // Classic: nothing is read.
        let dir = tempfile::tempdir().unwrap();
        let classic = Genesis::devnet("n1", cold.public(), 0);
        assert!(resolve_producer(dir.path(), &node, &classic)
            .unwrap()
            .is_none());
        // No files: the node key certifies itself.
        let own = resolve_producer(dir.path(), &node, &g).unwrap().unwrap();
        assert_eq!(own.cold, node.public());
        assert_eq!(own.hot.public(), node.public());
        assert_eq!(own.cert, OpCert::self_issued(&node, &gh));
        // Files: the cold key from the certificate, the hot key from hot.key.
        write_node_files(dir.path(), &hot, &issue(&cold, hot.public(), 1, 0, &gh)).unwrap();
        let got = resolve_producer(dir.path(), &node, &g).unwrap().unwrap();
        assert_eq!(got.cold, cold.public());
        assert_eq!(got.hot.public(), hot.public());
        assert_eq!(got.cert.counter, 1);
        assert!(
            write_node_files(dir.path(), &hot, &issue(&cold, hot.public(), 2, 0, &gh)).is_err(),
            "never overwrites"
        );
        // A certificate for another hot key is refused, naming both keys.
        let other = tempfile::tempdir().unwrap();
        write_node_files(other.path(), &hot, &issue(&cold, node.public(), 1, 0, &gh)).unwrap();
        let e = resolve_producer(other.path(), &node, &g).unwrap_err();
        assert!(
            matches!(&e, ServerError::OpCertHotKeyMismatch { certified, held, .. }
                if *certified == node.public() && *held == hot.public()),
            "{e}"
        );
        // A certificate for another network, or with a cold key that did not sign it.
        let wrong_net = tempfile::tempdir().unwrap();
        write_node_files(
            wrong_net.path(),
            &hot,
            &issue(&cold, hot.public(), 1, 0, &Hash::ZERO),
        )
        .unwrap();
        assert!(matches!(
            resolve_producer(wrong_net.path(), &node, &g),
            Err(ServerError::BadOpCert { .. })
        ));
        let mut forged = issue(&cold, hot.public(), 1, 0, &gh);
        forged.cold_key = node.public();
        let forged_dir = tempfile::tempdir().unwrap();
        write_node_files(forged_dir.path(), &hot, &forged).unwrap();
        assert!(matches!(
            resolve_producer(forged_dir.path(), &node, &g),
            Err(ServerError::BadOpCert { .. })
        ));
        // A hot key without its certificate is an error, not a silent self-certificate.
        let lone = tempfile::tempdir().unwrap();
        save_key_file(&lone.path().join(HOT_KEY_FILE), &hot).unwrap();
        assert!(matches!(
            resolve_producer(lone.path(), &node, &g),
            Err(ServerError::BadOpCert { .. })
        ));
        // Garbage is refused by name.
        std::fs::write(lone.path().join(OPCERT_FILE), b"{\"cold_key\": 1}").unwrap();
        assert!(matches!(
            resolve_producer(lone.path(), &node, &g),
            Err(ServerError::BadOpCert { .. })
        ));
    }
}
