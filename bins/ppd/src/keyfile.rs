//! Key files at any path: what `ppd keygen --out FILE` writes and `ppd tx --key FILE` reads.
//!
//! The format is the Server's `data_dir/node.key` format (`pp_server::keys`): 64 lowercase hex
//! characters of the 32-byte ed25519 secret seed and a newline, file mode 0600. `pp_server::keys`
//! only reads and writes `node.key` inside a data dir; these take any path (and bound the read),
//! and a test proves both sides read each other's files. Writing never overwrites an existing file (a lost node key is a lost identity
//! and a lost stake), so the file is created with `create_new`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use pp_ledger::KeyPair;

/// Largest key file read: the seed, a newline and some whitespace slack.
const MAX_KEY_FILE_BYTES: u64 = 256;

/// A key file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyFileError {
    /// I/O error on the file.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file already exists and would be overwritten.
    #[error("key file {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The content is not 64 hex characters.
    #[error("key file {0} does not hold 64 hex characters of a 32-byte seed")]
    Malformed(PathBuf),
}

/// Reads a key file.
pub(crate) fn load(path: &Path) -> Result<KeyPair, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|_| KeyFileError::Malformed(path.to_path_buf()))?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::Malformed(path.to_path_buf()));
    }
    let mut seed = [0u8; 32];
    let hex_text = text.trim();
    if hex_text.len() != 64 || hex::decode_to_slice(hex_text, &mut seed).is_err() {
        return Err(KeyFileError::Malformed(path.to_path_buf()));
    }
    Ok(KeyPair::from_seed(seed))
}

/// Writes `key` to a new file at `path` with mode 0600; fails if the file exists.
pub(crate) fn save(path: &Path, key: &KeyPair) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Set the mode at creation so the secret is never readable by others, not even briefly.
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.to_path_buf())
        } else {
            io(e)
        }
    })?;
    let line = format!("{}\n", hex::encode(key.secret_bytes()));
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// A new key from the operating system's randomness (the Server's generator).
pub(crate) fn generate() -> KeyPair {
    pp_server::keys::random_key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_key_loads_back_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = generate();
        save(&path, &key).unwrap();
        assert_eq!(load(&path).unwrap().public(), key.public());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn key_files_are_interchangeable_with_the_servers_node_key() {
        let dir = tempfile::tempdir().unwrap();
        let ours = generate();
        save(&dir.path().join(pp_server::keys::KEY_FILE), &ours).unwrap();
        let read = pp_server::keys::read_key(dir.path()).unwrap().unwrap();
        assert_eq!(read.public(), ours.public());

        let other = tempfile::tempdir().unwrap();
        let theirs = generate();
        pp_server::keys::write_key(other.path(), &theirs).unwrap();
        let loaded = load(&other.path().join(pp_server::keys::KEY_FILE)).unwrap();
        assert_eq!(loaded.public(), theirs.public());
    }

    #[test]
    fn save_refuses_to_overwrite_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "keep me").unwrap();
        assert!(matches!(
            save(&path, &generate()),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (i, content) in ["", "abc", &"zz".repeat(32), &"a".repeat(1000)]
            .iter()
            .enumerate()
        {
            let path = dir.path().join(format!("k{i}"));
            std::fs::write(&path, content).unwrap();
            assert!(
                matches!(load(&path), Err(KeyFileError::Malformed(_))),
                "{content:?}"
            );
        }
    }
}
