//! Tasks: work bigger than one message, scheduled onto agents by skill.
//!
//! - [`scheduler`]: the state machine — the order tasks start in, where they run, and what results, failures,
//!   timeouts, cancellations, pauses and approvals do to them and their dependents.
//! - [`manager`]: the tokio task that drives it with the clock, makes each change durable before it answers, and
//!   runs skills as tasks (progress, checkpoints, cancellation and a deadline in their `SkillContext`).
//!
//! The task record is `dreamos_runtime::task`. The swarm starts the manager (`Swarm::tasks`); `/task` is in the
//! command table, and `/index` (a `scan` task) and `/ask` (an `ask` task) create tasks too.

pub mod manager;
pub mod scheduler;

pub(crate) use manager::TaskHooks;
pub use manager::{Control, ManagerError, TaskConfig, TaskManager};
pub use scheduler::{Assignment, Backoff, Interrupt, Scheduler, TaskError};
