//! Where bundles live. The archiver and the auditor see storage only through [`Storage`], so an
//! object store can replace the local directory without touching them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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
    /// The bytes of a regular file of at most `max` bytes, for readers that trust nothing in
    /// the tree (the auditor): a link, FIFO, device or directory is refused without reading
    /// from it, and a longer file after `max + 1` bytes. The default reads the whole file.
    ///
    /// # Errors
    /// As [`Storage::read`]; `InvalidData` for a file that is not regular or is too long.
    fn read_at_most(&self, path: &str, max: u64) -> io::Result<Vec<u8>> {
        let bytes = self.read(path)?;
        check_length(path, bytes.len() as u64, max)?;
        Ok(bytes)
    }
    /// The size of a file in bytes. The default reads it.
    ///
    /// # Errors
    /// As [`Storage::read`].
    fn size(&self, path: &str) -> io::Result<u64> {
        Ok(self.read(path)?.len() as u64)
    }
    /// When a file was last written, µs since the epoch (receipts report when a batch's leaf
    /// proof and its day's bundle appeared). The default: not known.
    ///
    /// # Errors
    /// As [`Storage::read`]; `Unsupported` where the storage does not keep the time.
    fn modified_us(&self, path: &str) -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{path}: this storage keeps no modification times"),
        ))
    }
    /// Bytes `start..=end` of a file, for ranged reads of large files (the HTTP server). The
    /// default reads the whole file.
    ///
    /// # Errors
    /// As [`Storage::read`]; `UnexpectedEof` if the file ends before `end`.
    fn read_range(&self, path: &str, start: u64, end: u64) -> io::Result<Vec<u8>> {
        let bytes = self.read(path)?;
        usize::try_from(end)
            .ok()
            .and_then(|e| bytes.get(usize::try_from(start).ok()?..=e))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| short_file(path, end))
    }
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

fn check_length(path: &str, len: u64, max: u64) -> io::Result<()> {
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: longer than the {max} bytes expected"),
        ));
    }
    Ok(())
}

fn not_regular(path: &str, t: fs::FileType) -> io::Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path} is {kind}, not a regular file"),
    )
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn short_file(path: &str, end: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{path} ends before byte {end}"),
    )
}

impl Storage for LocalDir {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.resolve(path)?)
    }

    fn size(&self, path: &str) -> io::Result<u64> {
        let m = fs::metadata(self.resolve(path)?)?;
        if m.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{path} is a directory"),
            ));
        }
        Ok(m.len())
    }

    fn modified_us(&self, path: &str) -> io::Result<u64> {
        let t = fs::metadata(self.resolve(path)?)?.modified()?;
        Ok(t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64))
    }

    fn read_range(&self, path: &str, start: u64, end: u64) -> io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let len = end
            .checked_sub(start)
            .and_then(|d| usize::try_from(d + 1).ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "range ends before it starts")
            })?;
        let mut f = File::open(self.resolve(path)?)?;
        f.seek(SeekFrom::Start(start))?;
        let mut out = vec![0u8; len];
        f.read_exact(&mut out).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                short_file(path, end)
            } else {
                e
            }
        })?;
        Ok(out)
    }

    fn read_at_most(&self, path: &str, max: u64) -> io::Result<Vec<u8>> {
        let p = self.resolve(path)?;
        let t = fs::symlink_metadata(&p)?.file_type();
        if !t.is_file() {
            return Err(not_regular(path, t));
        }
        // Swapped for a link or FIFO since the look: O_NOFOLLOW refuses the link, O_NONBLOCK
        // keeps the open from waiting for a FIFO's writer, and the type is checked again on
        // what was opened.
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&p)?;
        let t = f.metadata()?.file_type();
        if !t.is_file() {
            return Err(not_regular(path, t));
        }
        let mut out = Vec::new();
        f.take(max.saturating_add(1)).read_to_end(&mut out)?;
        check_length(path, out.len() as u64, max)?;
        Ok(out)
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

    /// A storage with only the required methods: the trait's defaults for size and ranges.
    struct Plain(LocalDir);

    impl Storage for Plain {
        fn read(&self, path: &str) -> io::Result<Vec<u8>> {
            self.0.read(path)
        }
        fn write(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
            self.0.write(path, bytes)
        }
        fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
            self.0.list(prefix)
        }
        fn children(&self, prefix: &str) -> io::Result<Vec<String>> {
            self.0.children(prefix)
        }
        fn exists(&self, path: &str) -> bool {
            self.0.exists(path)
        }
        fn remove(&self, prefix: &str) -> io::Result<()> {
            self.0.remove(prefix)
        }
        fn publish(&self, staged: &str, target: &str) -> io::Result<()> {
            self.0.publish(staged, target)
        }
    }

    #[test]
    fn ranged_reads_seek_and_agree_with_the_default() {
        let root = std::env::temp_dir().join(format!("poe-storage-range-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = LocalDir::new(&root);
        dir.write("d/f", b"0123456789").unwrap();
        let plain = Plain(LocalDir::new(&root));
        for s in [&dir as &dyn Storage, &plain] {
            assert_eq!(s.size("d/f").unwrap(), 10);
            assert_eq!(s.read_range("d/f", 0, 0).unwrap(), b"0");
            assert_eq!(s.read_range("d/f", 3, 9).unwrap(), b"3456789");
            assert_eq!(
                s.read_range("d/f", 8, 10).unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof
            );
            assert_eq!(s.size("nope").unwrap_err().kind(), io::ErrorKind::NotFound);
            assert_eq!(s.size("d").unwrap_err().kind(), io::ErrorKind::IsADirectory);
        }
        let _ = fs::remove_dir_all(&root);
    }

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    #[test]
    fn bounded_read_refuses_fifos_links_devices_and_long_files() {
        let root = std::env::temp_dir().join(format!("poe-storage-bounded-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let dir = LocalDir::new(&root);
        dir.write("ok", b"0123456789").unwrap();
        assert_eq!(dir.read_at_most("ok", 10).unwrap(), b"0123456789");
        let long = dir.read_at_most("ok", 9).unwrap_err();
        assert!(
            long.to_string().contains("longer than the 9 bytes"),
            "{long}"
        );
        // A FIFO with no writer: opening it for reading would block for ever.
        let fifo = root.join("fifo");
        mkfifo(&fifo);
        let e = dir.read_at_most("fifo", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        // A link to an endless device, and a link to a regular file: both refused.
        std::os::unix::fs::symlink("/dev/zero", root.join("zero")).unwrap();
        let e = dir.read_at_most("zero", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        std::os::unix::fs::symlink(root.join("ok"), root.join("link")).unwrap();
        let e = dir.read_at_most("link", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        let _ = fs::remove_dir_all(&root);
    }
}
