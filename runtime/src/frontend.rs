//! Small durable facts that frontends keep: how far a consumer of the log has got (the Discord outbox's cursor),
//! and what was last registered somewhere (the hash of the slash commands registered in a guild).
//!
//! Values become durable with the next flush of the store; a frontend that must not lose a write asks the message
//! log for one (`MessageLog::request_flush`). Both uses here tolerate losing the last write to a crash: the outbox
//! posts again with the same nonce, and registration compares again.

use crate::{
    error::Result,
    store::{Store, TypedTree},
};

const FRONTEND_TREE: &str = "frontend";

#[derive(Clone)]
pub struct FrontendState {
    numbers: TypedTree<u64>,
    texts: TypedTree<String>,
}

impl FrontendState {
    pub fn open(store: &Store) -> Result<FrontendState> {
        Ok(FrontendState {
            numbers: store.typed(FRONTEND_TREE)?,
            texts: store.typed("frontend_text")?,
        })
    }

    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.numbers.get(key.as_bytes())
    }

    pub fn set_number(&self, key: &str, value: u64) -> Result<()> {
        self.numbers.insert(key.as_bytes(), &value)
    }

    pub fn text(&self, key: &str) -> Result<Option<String>> {
        self.texts.get(key.as_bytes())
    }

    pub fn set_text(&self, key: &str, value: &str) -> Result<()> {
        self.texts.insert(key.as_bytes(), &value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = Store::open(dir.path()).expect("store");
            let state = FrontendState::open(&store).expect("state");
            state.set_number("discord.outbox", 42).expect("set");
            state.set_text("discord.commands.1", "abc").expect("set");
            store.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("store");
        let state = FrontendState::open(&store).expect("state");
        assert_eq!(state.number("discord.outbox").expect("get"), Some(42));
        assert_eq!(
            state.text("discord.commands.1").expect("get").as_deref(),
            Some("abc")
        );
        assert_eq!(state.number("other").expect("get"), None);
    }
}
