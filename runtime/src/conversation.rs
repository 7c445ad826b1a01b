//! Conversations: the earlier turns `/ask` carries, one conversation per Discord channel or thread and per console
//! session, in the `conversations` tree.
//!
//! A turn is keyed by its conversation and the task that answered it, so writing it again (a resumed task that
//! had already written it) replaces it instead of adding a second. At most [`MAX_TURNS`] turns are kept per
//! conversation; the oldest go first. What of them fits a model's context is the caller's choice.

use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
    message::Millis,
    store::{Store, TypedTree},
};

const CONVERSATIONS_TREE: &str = "conversations";

/// Turns kept per conversation.
pub const MAX_TURNS: usize = 32;

/// One question and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub at: Millis,
    pub question: String,
    pub answer: String,
}

/// The `conversations` tree.
#[derive(Clone)]
pub struct Conversations {
    tree: TypedTree<Turn>,
}

fn prefix(conversation: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = conversation.as_bytes().to_vec();
    start.push(0);
    let mut end = conversation.as_bytes().to_vec();
    end.push(1);
    (start, end)
}

impl Conversations {
    pub fn open(store: &Store) -> Result<Conversations> {
        Ok(Conversations {
            tree: store.typed(CONVERSATIONS_TREE)?,
        })
    }

    /// The conversation's turns, oldest first.
    pub fn turns(&self, conversation: &str) -> Result<Vec<Turn>> {
        let (start, end) = prefix(conversation);
        self.tree
            .range(start..end)
            .map(|entry| entry.map(|(_, turn)| turn))
            .collect()
    }

    /// Writes the turn task `task` answered (durable with the store's next flush), then drops the oldest turns
    /// beyond [`MAX_TURNS`].
    pub fn put(&self, conversation: &str, task: u64, turn: &Turn) -> Result<()> {
        let (mut key, end) = prefix(conversation);
        key.extend_from_slice(&task.to_be_bytes());
        self.tree.insert(&key, turn)?;
        let (start, _) = prefix(conversation);
        let keys: Vec<sled::IVec> = self
            .tree
            .range(start..end)
            .map(|entry| entry.map(|(key, _)| key))
            .collect::<Result<_>>()?;
        for key in keys.iter().take(keys.len().saturating_sub(MAX_TURNS)) {
            self.tree.remove(key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(q: &str) -> Turn {
        Turn {
            at: Millis(1),
            question: q.to_string(),
            answer: format!("about {q}"),
        }
    }

    #[test]
    fn turns_are_per_conversation_in_order_replaced_by_task_and_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let c = Conversations::open(&store).expect("conversations");
        c.put("discord:1", 7, &turn("a")).expect("put");
        c.put("discord:1", 9, &turn("b")).expect("put");
        c.put("discord:10", 8, &turn("other")).expect("put");
        // Task 7 writing its turn again replaces it.
        c.put("discord:1", 7, &turn("a")).expect("put");
        let questions: Vec<String> = c
            .turns("discord:1")
            .expect("turns")
            .into_iter()
            .map(|t| t.question)
            .collect();
        assert_eq!(questions, vec!["a", "b"]);
        for task in 100..100 + MAX_TURNS as u64 + 5 {
            c.put("console:x", task, &turn(&task.to_string()))
                .expect("put");
        }
        let kept = c.turns("console:x").expect("turns");
        assert_eq!(kept.len(), MAX_TURNS);
        assert_eq!(kept[0].question, "105");
        assert_eq!(c.turns("discord:10").expect("turns").len(), 1);
    }
}
