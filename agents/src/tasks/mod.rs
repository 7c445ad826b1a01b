//! Tasks: work bigger than one message, scheduled onto agents by skill.
//!
//! What is here so far is the scheduler's state machine ([`scheduler`]): the order tasks start in, where they run,
//! and what results, failures, timeouts, cancellations, pauses and approvals do to them and their dependents. The
//! task record it works on is `dreamos_runtime::task`. Not yet built (the task-manager issue stays open): the
//! actor that drives it with the clock and makes each change durable before it is reported, long-running skills
//! with progress, checkpoints and cancellation, and the `/task` commands.

pub mod scheduler;

pub use scheduler::{Assignment, Backoff, Interrupt, Scheduler, TaskError};
