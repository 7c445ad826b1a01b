//! A task: work bigger than one message, with its whole state in one serializable record.
//!
//! The record is what the store keeps (one value per task, keyed by id) and what frontends show; the rules that
//! move a task between states live in `dreamos_agents::tasks`, which owns scheduling. Everything here is data and
//! the checks that need nothing but the data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message::{Millis, Priority};
use crate::store::Store;

/// A task's id: a number, assigned in creation order, so ids also give the first-in-first-out order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TaskId {
    type Err = String;

    /// `17` or `#17`.
    fn from_str(s: &str) -> Result<TaskId, String> {
        let digits = s.trim().trim_start_matches('#');
        match digits.parse::<u64>() {
            Ok(n) if n > 0 => Ok(TaskId(n)),
            _ => Err(format!(
                "`{}` is not a task id; task ids are numbers such as 17 (/task list shows them)",
                clip(s)
            )),
        }
    }
}

/// Where a task is in its life. `Done`, `Failed` and `Cancelled` are final, except that a failed or cancelled task
/// may be retried by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for its dependencies, its backoff, or a free agent.
    Queued,
    Running,
    /// Waiting for a captain to approve or reject it.
    WaitingApproval,
    /// Held by a person; not scheduled until resumed.
    Paused,
    Done,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 7] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::WaitingApproval,
        TaskStatus::Paused,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::WaitingApproval => "waiting_approval",
            TaskStatus::Paused => "paused",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Nothing more happens to the task unless a person retries it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<TaskStatus, String> {
        TaskStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown task status `{}`; use one of: queued, running, waiting_approval, paused, done, failed, cancelled",
                    clip(s)
                )
            })
    }
}

/// How far a running task has come, as its skill last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// One line for people: "indexed 1,200 of 4,000 files".
    pub line: String,
}

/// Who asked for a task, and through which frontend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The principal, as the audit log names it (`user:console`, `discord.<uid>.<cid>`).
    pub by: String,
    /// `console`, `discord`, `cli`.
    pub frontend: String,
}

/// What a person asks for when they create a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub title: String,
    /// The skill that runs it; it is also the kind of work an agent must be able to do to take it.
    pub skill: String,
    /// The skill's input.
    pub args: serde_json::Value,
    pub priority: Priority,
    /// Tasks that must be `done` before this one may start.
    pub after: Vec<TaskId>,
    /// One attempt's time limit, in milliseconds; `None` for no limit.
    pub timeout_ms: Option<u64>,
    /// Attempts before the task fails for good (at least 1).
    pub max_attempts: u32,
    /// The task waits for a captain's approval before it first runs.
    pub approve: bool,
    pub origin: Origin,
}

impl TaskSpec {
    /// A task of `skill` on `args`, titled after the skill: normal priority, no dependencies, no timeout, no
    /// approval; change the fields for the rest.
    pub fn new(
        skill: &str,
        args: serde_json::Value,
        max_attempts: u32,
        origin: Origin,
    ) -> TaskSpec {
        TaskSpec {
            title: skill.to_string(),
            skill: skill.to_string(),
            args,
            priority: Priority::Normal,
            after: Vec::new(),
            timeout_ms: None,
            max_attempts,
            approve: false,
            origin,
        }
    }
}

impl Origin {
    pub fn new(by: &str, frontend: &str) -> Origin {
        Origin {
            by: by.to_string(),
            frontend: frontend.to_string(),
        }
    }
}

/// A task's whole state: what the store keeps, what `/task show` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub title: String,
    pub skill: String,
    pub args: serde_json::Value,
    pub priority: Priority,
    pub status: TaskStatus,
    /// Attempts begun so far (a crash during an attempt counts it).
    pub attempts: u32,
    pub max_attempts: u32,
    pub timeout_ms: Option<u64>,
    pub after: Vec<TaskId>,
    /// Set while the task waits for, or once it got, a captain's approval.
    pub approval: Approval,
    pub progress: Option<Progress>,
    /// The latest checkpoint its skill saved: given back to the skill when the task resumes after a crash.
    pub checkpoint: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The agent running it, or that ran it last.
    pub agent: Option<String>,
    /// Not scheduled before this time: the backoff after a failed attempt.
    pub not_before: Option<Millis>,
    /// When the current attempt started (for its timeout).
    pub started_at: Option<Millis>,
    pub origin: Origin,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
}

/// A task's approval by a captain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// No approval needed.
    NotNeeded,
    /// Waiting for a captain.
    Pending,
    Approved {
        by: String,
    },
    Rejected {
        by: String,
    },
}

