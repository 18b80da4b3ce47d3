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

/// Largest key file read: the seed, a newline and some whitespace slack.
pub const MAX_KEY_FILE_BYTES: u64 = 256;

/// Reads a key file at any path (`ppd keygen` output or a data dir's `node.key`): 64 hex
/// characters of the 32-byte seed, surrounding whitespace allowed. The read is bounded, so a
/// wrong path pointing at a huge file is an error, not a memory spike.
pub fn load_key_file(path: &Path) -> Result<KeyPair, ServerError> {
    use std::io::Read as _;
    let bad = |reason: &str| ServerError::BadKeyFile {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ServerError::io(path, e))?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(bad("larger than a key file can be"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text"))?;
    let seed = Hash::from_hex(text.trim())
        .map_err(|e| bad(&format!("expected the 32-byte seed as hex: {e}")))?;
    Ok(KeyPair::from_seed(seed.0))
}

/// Writes `key` to a new file at `path` (hex seed and a newline, mode 0600 on unix, synced).
/// Never overwrites: a lost node key is a lost identity and a lost stake.
pub fn save_key_file(path: &Path, key: &KeyPair) -> Result<(), ServerError> {
    write_new_private_file(
        path,
        format!("{}\n", hex::encode(key.secret_bytes())).as_bytes(),
    )
}

/// Writes `bytes` to a new file at `path`, mode 0600 on unix (set at creation, so the content
/// is never readable by others, not even briefly), synced. Never overwrites: an existing file is
/// `KeyFileExists`.
pub(crate) fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ServerError::KeyFileExists {
                path: path.to_path_buf(),
            }
        } else {
            ServerError::io(path, e)
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ServerError::io(path, e))
}

/// Reads `dir/node.key`, if it exists.
pub fn read_key(dir: &Path) -> Result<Option<KeyPair>, ServerError> {
    let path = dir.join(KEY_FILE);
    match load_key_file(&path) {
        Ok(k) => Ok(Some(k)),
        Err(ServerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Writes `key` to `dir/node.key` (see [`save_key_file`]).
pub fn write_key(dir: &Path, key: &KeyPair) -> Result<(), ServerError> {
    save_key_file(&dir.join(KEY_FILE), key)
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
    fn key_files_at_any_path_are_bounded_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.key");
        let k = random_key();
        save_key_file(&path, &k).unwrap();
        assert_eq!(load_key_file(&path).unwrap().public(), k.public());
        assert_eq!(std::fs::read_to_string(&path).unwrap().len(), 65);
        let e = save_key_file(&path, &random_key()).unwrap_err();
        assert!(matches!(e, ServerError::KeyFileExists { .. }), "{e}");
        assert!(!e.to_string().contains("invalid"), "{e}");
        assert_eq!(load_key_file(&path).unwrap().public(), k.public());
        for (i, content) in ["", "abc", &"zz".repeat(32), &"a".repeat(1000)]
            .iter()
            .enumerate()
        {
            let p = dir.path().join(format!("bad{i}"));
            std::fs::write(&p, content).unwrap();
            assert!(
                matches!(load_key_file(&p), Err(ServerError::BadKeyFile { .. })),
                "{content:?}"
            );
        }
        assert!(matches!(
            load_key_file(&dir.path().join("missing")),
            Err(ServerError::Io { .. })
        ));
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
