//! `ppd purge`: resets a data dir by deleting the files a node keeps there.
//!
//! Only the node's own files are deleted (the chain database, genesis.json, admin.token and,
//! unless `--keep-key`, node.key); anything else in the directory (a ppd.toml, logs) is kept,
//! and the directory itself is removed only if that leaves it empty. It asks on the terminal
//! first unless `--yes`, and refuses to go on without an answer when stdin is not a terminal.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use crate::cli::PurgeArgs;

/// The files a node writes into its data dir (with the temporary files of its atomic writes,
/// left behind only by a crash).
const NODE_FILES: [&str; 6] = [
    pp_server::DB_FILE,
    pp_server::GENESIS_FILE,
    "genesis.json.tmp",
    pp_server::ADMIN_TOKEN_FILE,
    "admin.token.tmp",
    pp_server::keys::KEY_FILE,
];

/// The node files present in `dir` that a purge with `keep_key` deletes.
fn targets(dir: &Path, keep_key: bool) -> Vec<PathBuf> {
    NODE_FILES
        .iter()
        .filter(|f| !(keep_key && **f == pp_server::keys::KEY_FILE))
        .map(|f| dir.join(f))
        .filter(|p| p.symlink_metadata().is_ok())
        .collect()
}

/// Runs `ppd purge`; prints what it deleted.
pub(crate) fn purge(args: &PurgeArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if !dir.is_dir() {
        bail!("{} is not a directory: nothing to purge", dir.display());
    }
    let files = targets(dir, args.keep_key);
    if files.is_empty() {
        bail!(
            "{} holds no node files ({}): not a ppd data dir, nothing deleted",
            dir.display(),
            NODE_FILES.join(", ")
        );
    }
    if !args.yes && !confirm(dir, &files)? {
        println!("nothing deleted");
        return Ok(());
    }
    for f in &files {
        std::fs::remove_file(f).with_context(|| format!("cannot delete {}", f.display()))?;
        println!("deleted {}", f.display());
    }
    // An empty directory is removed too; a non-empty one (a config, logs) stays.
    if std::fs::remove_dir(dir).is_ok() {
        println!("deleted {}", dir.display());
    }
    Ok(())
}

/// Asks on the terminal; only `y` or `yes` confirms.
fn confirm(dir: &Path, files: &[PathBuf]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to purge {} without confirmation: stdin is not a terminal (pass --yes)",
            dir.display()
        );
    }
    let mut err = std::io::stderr();
    writeln!(err, "This deletes from {}:", dir.display())?;
    for f in files {
        let note = if f.ends_with(pp_server::keys::KEY_FILE) {
            "  (the node's key: its identity and stake; --keep-key keeps it)"
        } else {
            ""
        };
        writeln!(err, "  {}{note}", f.display())?;
    }
    write!(err, "Delete? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, keep_key: bool) -> PurgeArgs {
        PurgeArgs {
            data_dir: dir.to_path_buf(),
            yes: true,
            keep_key,
        }
    }

    #[test]
    fn deletes_the_node_files_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("data");
        std::fs::create_dir(&d).unwrap();
        for f in NODE_FILES {
            std::fs::write(d.join(f), "x").unwrap();
        }
        std::fs::write(d.join("ppd.toml"), "").unwrap();
        purge(&args(&d, true)).unwrap();
        assert!(d.join(pp_server::keys::KEY_FILE).exists(), "--keep-key");
        assert!(!d.join(pp_server::DB_FILE).exists());
        assert!(!d.join(pp_server::GENESIS_FILE).exists());
        purge(&args(&d, false)).unwrap();
        assert!(!d.join(pp_server::keys::KEY_FILE).exists());
        assert!(d.join("ppd.toml").exists(), "other files stay");
        std::fs::remove_file(d.join("ppd.toml")).unwrap();
        std::fs::write(d.join(pp_server::DB_FILE), "x").unwrap();
        purge(&args(&d, false)).unwrap();
        assert!(!d.exists(), "an emptied dir is removed");
    }

    #[test]
    fn refuses_a_dir_without_node_files_and_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious.txt"), "x").unwrap();
        let e = purge(&args(dir.path(), false)).unwrap_err().to_string();
        assert!(e.contains("not a ppd data dir"), "{e}");
        assert!(dir.path().join("precious.txt").exists());
        assert!(purge(&args(&dir.path().join("nope"), false)).is_err());
    }
}
