//! The admin token: a capability for the HTTP API's admin endpoints, like bitcoind's cookie file.
//!
//! At every start the node writes a fresh random token (32 random bytes as 64 lowercase hex
//! characters and a newline) to `data_dir/admin.token`, mode 0600, replacing the previous one.
//! Whoever can read that file may call the admin endpoints with
//! `Authorization: Bearer <token>`; nobody else can, from any address.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::error::ServerError;

/// Name of the admin token file in the data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Largest token file read: the token, a newline and some whitespace slack.
pub const MAX_TOKEN_FILE_BYTES: u64 = 256;

/// A fresh random token: 32 bytes from the OS-seeded CSPRNG, as hex.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Writes a fresh token to `dir/admin.token` (mode 0600 from creation on unix, synced) and
/// returns it. The file is written under a temporary name and renamed over the old one, so a
/// reader sees either the old token or the new one, never a partial file.
pub fn write_new_token(dir: &Path) -> Result<String, ServerError> {
    let token = random_token();
    let path = dir.join(ADMIN_TOKEN_FILE);
    let tmp = dir.join(format!("{ADMIN_TOKEN_FILE}.tmp"));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServerError::io(&tmp, e)),
    }
    let mut opts = std::fs::OpenOptions::new();
    // create_new: never follows a planted symlink, never reuses a file someone else opened.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| ServerError::io(&tmp, e))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ServerError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| ServerError::io(&path, e))?;
    Ok(token)
}

/// Reads a token file (surrounding whitespace ignored; bounded, so a wrong path pointing at a
/// huge file is an error, not a memory spike).
pub fn read_token_file(path: &Path) -> Result<String, ServerError> {
    let bad = |reason: &str| ServerError::BadTokenFile {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| ServerError::io(path, e))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(bad("larger than a token file can be"));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not text"))?;
    let token = text.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("expected one word of printable characters"));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_replaces_the_token_with_a_fresh_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_new_token(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(read_token_file(&path).unwrap(), a);
        let b = write_new_token(dir.path()).unwrap();
        assert_ne!(a, b);
        assert_eq!(read_token_file(&path).unwrap(), b);
        assert!(!dir.path().join("admin.token.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_token_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (i, content) in ["", "  \n", "a b", &"a".repeat(1000)].iter().enumerate() {
            let p = dir.path().join(format!("bad{i}"));
            std::fs::write(&p, content).unwrap();
            assert!(
                matches!(read_token_file(&p), Err(ServerError::BadTokenFile { .. })),
                "{content:?}"
            );
        }
        assert!(matches!(
            read_token_file(&dir.path().join("missing")),
            Err(ServerError::Io { .. })
        ));
    }
}
