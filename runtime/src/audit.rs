//! The audit log: every command any frontend ran, who ran it, when, and how it ended.

use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ulid::Generator;

use crate::{
    config::Role,
    error::Result,
    message::Millis,
    store::{Store, TypedTree},
};

pub(crate) const AUDIT_TREE: &str = "audit";

/// One command, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Millis,
    /// The person: `console`, or a Discord user as `name (id)`.
    pub who: String,
    pub role: Role,
    /// `console` or `discord`.
    pub frontend: String,
    /// The command as typed (or rebuilt from a slash command's options).
    pub command: String,
    pub outcome: AuditOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged (serde's default): postcard cannot decode internally tagged enums.
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Ok,
    Error { kind: String, message: String },
}

/// Append-only, keyed by ULID so that entries sort by time.
#[derive(Clone)]
pub struct AuditLog {
    tree: TypedTree<AuditEntry>,
    // Monotonic, so that two entries in the same millisecond keep their order.
    ids: Arc<Mutex<Generator>>,
}

impl AuditLog {
    pub fn open(store: &Store) -> Result<AuditLog> {
        Ok(AuditLog {
            tree: store.typed(AUDIT_TREE)?,
            ids: Arc::new(Mutex::new(Generator::new())),
        })
    }

    /// Writes one entry. It becomes durable with the next flush of the store; callers with a running message log
    /// ask for one with `MessageLog::request_flush` (the swarm's sessions do).
    pub fn record(&self, entry: &AuditEntry) -> Result<()> {
        let id = self
            .ids
            .lock()
            .generate()
            .unwrap_or_else(|_| ulid::Ulid::new());
        self.tree.insert(&id.0.to_be_bytes(), entry)
    }

    /// The newest entries, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.tree
            .iter()
            .rev()
            .take(limit)
            .map(|entry| entry.map(|(_, value)| value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_newest_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("open");
        let audit = AuditLog::open(&store).expect("audit");
        for (i, outcome) in [
            AuditOutcome::Ok,
            AuditOutcome::Error {
                kind: "forbidden".into(),
                message: "no".into(),
            },
        ]
        .into_iter()
        .enumerate()
        {
            audit
                .record(&AuditEntry {
                    at: Millis(i as u64),
                    who: "console".into(),
                    role: Role::Viewer,
                    frontend: "console".into(),
                    command: format!("/cmd {i}"),
                    outcome,
                })
                .expect("record");
        }
        let recent = audit.recent(10).expect("recent");
        let commands: Vec<_> = recent.iter().map(|e| e.command.as_str()).collect();
        assert_eq!(commands, ["/cmd 1", "/cmd 0"]);
    }
}
