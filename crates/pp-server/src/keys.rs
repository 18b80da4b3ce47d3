//! The node's signing key: `data_dir/node.key`, and the well-known development keys.

use std::io::Write as _;
use std::path::Path;

use pp_ledger::{Hash, KeyPair};

use crate::error::ServerError;

/// Name of the key file in the data dir: the 32-byte secret seed as 64 hex characters.
pub const KEY_FILE: &str = "node.key";

/// The well-known **development** key of stakeholder `id`:
/// `KeyPair::from_seed(Blake2b-256("pp-ledger/dev-key/v1" ‖ id))`.
///
/// Like Substrate's `//Alice`, anyone can compute it, so it is only fit for a local devnet or a
/// test network: it lets several nodes agree on a genesis from their ids alone
/// ([`Server::register_stakeholder`](crate::Server::register_stakeholder)). Never hold value
/// under a dev key.
pub fn dev_key(id: &str) -> KeyPair {
    KeyPair::from_seed(Hash::blake2b_parts(&[b"pp-ledger/dev-key/v1", id.as_bytes()]).0)
}

/// Reads `dir/node.key`, if it exists.
pub fn read_key(dir: &Path) -> Result<Option<KeyPair>, ServerError> {
    let path = dir.join(KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(&path, e)),
    };
    let seed = Hash::from_hex(text.trim()).map_err(|e| ServerError::BadKeyFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(KeyPair::from_seed(seed.0)))
}

/// Writes `key` to `dir/node.key` (hex seed, mode 0600 on unix), refusing to overwrite.
pub fn write_key(dir: &Path, key: &KeyPair) -> Result<(), ServerError> {
    let path = dir.join(KEY_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path).map_err(|e| ServerError::io(&path, e))?;
    f.write_all(format!("{}\n", hex::encode(key.secret_bytes())).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ServerError::io(&path, e))
}

/// A new random key.
pub fn random_key() -> KeyPair {
    KeyPair::from_seed(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_key_is_deterministic_and_distinct_per_id() {
        assert_eq!(dev_key("node1").public(), dev_key("node1").public());
        assert_ne!(dev_key("node1").public(), dev_key("node2").public());
    }

    #[test]
    fn key_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_key(dir.path()).unwrap().is_none());
        let k = random_key();
        write_key(dir.path(), &k).unwrap();
        assert_eq!(read_key(dir.path()).unwrap().unwrap().public(), k.public());
        assert!(write_key(dir.path(), &k).is_err(), "must not overwrite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn garbage_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "nope").unwrap();
        assert!(matches!(
            read_key(dir.path()),
            Err(ServerError::BadKeyFile { .. })
        ));
    }
}
