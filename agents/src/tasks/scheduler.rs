//! The task scheduler as a state machine: which task runs next, where, and what a result, a failure, a timeout,
//! a cancellation or an approval does to it and to the tasks that depend on it.
//!
//! It does no I/O and reads no clock: every call takes `now`, and every call that changes tasks returns the ids of
//! the tasks it changed, so that its caller can make those records durable before it reports anything. That keeps
//! every rule testable with plain numbers for time.
//!
//! Rules:
//! - **Order.** Highest priority first, first created first within a priority (ids grow in creation order). A task
//!   that no agent can take now is passed over, so it never blocks work another agent could do.
//! - **Placement.** Onto an agent that has the skill, is not paused and runs fewer tasks than its limit; the least
//!   loaded first, then by name.
//! - **Failure.** A failed attempt (an error or a timeout) is retried after an exponential backoff with jitter
//!   (between half and all of `initial · 2^(attempts−1)`, at most `max`) until `max_attempts`; then the task fails,
//!   and so does every task that depends on it, with the reason.
//! - **Dependencies** must exist when a task is created, and must not be failed or cancelled; a cycle is refused.

use std::collections::{BTreeMap, BTreeSet};

use dreamos_runtime::message::{Millis, Priority};
use dreamos_runtime::task::{Approval, Progress, Task, TaskId, TaskSpec, TaskStatus};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Backoff between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl Backoff {
    /// The longest wait before attempt `attempts + 1`; the wait drawn lies between half of it and all of it.
    pub fn ceiling(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(62);
        self.initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.max_ms)
    }
}

/// Why the scheduler refused a request. Each has a kind for frontends and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("no agent has the skill `{0}`; /help send lists the skills")]
    UnknownSkill(String),
    #[error("there is no task {0}; /task list shows the tasks")]
    UnknownTask(TaskId),
    #[error("task {0}, given in --after, does not exist; /task list shows the tasks")]
    UnknownDependency(TaskId),
    #[error("--after {0} would make a dependency cycle: {1}")]
    Cycle(TaskId, String),
    #[error(
        "task {0}, given in --after, is {1}; retry it first (/task retry {0}) or leave it out"
    )]
    DependencyFinished(TaskId, &'static str),
    #[error("task {id} is {status}; {what}")]
    State {
        id: TaskId,
        status: &'static str,
        what: String,
    },
    #[error("{0}")]
    Invalid(String),
}

impl TaskError {
    pub fn kind(&self) -> &'static str {
        match self {
            TaskError::UnknownSkill(_) => "unknown_skill",
            TaskError::UnknownTask(_) => "unknown_task",
            TaskError::UnknownDependency(_) => "unknown_dependency",
            TaskError::Cycle(..) => "dependency_cycle",
            TaskError::DependencyFinished(..) => "dependency_failed",
            TaskError::State { .. } => "task_state",
            TaskError::Invalid(_) => "invalid_argument",
        }
    }
}

/// A task placed on an agent: the caller starts the skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub task: TaskId,
    pub agent: String,
}

/// What a running skill must be told when a person acts on its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Nothing runs: nothing to tell.
    None,
    /// Tell the running skill to stop at its next check.
    Stop,
}

/// One agent as the scheduler sees it.
#[derive(Debug, Clone)]
struct Slot {
    /// `*` means every skill.
    skills: BTreeSet<String>,
    paused: bool,
    limit: usize,
    running: BTreeSet<TaskId>,
}

impl Slot {
    fn can_run(&self, skill: &str) -> bool {
        !self.paused
            && self.running.len() < self.limit
            && (self.skills.contains("*") || self.skills.contains(skill))
    }
}

/// The tasks and the agents that run them.
pub struct Scheduler {
    tasks: BTreeMap<TaskId, Task>,
    next_id: u64,
    agents: BTreeMap<String, Slot>,
    /// Skills tasks may name (the swarm's registry).
    skills: BTreeSet<String>,
    paused: bool,
    backoff: Backoff,
    rng: StdRng,
    /// Queued tasks in the order they may start: priority, then id. Kept by [`Scheduler::reindex`], so that a
    /// round of scheduling looks only at queued tasks, not at every task ever kept.
    queued: BTreeSet<(std::cmp::Reverse<Priority>, TaskId)>,
    /// When something happens on its own: a queued task's backoff ends, a running task's timeout passes.
    timers: BTreeSet<(Millis, TaskId)>,
    /// What `queued` and `timers` hold for each task, to take it out when the task changes.
    indexed: BTreeMap<TaskId, Index>,
    /// The tasks that depend on each task.
    dependents: BTreeMap<TaskId, Vec<TaskId>>,
}

