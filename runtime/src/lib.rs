//! `dreamos-runtime`: configuration, tracing, and the sled store with everything persisted in it.
//!
//! A tour, in the order a process uses it:
//! - [`config`]: the layered, validated [`Config`] (embedded defaults → file → `DREAMOS_` variables).
//! - [`telemetry`]: the tracing subscriber and the [`telemetry::LogMirror`] hook. Only `main` installs it.
//! - [`store`]: the one sled database per data directory, locked against a second process.
//! - [`message`]: the envelope and its parts, persisted by the log.
//! - [`log`]: the durable message log — group commit, recovery, history, dead letters, retention. Start here to
//!   understand what "accepted" means.
//! - [`audit`] and [`roster`]: who ran which command; which agents exist and what the captain last asked of them.
//! - [`memory`]: Dreamscribe's entries (the narrative memory) and the trees that keep them.
//! - [`frontend`]: small durable facts frontends keep (the Discord outbox's cursor, registered commands' hash).
//! - [`usage`]: the token ledger's records, one per call to a model.
//! - [`calls`]: recorded results of model and tool calls, so that a resumed task never pays for one twice.
//! - [`conversation`]: the earlier turns of `/ask` per Discord channel and console session.
//!
//! Architecture invariant: this crate knows nothing of actors, Discord or tree-sitter. It stores and reports.

pub mod audit;
pub mod calls;
pub mod config;
pub mod conversation;
pub mod error;
pub mod frontend;
pub mod log;
pub mod memory;
pub mod message;
pub mod roster;
pub mod store;
pub mod task;
pub mod telemetry;
pub mod usage;

pub use config::Config;
pub use error::{Error, Result};
pub use store::Store;
