//! The data directory and its files are private to the user the server runs as: the directory
//! `0700`, files (the SQLite database and its WAL, the development signing key) `0600`. They are
//! created so from the start, never widened afterwards, and tightened when found wider.

use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) when missing and makes it `0700`.
///
/// # Errors
/// IO failures.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.is_dir() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `path` empty when missing, readable and writable by its owner only, and makes an
/// existing one `0600`.
///
/// # Errors
/// IO failures.
pub(crate) fn private_file(path: &Path) -> io::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        open.mode(0o600);
        drop(open.open(path)?);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        drop(open.open(path)?);
        Ok(())
    }
}

/// The secret kept in file `name` of `data_dir` (at least 32 characters), made and kept there
/// (private) when missing or shorter: the development signing key, the file signing key.
///
/// # Errors
/// IO failures.
pub(crate) fn secret(data_dir: &Path, name: &str) -> io::Result<Vec<u8>> {
    let path = data_dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path)
        && text.trim().len() >= 32
    {
        return Ok(text.trim().as_bytes().to_vec());
    }
    private_dir(data_dir)?;
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    write_private(&path, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

/// Writes `contents` to a new private file at `path` (replacing one that exists).
///
/// # Errors
/// IO failures.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    private_file(path)?;
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}