/// One task's entries in the scheduler's indexes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Index {
    queued: Option<(std::cmp::Reverse<Priority>, TaskId)>,
    timer: Option<(Millis, TaskId)>,
}

fn index_of(task: &Task) -> Index {
    match task.status {
        TaskStatus::Queued => Index {
            queued: Some((std::cmp::Reverse(task.priority), task.id)),
            timer: task.not_before.map(|at| (at, task.id)),
        },
        TaskStatus::Running => Index {
            queued: None,
            timer: task
                .started_at
                .zip(task.timeout_ms)
                .map(|(start, ms)| (Millis(start.0.saturating_add(ms)), task.id)),
        },
        _ => Index::default(),
    }
}

impl Scheduler {
    /// An empty scheduler; `seed` makes the backoff's jitter reproducible.
    pub fn new(skills: impl IntoIterator<Item = String>, backoff: Backoff, seed: u64) -> Scheduler {
        Scheduler {
            tasks: BTreeMap::new(),
            next_id: 1,
            agents: BTreeMap::new(),
            skills: skills.into_iter().collect(),
            paused: false,
            backoff,
            rng: StdRng::seed_from_u64(seed),
            queued: BTreeSet::new(),
            timers: BTreeSet::new(),
            indexed: BTreeMap::new(),
            dependents: BTreeMap::new(),
        }
    }

    /// Brings the indexes up to date with task `id`'s record. Every change of a task's status, backoff or start
    /// goes through here (the public methods call it for the tasks they change).
    fn reindex(&mut self, id: TaskId) {
        let old = self.indexed.remove(&id).unwrap_or_default();
        if let Some(key) = old.queued {
            self.queued.remove(&key);
        }
        if let Some(key) = old.timer {
            self.timers.remove(&key);
        }
        let Some(task) = self.tasks.get(&id) else {
            return;
        };
        let new = index_of(task);
        if let Some(key) = new.queued {
            self.queued.insert(key);
        }
        if let Some(key) = new.timer {
            self.timers.insert(key);
        }
        if new != Index::default() {
            self.indexed.insert(id, new);
        }
    }

    fn reindex_all(&mut self, ids: &[TaskId]) {
        for id in ids {
            self.reindex(*id);
        }
    }

    fn add_dependents(&mut self, task: &Task) {
        for dep in &task.after {
            self.dependents.entry(*dep).or_default().push(task.id);
        }
    }

    /// Takes back the tasks the store holds after a restart. A task that was running when the process died has
    /// had its attempt counted: it is queued again (keeping its checkpoint), or fails if that was its last attempt.
    /// Returns the tasks whose records changed.
    pub fn recover(&mut self, tasks: Vec<Task>, now: Millis) -> Vec<TaskId> {
        let mut changed = Vec::new();
        for mut task in tasks {
            self.next_id = self.next_id.max(task.id.0 + 1);
            if task.status == TaskStatus::Running {
                task.started_at = None;
                task.updated_at = now;
                if task.attempts >= task.max_attempts {
                    task.status = TaskStatus::Failed;
                    task.error = Some(format!(
                        "the process stopped during each of its {} attempts",
                        task.attempts
                    ));
                    task.finished_at = Some(now);
                } else {
                    task.status = TaskStatus::Queued;
                }
                changed.push(task.id);
            }
            self.add_dependents(&task);
            let id = task.id;
            self.tasks.insert(id, task);
            self.reindex(id);
        }
        let failed: Vec<TaskId> = changed
            .iter()
            .copied()
            .filter(|id| self.tasks[id].status == TaskStatus::Failed)
            .collect();
        for id in failed {
            changed.extend(self.fail_dependents(id, now));
        }
        self.reindex_all(&changed);
        changed
    }

    /// Adds or updates an agent: its skills (`*` for all), whether it is paused, how many tasks it runs at once.
    pub fn set_agent(&mut self, name: &str, skills: &[String], paused: bool, limit: usize) {
        let slot = self.agents.entry(name.to_string()).or_insert(Slot {
            skills: BTreeSet::new(),
            paused,
            limit,
            running: BTreeSet::new(),
        });
        slot.skills = skills.iter().cloned().collect();
        slot.paused = paused;
        slot.limit = limit;
    }

