//! The one way corsgate reads a file that a config names, or the config itself: only a regular file,
//! and never more than a fixed bound. `/dev/zero`, a FIFO or a runaway file then fail with an error
//! instead of an unbounded allocation that aborts the process (on `check` and on a SIGHUP reload).

use std::io::Read;
use std::path::{Path, PathBuf};

/// The most a certificate, key or CA bundle file may hold. A public CA bundle is about 200 KiB.
pub(crate) const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// The most a config file may hold.
pub(crate) const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening, inspecting or reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// A directory, device, FIFO or socket.
    #[error("cannot read {}: not a regular file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Longer than the bound.
    #[error("cannot read {}: larger than {} MiB", path.display(), limit / (1024 * 1024))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound, in bytes.
        limit: u64,
    },
}

/// Read all of `path`, a regular file of at most `limit` bytes.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > limit {
        return Err(too_large(path, limit));
    }
    // The length can change between the check and the read: `take` holds the bound regardless.
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(out)
}

/// Check that `path` opens as a regular file of at most `limit` bytes, without reading it.
pub(crate) fn check(path: &Path, limit: u64) -> Result<(), FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::File::open(path)
        .map_err(io)?
        .metadata()
        .map_err(io)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > limit {
        return Err(too_large(path, limit));
    }
    Ok(())
}

fn too_large(path: &Path, limit: u64) -> FileError {
    FileError::TooLarge {
        path: path.to_path_buf(),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_oversized_files_are_refused_and_small_files_read() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 1024),
            Err(FileError::NotAFile { .. })
        ));
        assert!(matches!(
            check(Path::new("/"), 1024),
            Err(FileError::NotAFile { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'a'; 2048]).unwrap();
        assert!(matches!(
            read_bounded(&p, 1024),
            Err(FileError::TooLarge { limit: 1024, .. })
        ));
        assert!(check(&p, 1024).is_err());
        assert_eq!(read_bounded(&p, 2048).unwrap().len(), 2048);
        assert!(matches!(
            read_bounded(&dir.path().join("missing"), 1024),
            Err(FileError::Io { .. })
        ));
    }
}
