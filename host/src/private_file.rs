//! Files in the state dir that hold secrets (the SQLite key-value store with
//! signing secrets and API key hashes, `--dev`'s project file with its API
//! key) are created readable by their owner only (0600), whatever the umask.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Create `path` owner-only if it does not exist; an existing file is made
/// owner-only too (state dirs written by older versions).
pub fn create(path: &Path) -> std::io::Result<()> {
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Write `bytes` to an owner-only `path`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create(path)?;
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write(&path, b"key").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"key");
        let db = dir.path().join("kv.db");
        crate::kv::sqlite::Sqlite::open(&db).unwrap();
        assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