    /// Removes an agent. Its running tasks are the caller's to fail or interrupt first.
    pub fn remove_agent(&mut self, name: &str) {
        self.agents.remove(name);
    }

    /// Swarm-wide pause (CaptainPhone `pause`): nothing new starts; running tasks go on.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn get(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Creates a task from `spec`, after checking it against the skills and the existing tasks.
    pub fn create(&mut self, spec: TaskSpec, now: Millis) -> Result<TaskId, TaskError> {
        if !self.skills.contains(&spec.skill) {
            return Err(TaskError::UnknownSkill(spec.skill));
        }
        if spec.max_attempts == 0 {
            return Err(TaskError::Invalid(
                "--max-attempts must be at least 1".to_string(),
            ));
        }
        if spec.timeout_ms == Some(0) {
            return Err(TaskError::Invalid(
                "--timeout must be longer than 0".to_string(),
            ));
        }
        let id = TaskId(self.next_id);
        let mut seen = BTreeSet::new();
        for dep in &spec.after {
            if !seen.insert(*dep) {
                return Err(TaskError::Invalid(format!(
                    "--after names task {dep} twice"
                )));
            }
            if *dep == id {
                return Err(TaskError::Cycle(*dep, format!("{id} → {id}")));
            }
            let Some(task) = self.tasks.get(dep) else {
                return Err(TaskError::UnknownDependency(*dep));
            };
            if matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled) {
                return Err(TaskError::DependencyFinished(*dep, task.status.as_str()));
            }
        }
        if let Some(path) = self.cycle_through(id, &spec.after) {
            return Err(TaskError::Cycle(path[1], render_path(&path)));
        }
        self.next_id += 1;
        let task = Task::new(id, spec, now);
        self.add_dependents(&task);
        self.tasks.insert(id, task);
        self.reindex(id);
        Ok(id)
    }

    /// A path `id → … → id` when `id` depending on `after` would close a cycle. Tasks only depend on tasks that
    /// existed before them, so this finds one only in a store edited by hand; it is checked all the same.
    fn cycle_through(&self, id: TaskId, after: &[TaskId]) -> Option<Vec<TaskId>> {
        let mut stack: Vec<(TaskId, Vec<TaskId>)> =
            after.iter().map(|d| (*d, vec![id, *d])).collect();
        let mut visited = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            if at == id {
                return Some(path);
            }
            if !visited.insert(at) {
                continue;
            }
            if let Some(task) = self.tasks.get(&at) {
                for next in &task.after {
                    let mut longer = path.clone();
                    longer.push(*next);
                    stack.push((*next, longer));
                }
            }
        }
        None
    }

    /// Places every task that can start now; returns the placements (their tasks are now `running`).
    pub fn schedule(&mut self, now: Millis) -> Vec<Assignment> {
        if self.paused {
            return Vec::new();
        }
        let ready: Vec<TaskId> = self
            .queued
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| {
                self.tasks.get(id).is_some_and(|t| {
                    t.not_before.is_none_or(|nb| nb <= now)
                        && t.after.iter().all(|d| {
                            self.tasks
                                .get(d)
                                .is_some_and(|d| d.status == TaskStatus::Done)
                        })
                })
            })
            .collect();
        let mut out = Vec::new();
        for id in ready {
            let skill = &self.tasks[&id].skill;
            let Some(agent) = self
                .agents
                .iter()
                .filter(|(_, slot)| slot.can_run(skill))
                .min_by_key(|(name, slot)| (slot.running.len(), (*name).clone()))
                .map(|(name, _)| name.clone())
            else {
                continue;
            };
            if let Some(slot) = self.agents.get_mut(&agent) {
                slot.running.insert(id);
            }
            if let Some(task) = self.tasks.get_mut(&id) {
                task.status = TaskStatus::Running;
                task.attempts += 1;
                task.agent = Some(agent.clone());
                task.started_at = Some(now);
                task.not_before = None;
                task.updated_at = now;
            }
            self.reindex(id);
            out.push(Assignment { task: id, agent });
        }
        out
    }

    /// The skill of a running task reported progress.
    pub fn progress(&mut self, id: TaskId, progress: Progress, now: Millis) -> Option<TaskId> {
        let task = self.running_mut(id)?;
        task.progress = Some(Progress {
            percent: progress.percent.min(100),
            line: progress.line,
        });
        task.updated_at = now;
        Some(id)
    }

    /// The skill of a running task saved a checkpoint.
    pub fn checkpoint(
        &mut self,
        id: TaskId,
        value: serde_json::Value,
        now: Millis,
    ) -> Option<TaskId> {
        let task = self.running_mut(id)?;
        task.checkpoint = Some(value);
        task.updated_at = now;
        Some(id)
    }

    fn running_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.tasks
            .get_mut(&id)
            .filter(|t| t.status == TaskStatus::Running)
    }

    /// The attempt succeeded. A report about a task no longer running (cancelled meanwhile) changes nothing.
    pub fn succeeded(&mut self, id: TaskId, result: serde_json::Value, now: Millis) -> Vec<TaskId> {
        self.release(id);
        let Some(task) = self.running_mut(id) else {
            return Vec::new();
        };
        task.status = TaskStatus::Done;
        task.result = Some(result);
        task.error = None;
        task.started_at = None;
        task.finished_at = Some(now);
        task.updated_at = now;
        self.reindex(id);
        vec![id]
    }

    /// The attempt failed (an error, or its timeout): retried after a backoff, or failed for good with its
    /// dependents.
    pub fn failed(&mut self, id: TaskId, error: String, now: Millis) -> Vec<TaskId> {
        self.fail(id, error, true, now)
    }

    /// The attempt failed in a way another would repeat: failed for good with its dependents, whatever attempts
    /// are left.
    pub fn failed_for_good(&mut self, id: TaskId, error: String, now: Millis) -> Vec<TaskId> {
        self.fail(id, error, false, now)
    }

    fn fail(&mut self, id: TaskId, error: String, retry: bool, now: Millis) -> Vec<TaskId> {
        self.release(id);
        let backoff = self.backoff;
        let jitter: f64 = self.rng.random();
        let Some(task) = self.running_mut(id) else {
            return Vec::new();
        };
        task.started_at = None;
        task.updated_at = now;
        task.error = Some(error);
        if retry && task.attempts < task.max_attempts {
            let ceiling = backoff.ceiling(task.attempts);
            let wait = ceiling / 2 + ((ceiling - ceiling / 2) as f64 * jitter) as u64;
            task.status = TaskStatus::Queued;
            task.not_before = Some(Millis(now.0.saturating_add(wait)));
            self.reindex(id);
            return vec![id];
        }
        task.status = TaskStatus::Failed;
        task.finished_at = Some(now);
        let mut changed = vec![id];
        changed.extend(self.fail_dependents(id, now));
        self.reindex_all(&changed);
        changed
    }

    /// The running tasks past their timeout, as failed attempts; the caller stops their skills.
    pub fn expire(&mut self, now: Millis) -> Vec<TaskId> {
        let late: Vec<(TaskId, u64)> = self
            .timers
            .range(..=(now, TaskId(u64::MAX)))
            .filter_map(|(_, id)| {
                let t = self.tasks.get(id)?;
                let limit = t.timeout_ms?;
                (t.status == TaskStatus::Running).then_some((t.id, limit))
            })
            .collect();
        let mut changed = Vec::new();
        for (id, limit) in late {
            changed.extend(self.failed(id, format!("timed out after {limit} ms"), now));
        }
        changed
    }

    /// The running skill stopped because it was asked to (pause, shutdown): the attempt does not count, and the
    /// task goes to `to` (`queued` or `paused`) keeping its checkpoint.
    pub fn interrupted(&mut self, id: TaskId, to: TaskStatus, now: Millis) -> Vec<TaskId> {
        self.release(id);
        let Some(task) = self.running_mut(id) else {
            return Vec::new();
        };
        task.attempts = task.attempts.saturating_sub(1);
        task.status = to;
        task.started_at = None;
        task.updated_at = now;
        self.reindex(id);
        vec![id]
    }

    /// A running task's skill asks for a captain's approval before it goes on: the task waits in
    /// `waiting_approval` with `checkpoint` saved (the attempt not counted), and after an approval it is queued and
    /// resumes from that checkpoint. A task approved once (at creation or mid-way) is not asked again: `None`
    /// then, and the skill goes on at once.
    pub fn ask_approval(
        &mut self,
        id: TaskId,
        checkpoint: serde_json::Value,
        now: Millis,
    ) -> Option<TaskId> {
        if matches!(self.tasks.get(&id)?.approval, Approval::Approved { .. }) {
            return None;
        }
        self.release(id);
        let task = self.running_mut(id)?;
        task.attempts = task.attempts.saturating_sub(1);
        task.status = TaskStatus::WaitingApproval;
        task.approval = Approval::Pending;
        task.checkpoint = Some(checkpoint);
        task.started_at = None;
        task.updated_at = now;
        self.reindex(id);
        Some(id)
    }

    /// Cancels a task that has not finished. A running skill is told to stop (`Interrupt::Stop`); the task is
    /// `cancelled` at once, and its dependents fail.
    pub fn cancel(
        &mut self,
        id: TaskId,
        now: Millis,
    ) -> Result<(Interrupt, Vec<TaskId>), TaskError> {
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        if task.status.is_final() {
            return Err(state(
                task,
                "only a task that has not finished can be cancelled",
            ));
        }
        let interrupt = if task.status == TaskStatus::Running {
            Interrupt::Stop
        } else {
            Interrupt::None
        };
        task.status = TaskStatus::Cancelled;
        task.started_at = None;
        task.finished_at = Some(now);
        task.updated_at = now;
        self.release(id);
        let mut changed = vec![id];
        changed.extend(self.fail_dependents(id, now));
        self.reindex_all(&changed);
        Ok((interrupt, changed))
    }

    /// Holds a task. A queued or waiting one is `paused` at once; a running one is told to stop at its next check
    /// and becomes `paused` when it has ([`Scheduler::interrupted`]).
    pub fn pause(&mut self, id: TaskId, now: Millis) -> Result<Interrupt, TaskError> {
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        match task.status {
            TaskStatus::Queued | TaskStatus::WaitingApproval => {
                task.status = TaskStatus::Paused;
                task.updated_at = now;
                self.reindex(id);
                Ok(Interrupt::None)
            }
            TaskStatus::Running => Ok(Interrupt::Stop),
            _ => Err(state(
                task,
                "only a queued, waiting or running task can be paused",
            )),
        }
    }

    /// Lets a paused task go on: queued again, or waiting for approval if it still needs one.
    pub fn resume(&mut self, id: TaskId, now: Millis) -> Result<(), TaskError> {
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        if task.status != TaskStatus::Paused {
            return Err(state(task, "only a paused task can be resumed"));
        }
        task.status = if task.approval == Approval::Pending {
            TaskStatus::WaitingApproval
        } else {
            TaskStatus::Queued
        };
        task.updated_at = now;
        self.reindex(id);
        Ok(())
    }

    /// Runs a failed or cancelled task again from its first attempt (keeping its checkpoint).
    pub fn retry(&mut self, id: TaskId, now: Millis) -> Result<(), TaskError> {
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        if !matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled) {
            return Err(state(
                task,
                "only a failed or cancelled task can be retried",
            ));
        }
        // A dependency that failed would fail it again at once: that one is retried first.
        let after = task.after.clone();
        for dep in after {
            if let Some(d) = self.tasks.get(&dep) {
                if matches!(d.status, TaskStatus::Failed | TaskStatus::Cancelled) {
                    return Err(TaskError::DependencyFinished(dep, d.status.as_str()));
                }
            }
        }
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        task.status = TaskStatus::Queued;
        task.attempts = 0;
        task.error = None;
        task.not_before = None;
        task.finished_at = None;
        task.updated_at = now;
        self.reindex(id);
        Ok(())
    }

    /// A captain approves a waiting task: it is queued.
    pub fn approve(&mut self, id: TaskId, by: &str, now: Millis) -> Result<(), TaskError> {
        let task = self.waiting(id)?;
        task.approval = Approval::Approved { by: by.to_string() };
        task.status = TaskStatus::Queued;
        task.updated_at = now;
        self.reindex(id);
        Ok(())
    }

    /// A captain rejects a waiting task: it is cancelled, and its dependents fail.
    pub fn reject(&mut self, id: TaskId, by: &str, now: Millis) -> Result<Vec<TaskId>, TaskError> {
        let task = self.waiting(id)?;
        task.approval = Approval::Rejected { by: by.to_string() };
        task.status = TaskStatus::Cancelled;
        task.error = Some(format!("rejected by {by}"));
        task.finished_at = Some(now);
        task.updated_at = now;
        let mut changed = vec![id];
        changed.extend(self.fail_dependents(id, now));
        self.reindex_all(&changed);
        Ok(changed)
    }

    fn waiting(&mut self, id: TaskId) -> Result<&mut Task, TaskError> {
        let task = self.tasks.get_mut(&id).ok_or(TaskError::UnknownTask(id))?;
        if task.status != TaskStatus::WaitingApproval {
            return Err(state(
                task,
                "only a task waiting for approval can be approved or rejected",
            ));
        }
        Ok(task)
    }

    /// The id the next task will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Never gives an id below `next` (ids of forgotten tasks stay taken).
    pub fn reserve_ids_below(&mut self, next: u64) {
        self.next_id = self.next_id.max(next);
    }

    /// Forgets finished tasks (done, failed, cancelled): all but the `keep` most recently finished, and every one
    /// finished before `cutoff`; except one that an unfinished task depends on, which stays until that one is
    /// finished too. Returns the forgotten ids.
    pub fn prune(&mut self, keep: usize, cutoff: Millis) -> Vec<TaskId> {
        let mut finished: Vec<(Millis, TaskId)> = self
            .tasks
            .values()
            .filter(|t| t.status.is_final())
            .map(|t| (t.finished_at.unwrap_or(t.updated_at), t.id))
            .collect();
        if finished.len() <= keep && finished.iter().all(|(at, _)| *at >= cutoff) {
            return Vec::new();
        }
        // Newest first.
        finished.sort_unstable_by(|a, b| b.cmp(a));
        let mut gone = Vec::new();
        for (rank, (at, id)) in finished.into_iter().enumerate() {
            if rank < keep && at >= cutoff {
                continue;
            }
            let needed = self.dependents.get(&id).is_some_and(|ds| {
                ds.iter()
                    .any(|d| self.tasks.get(d).is_some_and(|t| !t.status.is_final()))
            });
            if !needed {
                gone.push(id);
            }
        }
        for id in &gone {
            if let Some(task) = self.tasks.remove(id) {
                for dep in &task.after {
                    if let Some(list) = self.dependents.get_mut(dep) {
                        list.retain(|d| d != id);
                        if list.is_empty() {
                            self.dependents.remove(dep);
                        }
                    }
                }
            }
            self.dependents.remove(id);
            self.reindex(*id);
        }
        gone
    }

    /// When the scheduler next has something to do on its own: a backoff ending, a timeout passing.
    pub fn next_wakeup(&self) -> Option<Millis> {
        self.timers.iter().next().map(|(at, _)| *at)
    }

    /// Fails, transitively, every unfinished task that depends on `id`, naming it as the reason.
    fn fail_dependents(&mut self, id: TaskId, now: Millis) -> Vec<TaskId> {
        let mut changed = Vec::new();
        let mut queue = vec![id];
        while let Some(at) = queue.pop() {
            let why = match self.tasks.get(&at) {
                Some(t) => format!("task {at}, which it depends on, {}", fate(t)),
                None => continue,
            };
            let dependents: Vec<TaskId> = self
                .dependents
                .get(&at)
                .into_iter()
                .flatten()
                .filter(|d| {
                    self.tasks
                        .get(d)
                        .is_some_and(|t| !t.status.is_final() && t.status != TaskStatus::Running)
                })
                .copied()
                .collect();
            for dep in dependents {
                if let Some(task) = self.tasks.get_mut(&dep) {
                    task.status = TaskStatus::Failed;
                    task.error = Some(why.clone());
                    task.finished_at = Some(now);
                    task.updated_at = now;
                }
                changed.push(dep);
                queue.push(dep);
            }
        }
        changed
    }

    fn release(&mut self, id: TaskId) {
        if let Some(agent) = self.tasks.get(&id).and_then(|t| t.agent.clone()) {
            if let Some(slot) = self.agents.get_mut(&agent) {
                slot.running.remove(&id);
            }
        }
    }

    /// How many tasks `agent` runs now.
    pub fn load(&self, agent: &str) -> usize {
        self.agents.get(agent).map_or(0, |s| s.running.len())
    }
}

fn fate(task: &Task) -> String {
    match task.status {
        TaskStatus::Cancelled => match &task.approval {
            Approval::Rejected { by } => format!("was rejected by {by}"),
            _ => "was cancelled".to_string(),
        },
        _ => match &task.error {
            Some(e) => format!("failed: {e}"),
            None => "failed".to_string(),
        },
    }
}

fn state(task: &Task, what: &str) -> TaskError {
    TaskError::State {
        id: task.id,
        status: task.status.as_str(),
        what: what.to_string(),
    }
}

fn render_path(path: &[TaskId]) -> String {
    path.iter()
        .map(TaskId::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests;
