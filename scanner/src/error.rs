//! The scanner's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the scanner. Each variant's text is fit to show a user as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
