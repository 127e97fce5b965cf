//! Where bundles live. The archiver and the auditor see storage only through [`Storage`], so an
//! object store can replace the local directory without touching them.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// A tree of files addressed by `/`-separated relative paths.
///
/// Contract: [`Storage::write`] is durable when it returns; [`Storage::publish`] makes a staged
/// prefix visible under its final name all at once, so a reader never sees half a bundle.
pub trait Storage: Send + Sync {
    /// The bytes of a file.
    ///
    /// # Errors
    /// `NotFound` for a missing file, other I/O errors as they come.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Writes a whole file durably, replacing any previous one atomically.
    ///
    /// # Errors
    /// I/O errors.
    fn write(&self, path: &str, bytes: &[u8]) -> io::Result<()>;
    /// Every file under `prefix`, as `(path relative to prefix, size)`, sorted by path.
    ///
    /// # Errors
    /// I/O errors; a missing prefix lists as empty.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>>;
    /// Names directly under `prefix` (files and sub-prefixes), sorted.
    ///
    /// # Errors
    /// I/O errors; a missing prefix lists as empty.
    fn children(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Whether `path` exists (file or prefix).
    fn exists(&self, path: &str) -> bool;
    /// Removes everything under `prefix`.
    ///
    /// # Errors
    /// I/O errors.
    fn remove(&self, prefix: &str) -> io::Result<()>;
    /// Moves `staged` to `target` atomically; `target` must not exist.
    ///
    /// # Errors
    /// `AlreadyExists` if it does; other I/O errors.
    fn publish(&self, staged: &str, target: &str) -> io::Result<()>;
}

/// A local directory. Writes go to a temporary file, are fsynced, renamed into place, and the
/// directory is fsynced, so a crash leaves either the old file or the new one.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// Storage rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn resolve(&self, path: &str) -> io::Result<PathBuf> {
        let rel = Path::new(path);
        // Paths come from manifests an attacker may write: never leave the root.
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {path:?} leaves the storage root"),
            ));
        }
        Ok(self.root.join(rel))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for LocalDir {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.resolve(path)?)
    }

    fn write(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.resolve(path)?;
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)?;
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty path"))?;
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &target)?;
        sync_dir(&dir)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let base = self.resolve(prefix)?;
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let meta = entry.metadata()?;
                let path = entry.path();
                if meta.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&base).expect("under base");
                    let rel = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    out.push((rel, meta.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        match fs::read_dir(self.resolve(prefix)?) {
            Ok(entries) => {
                for e in entries {
                    out.push(e?.file_name().to_string_lossy().into_owned());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.sort();
        Ok(out)
    }

    fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok_and(|p| p.exists())
    }

    fn remove(&self, prefix: &str) -> io::Result<()> {
        let p = self.resolve(prefix)?;
        match fs::remove_dir_all(&p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => fs::remove_file(&p),
            r => r,
        }
    }

    fn publish(&self, staged: &str, target: &str) -> io::Result<()> {
        let (from, to) = (self.resolve(staged)?, self.resolve(target)?);
        if to.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{target} already exists"),
            ));
        }
        let parent = to.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent)?;
        fs::rename(&from, &to)?;
        sync_dir(&parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        let dir = LocalDir::new(std::env::temp_dir().join("poe-storage-escape"));
        for p in ["../x", "/etc/passwd", "a/../../b"] {
            assert_eq!(
                dir.read(p).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{p}"
            );
        }
    }
}