impl Task {
    /// A new task from its spec, queued (or waiting for approval).
    pub fn new(id: TaskId, spec: TaskSpec, now: Millis) -> Task {
        Task {
            id,
            title: spec.title,
            skill: spec.skill,
            args: spec.args,
            priority: spec.priority,
            status: if spec.approve {
                TaskStatus::WaitingApproval
            } else {
                TaskStatus::Queued
            },
            attempts: 0,
            max_attempts: spec.max_attempts.max(1),
            timeout_ms: spec.timeout_ms,
            after: spec.after,
            approval: if spec.approve {
                Approval::Pending
            } else {
                Approval::NotNeeded
            },
            progress: None,
            checkpoint: None,
            result: None,
            error: None,
            agent: None,
            not_before: None,
            started_at: None,
            origin: spec.origin,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }
}

/// The tree that holds every task, keyed by id (big-endian, so in creation order).
pub const TASKS_TREE: &str = "tasks";

/// The tasks in the store. A record is written whole on every change; it is durable once `MessageLog::sync` has
/// returned, which is how callers make a change durable before they report it (concurrent changes share one
/// flush). Records are JSON: a task's arguments, checkpoint and result are
/// arbitrary JSON values, which the store's compact binary encoding cannot hold.
/// The key of the next-id record: above every task id (ids stay below 2^53).
const NEXT_ID_KEY: [u8; 8] = u64::MAX.to_be_bytes();

#[derive(Clone)]
pub struct TaskStore {
    tree: sled::Tree,
}

impl TaskStore {
    pub fn open(store: &Store) -> Result<TaskStore> {
        Ok(TaskStore {
            tree: store.raw_tree(TASKS_TREE)?,
        })
    }

    pub fn put(&self, task: &Task) -> Result<()> {
        let bytes = serde_json::to_vec(task).map_err(|e| Error::Corrupt {
            tree: TASKS_TREE,
            message: e.to_string(),
        })?;
        self.tree.insert(task.id.0.to_be_bytes(), bytes)?;
        Ok(())
    }

    pub fn remove(&self, id: TaskId) -> Result<()> {
        self.tree.remove(id.0.to_be_bytes())?;
        Ok(())
    }

    /// Records that ids below `next` are taken, so that forgetting the newest tasks never lets an id be reused.
    pub fn set_next_id(&self, next: u64) -> Result<()> {
        self.tree.insert(NEXT_ID_KEY, &next.to_be_bytes())?;
        Ok(())
    }

    /// The id the next task gets at least (0 when no task was ever forgotten).
    pub fn next_id(&self) -> Result<u64> {
        Ok(match self.tree.get(NEXT_ID_KEY)? {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.as_ref().try_into().map_err(|_| Error::Corrupt {
                    tree: TASKS_TREE,
                    message: "the next task id is not 8 bytes".to_string(),
                })?;
                u64::from_be_bytes(bytes)
            }
            None => 0,
        })
    }

    /// Every task, oldest first.
    pub fn load(&self) -> Result<Vec<Task>> {
        let mut tasks = Vec::with_capacity(self.tree.len());
        for entry in self.tree.range(..NEXT_ID_KEY) {
            let (_, bytes) = entry?;
            tasks.push(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                tree: TASKS_TREE,
                message: e.to_string(),
            })?);
        }
        Ok(tasks)
    }

    /// How many tasks are stored.
    pub fn len(&self) -> usize {
        self.tree.range(..NEXT_ID_KEY).count()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.range(..NEXT_ID_KEY).next().is_none()
    }
}

/// At most 80 characters of user input, for an error that repeats it.
fn clip(text: &str) -> String {
    match text.char_indices().nth(80) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TaskSpec {
        TaskSpec {
            title: "index the repo".to_string(),
            skill: "scan".to_string(),
            args: serde_json::json!({"path": ".", "deep": [1, 2, {"x": null}]}),
            priority: Priority::High,
            after: vec![TaskId(1)],
            timeout_ms: Some(5_000),
            max_attempts: 3,
            approve: true,
            origin: Origin {
                by: "user:console".to_string(),
                frontend: "console".to_string(),
            },
        }
    }

    #[test]
    fn tasks_round_trip_through_the_store_across_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut task = Task::new(TaskId(2), spec(), Millis(10));
        task.checkpoint = Some(serde_json::json!({"files": 12, "last": "src/lib.rs"}));
        task.progress = Some(Progress {
            percent: 40,
            line: "12 of 30 files".to_string(),
        });
        {
            let store = Store::open(dir.path()).expect("store");
            let tasks = TaskStore::open(&store).expect("tasks");
            tasks
                .put(&Task::new(TaskId(10), spec(), Millis(11)))
                .expect("put");
            tasks.put(&task).expect("put");
            tasks
                .put(&Task::new(TaskId(3), spec(), Millis(12)))
                .expect("put");
            tasks.remove(TaskId(3)).expect("remove");
            store.flush().expect("flush");
        }
        let store = Store::open(dir.path()).expect("reopen");
        let loaded = TaskStore::open(&store)
            .expect("tasks")
            .load()
            .expect("load");
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0], task, "in id order, every field kept");
        assert_eq!(loaded[1].id, TaskId(10));
        assert_eq!(loaded[0].status, TaskStatus::WaitingApproval);
    }

    #[test]
    fn ids_and_statuses_parse_with_clear_errors() {
        assert_eq!("17".parse::<TaskId>(), Ok(TaskId(17)));
        assert_eq!("#17".parse::<TaskId>(), Ok(TaskId(17)));
        for bad in ["0", "-1", "abc", "", "99999999999999999999999"] {
            let err = bad.parse::<TaskId>().expect_err(bad);
            assert!(err.contains("task id"), "{err}");
        }
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).expect("json"),
                serde_json::Value::String(status.as_str().to_string())
            );
        }
        assert!("finished"
            .parse::<TaskStatus>()
            .expect_err("unknown")
            .contains("waiting_approval"));
    }
}
