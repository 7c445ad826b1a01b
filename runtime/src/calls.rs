//! Recorded results of work an agent pays for (a model's answer, a tool's result), so that it is never paid for
//! twice: each is kept in the `recorded_calls` tree under its scope (the task or message the work is for), its
//! step and its part. A resumed task or a redelivered message reads what is recorded and calls again only for
//! what is not (Temporal's rule for activities).
//!
//! A model's answer is recorded before the ledger's sync that makes its usage durable, so both are on stable
//! storage before the agent acts on the answer. Records older than [`KEEP`] are pruned when the swarm starts:
//! by then no task or message can come back for them.

use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
    message::Millis,
    store::{Store, TypedTree},
};

const CALLS_TREE: &str = "recorded_calls";

/// How long a record is kept.
pub const KEEP: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Where a record belongs: `scope` is `task:ID` or `msg:ID`; `step` the loop's step; `part` 0 for the model's
/// answer and 1.. for the step's tool calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallKey {
    pub scope: String,
    pub step: u32,
    pub part: u32,
}

impl CallKey {
    pub fn new(scope: &str, step: u32, part: u32) -> CallKey {
        CallKey {
            scope: scope.to_string(),
            step,
            part,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.scope.len() + 9);
        key.extend_from_slice(self.scope.as_bytes());
        key.push(0);
        key.extend_from_slice(&self.step.to_be_bytes());
        key.extend_from_slice(&self.part.to_be_bytes());
        key
    }
}

/// One recorded result: what it was (`model`, `tool`) and its JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedCall {
    pub at: Millis,
    pub kind: String,
    pub json: String,
}

/// The `recorded_calls` tree.
#[derive(Clone)]
pub struct CallStore {
    tree: TypedTree<RecordedCall>,
}

impl CallStore {
    pub fn open(store: &Store) -> Result<CallStore> {
        Ok(CallStore {
            tree: store.typed(CALLS_TREE)?,
        })
    }

    /// Drops records older than [`KEEP`] (the swarm does at start); returns how many.
    pub fn prune(&self) -> Result<usize> {
        let oldest = Millis::now().0.saturating_sub(KEEP.as_millis() as u64);
        let mut old = Vec::new();
        for entry in self.tree.iter() {
            let (key, record) = entry?;
            if record.at.0 < oldest {
                old.push(key);
            }
        }
        for key in &old {
            self.tree.remove(key)?;
        }
        Ok(old.len())
    }

    /// The record under `key`, if any.
    pub fn get(&self, key: &CallKey) -> Result<Option<RecordedCall>> {
        self.tree.get(&key.bytes())
    }

    /// Writes a record; it is durable with the store's next flush (a `MessageLog::sync`).
    pub fn put(&self, key: &CallKey, kind: &str, json: String) -> Result<()> {
        self.tree.insert(
            &key.bytes(),
            &RecordedCall {
                at: Millis::now(),
                kind: kind.to_string(),
                json,
            },
        )
    }

    /// Records in `scope`, in step and part order.
    pub fn count(&self, scope: &str) -> usize {
        let mut start = scope.as_bytes().to_vec();
        start.push(0);
        let mut end = scope.as_bytes().to_vec();
        end.push(1);
        self.tree.range(start..end).count()
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_scope_step_and_part_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let calls = CallStore::open(&store).expect("calls");
        calls
            .put(&CallKey::new("task:1", 0, 0), "model", "{\"a\":1}".into())
            .expect("put");
        calls
            .put(&CallKey::new("task:1", 0, 1), "tool", "[]".into())
            .expect("put");
        calls
            .put(&CallKey::new("task:10", 0, 0), "model", "{}".into())
            .expect("put");
        let got = calls.get(&CallKey::new("task:1", 0, 1)).expect("get");
        assert_eq!(got.map(|r| r.json), Some("[]".to_string()));
        assert_eq!(calls.get(&CallKey::new("task:1", 1, 0)).expect("get"), None);
        // `task:1` does not take in `task:10`.
        assert_eq!(calls.count("task:1"), 2);
        assert_eq!(calls.count("task:10"), 1);

        let old = RecordedCall {
            at: Millis(1),
            kind: "model".into(),
            json: "{}".into(),
        };
        calls
            .tree
            .insert(&CallKey::new("msg:x", 0, 0).bytes(), &old)
            .expect("insert");
        assert_eq!(calls.len(), 4);
        assert_eq!(calls.prune().expect("prune"), 1);
        assert_eq!(calls.len(), 3);
        assert_eq!(calls.count("msg:x"), 0);
    }
}
