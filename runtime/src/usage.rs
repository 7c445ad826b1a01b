//! The token ledger's records: one per call to a model, in the `llm_usage` tree keyed by ULID (so in time order).
//!
//! A record is written when the call ends, with the tokens the server reported, and made durable with the log's
//! next sync (`MessageLog::sync`) before the caller acts on the answer. Budgets are counted from these records
//! (see `dreamos_agents::llm::ledger`).

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::{
    error::Result,
    message::Millis,
    store::{Store, TypedTree},
};

const USAGE_TREE: &str = "llm_usage";

/// One call to a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub at: Millis,
    /// The configured model called.
    pub model: String,
    pub person: Option<String>,
    pub agent: Option<String>,
    pub task: Option<String>,
    /// `console`, `discord` or `cli`.
    pub frontend: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub duration_ms: u64,
    /// `ok`, or the error's kind (`timeout`, `rate_limited`, ...).
    pub outcome: String,
    pub attempts: u32,
}

impl UsageRecord {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The `llm_usage` tree.
#[derive(Clone)]
pub struct UsageStore {
    tree: TypedTree<UsageRecord>,
}

impl UsageStore {
    pub fn open(store: &Store) -> Result<UsageStore> {
        Ok(UsageStore {
            tree: store.typed(USAGE_TREE)?,
        })
    }

    /// Writes a record (durable with the next flush of the store).
    pub fn insert(&self, record: &UsageRecord) -> Result<Ulid> {
        let id = Ulid::from_parts(record.at.0, rand_bits());
        self.tree.insert(&id.to_bytes(), record)?;
        Ok(id)
    }

    /// Records at or after `since`, oldest first.
    pub fn since(&self, since: Millis) -> impl Iterator<Item = Result<UsageRecord>> + '_ {
        let start = Ulid::from_parts(since.0, 0).to_bytes().to_vec();
        self.tree.range(start..).map(|entry| entry.map(|(_, r)| r))
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

/// The random part of a ULID: the time part orders records, this keeps two in one millisecond apart.
fn rand_bits() -> u128 {
    Ulid::new().random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: u64, tokens: u64) -> UsageRecord {
        UsageRecord {
            at: Millis(at),
            model: "m".to_string(),
            person: Some("console:ada".to_string()),
            agent: None,
            task: None,
            frontend: Some("console".to_string()),
            prompt_tokens: tokens,
            completion_tokens: 1,
            duration_ms: 5,
            outcome: "ok".to_string(),
            attempts: 1,
        }
    }

    #[test]
    fn records_come_back_in_time_order_from_a_point_in_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let usage = UsageStore::open(&store).expect("usage");
        for (at, tokens) in [(3_000, 3), (1_000, 1), (2_000, 2), (2_000, 4)] {
            usage.insert(&record(at, tokens)).expect("insert");
        }
        let since: Vec<u64> = usage
            .since(Millis(2_000))
            .map(|r| r.expect("record").at.0)
            .collect();
        assert_eq!(since, vec![2_000, 2_000, 3_000]);
        assert_eq!(usage.len(), 4);
    }
}
