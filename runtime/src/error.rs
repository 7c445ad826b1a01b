//! The runtime's one error type.

use std::path::PathBuf;

/// Everything the runtime can fail at. Texts are written for the person running `dreamos`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong; `origin` names the layer (file, environment variable, defaults) it came from.
    #[error("invalid configuration in {origin}: {message}")]
    Config { origin: String, message: String },

    /// A configuration file could not be read.
    #[error("cannot read configuration file {path}: {cause}")]
    ConfigRead {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// Another process already holds the data directory.
    #[error(
        "data directory {dir} is in use by another dreamos process; stop it, or pass a different --data-dir"
    )]
    DataDirInUse { dir: PathBuf },

    /// The data directory could not be created, locked or read.
    #[error("cannot use data directory {dir}: {cause}")]
    DataDir { dir: PathBuf, cause: std::io::Error },

    /// The store was written by a newer (or unknown) version of dreamos.
    #[error(
        "data directory {dir} holds store schema version {found}, but this dreamos understands version {expected}; use a matching dreamos or a new --data-dir"
    )]
    Schema {
        dir: PathBuf,
        found: u32,
        expected: u32,
    },

    /// sled failed: an I/O error or corruption underneath the store.
    #[error("store error: {0}")]
    Store(#[from] sled::Error),

    /// A stored record could not be decoded: the store is corrupt or from an incompatible version.
    #[error("corrupt record in store tree `{tree}`: {message}")]
    Corrupt { tree: &'static str, message: String },

    /// A flush could not be made durable (fdatasync or fsync failed). After such a failure the kernel may have
    /// dropped the pages it could not write, so the store cannot be trusted until the process restarts.
    #[error("cannot make {path} durable: {cause}")]
    Sync {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// More is waiting than the configured bound allows; nothing was stored. `what` says which bound.
    #[error("overloaded: {what}; nothing was stored, try again shortly")]
    Overloaded { what: String },

    /// The store failed underneath the message log; nothing more is accepted until dreamos restarts.
    #[error("the store failed and accepts nothing more until dreamos restarts ({0}); what it was writing may or may not have been stored")]
    StoreFailed(String),

    /// The store did not confirm an acceptance in time. The message may still be accepted.
    #[error("the store did not confirm within {millis} ms; the message may still have been accepted (/history shows it if so)")]
    AcceptTimeout { millis: u64 },

    /// The message log is shutting down or has stopped; nothing more is accepted.
    #[error("the message log is closed: the swarm is shutting down")]
    Closed,

    /// Writing the message log failed (disk full, I/O error); the messages were not accepted.
    #[error("could not write the message log: {0}")]
    LogWrite(String),

    /// A broken internal invariant; a bug in dreamos.
    #[error("internal error: {0}")]
    Internal(String),

    /// The tracing subscriber could not be installed.
    #[error("cannot set up logging: {0}")]
    Telemetry(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
