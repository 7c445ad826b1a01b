//! The roster: the agents the swarm has, as persisted — configured ones and those spawned at run time, with the
//! state the captain last put them in, so that a restart brings back the same swarm.

use serde::{Deserialize, Serialize};

use crate::{
    error::Result,
    store::{Store, TypedTree},
};

const ROSTER_TREE: &str = "roster";

/// What the captain last asked of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Paused,
    Stopped,
}

/// Where an agent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentOrigin {
    Config,
    Spawned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub name: String,
    pub skills: Vec<String>,
    pub groups: Vec<String>,
    pub subscribe: Vec<String>,
    pub desired: DesiredState,
    pub origin: AgentOrigin,
}

#[derive(Clone)]
pub struct Roster {
    tree: TypedTree<AgentRecord>,
    store: Store,
}

impl Roster {
    pub fn open(store: &Store) -> Result<Roster> {
        Ok(Roster {
            tree: store.typed(ROSTER_TREE)?,
            store: store.clone(),
        })
    }

    pub fn get(&self, name: &str) -> Result<Option<AgentRecord>> {
        self.tree.get(name.as_bytes())
    }

    /// Every persisted agent, by name.
    pub fn all(&self) -> Result<Vec<AgentRecord>> {
        self.tree.iter().map(|e| e.map(|(_, r)| r)).collect()
    }

    /// Saves a record durably: a captain's spawn, pause or stop must survive a crash like a message does.
    pub fn put(&self, record: &AgentRecord) -> Result<()> {
        self.tree.insert(record.name.as_bytes(), record)?;
        self.store.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = AgentRecord {
            name: "agent-9".into(),
            skills: vec!["ping".into()],
            groups: vec![],
            subscribe: vec!["*".into()],
            desired: DesiredState::Paused,
            origin: AgentOrigin::Spawned,
        };
        {
            let store = Store::open(dir.path()).expect("open");
            Roster::open(&store)
                .expect("roster")
                .put(&record)
                .expect("put");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let roster = Roster::open(&store).expect("roster");
        assert_eq!(roster.get("agent-9").expect("get"), Some(record.clone()));
        assert_eq!(roster.all().expect("all"), vec![record]);
    }
}
