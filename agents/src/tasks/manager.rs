//! The task manager: one tokio task that owns the [`Scheduler`], makes every change durable before it answers,
//! starts skills for the tasks it places, and reacts to their results, checkpoints and progress, to timeouts
//! and to people's controls.
//!
//! Durability: a changed task's record is written to the store's `tasks` tree, then the manager waits for a flush
//! and fdatasync of the store (`MessageLog::sync`) before it answers or starts anything; changes made together
//! share one flush, and so do the log's concurrent groups. A task's completion is written with its result in one record, so after a crash a finished task
//! never runs again, and a running one is queued again with its latest checkpoint ([`Scheduler::recover`]).
//!
//! Time: the scheduler reads no clock; the manager gives it milliseconds measured on tokio's clock from the wall
//! time at start, so tests can pause and advance time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dreamos_runtime::message::{Address, AgentName, Body, Envelope, Millis};
use dreamos_runtime::task::{Progress, Task, TaskId, TaskSpec, TaskStatus, TaskStore};
use tokio::sync::{mpsc, oneshot, Notify};

use super::scheduler::{Backoff, Interrupt, Scheduler, TaskError};
use crate::events::SwarmEvent;
use crate::skill::{SkillContext, SkillError, SkillRegistry};
use crate::ums::Ums;

/// How the manager runs.
#[derive(Debug, Clone)]
pub struct TaskConfig {
    pub backoff: Backoff,
    /// Tasks one agent runs side by side.
    pub per_agent: usize,
    /// Requests that may wait for the manager; beyond it a request is refused (`overloaded`).
    pub queue: usize,
    /// Finished tasks kept (the most recently finished) ...
    pub keep: usize,
    /// ... and none finished longer ago than this.
    pub keep_for: Duration,
    /// How often the retention bounds are enforced.
    pub prune_every: Duration,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig::from(&dreamos_runtime::config::Config::defaults())
    }
}

impl From<&dreamos_runtime::config::Config> for TaskConfig {
    fn from(config: &dreamos_runtime::config::Config) -> TaskConfig {
        let c = &config.tasks;
        let r = &config.retention;
        TaskConfig {
            backoff: Backoff {
                initial_ms: c.backoff_initial.as_millis() as u64,
                max_ms: c.backoff_max.as_millis() as u64,
            },
            per_agent: c.per_agent,
            queue: c.max_pending,
            keep: usize::try_from(r.tasks_max).unwrap_or(usize::MAX),
            keep_for: r.tasks_max_age,
            prune_every: r.compact_every.max(Duration::from_millis(10)),
        }
    }
}

/// Why a request to the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error("the task manager has {0} requests waiting; try again shortly")]
    Overloaded(usize),
    #[error("the task manager has stopped")]
    Stopped,
    #[error("cannot store the task: {0}")]
    Store(#[from] dreamos_runtime::Error),
}

impl ManagerError {
    pub fn kind(&self) -> &'static str {
        match self {
            ManagerError::Task(e) => e.kind(),
            ManagerError::Overloaded(_) => "overloaded",
            ManagerError::Stopped => "shutting_down",
            ManagerError::Store(dreamos_runtime::Error::StoreFailed(_)) => "store_failed",
            ManagerError::Store(_) => "internal",
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

/// A person's control on one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    Retry,
    Approve { by: String },
    Reject { by: String },
}

enum Request {
    Create(Box<TaskSpec>, Reply<Task>),
    Control(TaskId, Control, Reply<Task>),
    Get(TaskId, Reply<Task>),
    List(Reply<Vec<Task>>),
    /// The swarm-wide pause of CaptainPhone `pause`/`resume`.
    PauseAll(bool, Reply<()>),
    /// An agent may take tasks with these skills (`*` for all), or none (`None`: stopped, paused, gone).
    Agent(String, Option<Vec<String>>, Reply<()>),
    Shutdown(Reply<()>),
    Checkpoint {
        id: TaskId,
        attempt: u32,
        value: serde_json::Value,
        done: Reply<()>,
    },
    Progress {
        id: TaskId,
        attempt: u32,
        progress: Progress,
    },
    /// The skill asks for approval before it goes on; answered `true` when it must stop and wait.
    AskApproval {
        id: TaskId,
        attempt: u32,
        checkpoint: serde_json::Value,
        done: Reply<bool>,
    },
    Finished {
        id: TaskId,
        attempt: u32,
        outcome: Outcome,
    },
}

enum Outcome {
    Done(serde_json::Value),
    /// Failed; retried after a backoff unless `retry` is false (another attempt would fail the same way).
    Failed {
        error: String,
        retry: bool,
    },
    /// The skill stopped because it was told to.
    Interrupted,
}

/// A cancellation signal: set once, seen by checks and by waiters.
#[derive(Default)]
pub(crate) struct CancelSignal {
    set: AtomicBool,
    notify: Notify,
}

impl CancelSignal {
    pub(crate) fn set(&self) {
        self.set.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// What a skill running as a task holds: its task, its checkpoint, its cancellation, its deadline.
pub(crate) struct TaskHooks {
    pub(crate) id: TaskId,
    attempt: u32,
    pub(crate) checkpoint: Option<serde_json::Value>,
    pub(crate) cancel: Arc<CancelSignal>,
    pub(crate) deadline: Option<tokio::time::Instant>,
    manager: mpsc::Sender<Request>,
}

impl TaskHooks {
    /// Sends a request about this attempt and waits for its answer; `what` names it in errors.
    async fn ask<T>(
        &self,
        what: &str,
        make: impl FnOnce(TaskId, u32, Reply<T>) -> Request,
    ) -> Result<T, SkillError> {
        let (done, answered) = oneshot::channel();
        let stopped = || SkillError::interrupted("the task manager has stopped");
        self.manager
            .send(make(self.id, self.attempt, done))
            .await
            .map_err(|_| stopped())?;
        match answered.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(SkillError::new(format!("cannot {what}: {err}"))),
            Err(_) => Err(stopped()),
        }
    }

    pub(crate) async fn save(&mut self, value: serde_json::Value) -> Result<(), SkillError> {
        let sent = value.clone();
        self.ask("save the checkpoint", |id, attempt, done| {
            Request::Checkpoint {
                id,
                attempt,
                value: sent,
                done,
            }
        })
        .await?;
        self.checkpoint = Some(value);
        Ok(())
    }

    /// Asks for a captain's approval, saving `checkpoint`; true when the skill must stop (the task now waits),
    /// false when the task was approved already.
    pub(crate) async fn ask_approval(
        &mut self,
        checkpoint: serde_json::Value,
    ) -> Result<bool, SkillError> {
        let sent = checkpoint.clone();
        let wait = self
            .ask("ask for approval", |id, attempt, done| {
                Request::AskApproval {
                    id,
                    attempt,
                    checkpoint: sent,
                    done,
                }
            })
            .await?;
        self.checkpoint = Some(checkpoint);
        Ok(wait)
    }

    pub(crate) fn progress(&self, percent: u8, line: &str) {
        // Progress is advisory: when the manager is busy, a report is dropped rather than waited for.
        let _ = self.manager.try_send(Request::Progress {
            id: self.id,
            attempt: self.attempt,
            progress: Progress {
                percent,
                line: line.to_string(),
            },
        });
    }
}

/// The handle frontends and the swarm hold. Cheap to clone.
#[derive(Clone)]
pub struct TaskManager {
    tx: mpsc::Sender<Request>,
    queue: usize,
}

impl TaskManager {
    /// Loads the stored tasks, queues again those that were running, and starts the manager.
    pub async fn start(
        store: TaskStore,
        ums: Ums,
        skills: Arc<SkillRegistry>,
        agents: Vec<(String, Vec<String>)>,
        config: TaskConfig,
    ) -> Result<TaskManager, ManagerError> {
        let clock = Clock::start();
        let mut scheduler =
            Scheduler::new(skills.names(), config.backoff, clock.base.0 ^ 0x5DEE_CE66);
        for (name, agent_skills) in &agents {
            scheduler.set_agent(name, agent_skills, false, config.per_agent);
        }
        scheduler.reserve_ids_below(store.next_id()?);
        let changed = scheduler.recover(store.load()?, clock.now());
        for id in &changed {
            if let Some(task) = scheduler.get(*id) {
                store.put(task)?;
            }
        }
        if !changed.is_empty() {
            ums.log().sync().await?;
        }
        let (tx, rx) = mpsc::channel(config.queue);
        let worker = Worker {
            scheduler,
            store,
            ums,
            skills,
            clock,
            running: BTreeMap::new(),
            tx: tx.clone(),
            per_agent: config.per_agent,
            retention: (config.keep, config.keep_for),
            shown: BTreeMap::new(),
        };
        tokio::spawn(worker.run(rx, config.prune_every));
        Ok(TaskManager {
            tx,
            queue: config.queue,
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, ManagerError> {
        let (reply, answer) = oneshot::channel();
        self.tx.try_send(make(reply)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ManagerError::Overloaded(self.queue),
            mpsc::error::TrySendError::Closed(_) => ManagerError::Stopped,
        })?;
        answer.await.map_err(|_| ManagerError::Stopped)?
    }

    /// Creates a task; answers once it is durable.
    pub async fn create(&self, spec: TaskSpec) -> Result<Task, ManagerError> {
        self.ask(|r| Request::Create(Box::new(spec), r)).await
    }

    /// Pauses, resumes, cancels, retries, approves or rejects a task; answers once the change is durable.
    pub async fn control(&self, id: TaskId, control: Control) -> Result<Task, ManagerError> {
        self.ask(|r| Request::Control(id, control, r)).await
    }

    pub async fn get(&self, id: TaskId) -> Result<Task, ManagerError> {
        self.ask(|r| Request::Get(id, r)).await
    }

    /// Every task, oldest first.
    pub async fn list(&self) -> Result<Vec<Task>, ManagerError> {
        self.ask(Request::List).await
    }

    /// Stops the manager: running tasks are interrupted and queued again (durably), to resume at the next start.
    pub async fn shutdown(&self) -> Result<(), ManagerError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Shutdown(reply))
            .await
            .map_err(|_| ManagerError::Stopped)?;
        answer.await.map_err(|_| ManagerError::Stopped)?
    }

    /// Lets agent `name` take tasks with `skills` (`*` for all), or no more tasks (`None`); its running tasks go on.
    pub async fn set_agent(
        &self,
        name: &str,
        skills: Option<Vec<String>>,
    ) -> Result<(), ManagerError> {
        self.ask(|r| Request::Agent(name.to_string(), skills, r))
            .await
    }

    /// Stops (or lets again) the scheduling of the whole swarm; running tasks go on.
    pub async fn pause_all(&self, paused: bool) -> Result<(), ManagerError> {
        self.ask(|r| Request::PauseAll(paused, r)).await
    }
}

/// Milliseconds on tokio's clock, counted from the wall time at start.
struct Clock {
    base: Millis,
    start: tokio::time::Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            base: Millis::now(),
            start: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> Millis {
        Millis(self.base.0 + self.start.elapsed().as_millis() as u64)
    }

    fn instant(&self, at: Millis) -> tokio::time::Instant {
        self.start + Duration::from_millis(at.0.saturating_sub(self.base.0))
    }
}

/// A skill running for a task.
struct Running {
    attempt: u32,
    cancel: Arc<CancelSignal>,
    /// What the task becomes when the skill reports that it stopped on request.
    stopped_to: TaskStatus,
    /// When its progress was last shown as an event.
    shown_at: Option<tokio::time::Instant>,
}

struct Worker {
    scheduler: Scheduler,
    store: TaskStore,
    ums: Ums,
    skills: Arc<SkillRegistry>,
    clock: Clock,
    running: BTreeMap<TaskId, Running>,
    tx: mpsc::Sender<Request>,
    per_agent: usize,
    /// Finished tasks kept, and for how long.
    retention: (usize, Duration),
    /// What was last shown of each unfinished task, so that an unchanged one is not shown again.
    shown: BTreeMap<TaskId, Shown>,
}

/// What people see of a task in its events.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    status: TaskStatus,
    agent: Option<String>,
    progress: Option<Progress>,
    attempts: u32,
}

/// The least time between two progress events of one task.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The most requests one batch takes before it makes its changes durable.
const BATCH: usize = 1024;

/// What a batch of requests owes once its changes are durable.
enum Answer {
    Task(Reply<Task>, TaskId),
    Tasks(Reply<Vec<Task>>),
    Done(Reply<()>),
    Flag(Reply<bool>, bool),
}

#[derive(Default)]
struct Batch {
    changed: Vec<TaskId>,
    /// Tasks created in this batch: journaled once they are durable.
    created: Vec<TaskId>,
    answers: Vec<Answer>,
    shutdown: Option<Reply<()>>,
}

impl Worker {
    /// Takes requests in batches: applies every waiting request to the scheduler, places what can start, writes
    /// every changed record, waits for one flush, and only then answers and starts skills. Concurrent requests
    /// so share one fdatasync, as messages do in the log.
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, prune_every: Duration) {
        let mut prune = tokio::time::interval(prune_every);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self
                .scheduler
                .next_wakeup()
                .map(|at| self.clock.instant(at));
            let mut batch = Batch::default();
            tokio::select! {
                request = rx.recv() => match request {
                    Some(request) => self.apply(request, &mut batch),
                    None => break,
                },
                _ = sleep_until(wake), if wake.is_some() => {
                    let expired = self.scheduler.expire(self.clock.now());
                    for id in &expired {
                        // A timed-out attempt's skill is told to stop; its late answer changes nothing.
                        if let Some(run) = self.running.remove(id) {
                            run.cancel.set();
                        }
                    }
                    batch.changed.extend(expired);
                }
                // The first tick comes at once, so this round also places the tasks recovered at start.
                _ = prune.tick() => {
                    if let Err(err) = self.prune().await {
                        tracing::error!(error = %err, "task manager: cannot forget finished tasks; it stops");
                        break;
                    }
                }
            }
            while batch.answers.len() < BATCH && batch.shutdown.is_none() {
                match rx.try_recv() {
                    Ok(request) => self.apply(request, &mut batch),
                    Err(_) => break,
                }
            }
            let placed = if batch.shutdown.is_none() {
                self.scheduler.schedule(self.clock.now())
            } else {
                Vec::new()
            };
            batch.changed.extend(placed.iter().map(|a| a.task));
            if let Some(reply) = batch.shutdown.take() {
                self.stop_running(&mut batch);
                let written = self.persist(&batch.changed).await;
                self.answer(batch.answers, written.is_ok());
                let _ = reply.send(written);
                return;
            }
            let written = self.persist(&batch.changed).await;
            let ok = written.is_ok();
            if let Err(err) = written {
                tracing::error!(error = %err, "task manager: cannot store tasks; it stops");
            }
            self.answer(batch.answers, ok);
            if !ok {
                break;
            }
            self.journal_created(&batch.created);
            for assignment in placed {
                self.start(assignment);
            }
        }
        for run in self.running.values() {
            run.cancel.set();
        }
    }

    /// The automatic journal's entry for each task created (and now durable).
    fn journal_created(&self, created: &[TaskId]) {
        let Some(memory) = self.ums.memory() else {
            return;
        };
        for task in created.iter().filter_map(|id| self.scheduler.get(*id)) {
            let approval = if task.approval == dreamos_runtime::task::Approval::Pending {
                ", waiting for a captain's approval"
            } else {
                ""
            };
            memory.note(
                dreamos_runtime::config::JournalTopic::Tasks,
                &["task", "created"],
                format!(
                    "task {} ({}) created by {}{approval}",
                    task.id, task.title, task.origin.by
                ),
                dreamos_runtime::memory::Links {
                    tasks: vec![task.id],
                    ..Default::default()
                },
            );
        }
    }

    /// Answers what a batch owes, with the state now durable (or the failure to make it so).
    fn answer(&self, answers: Vec<Answer>, durable: bool) {
        let failed = || {
            ManagerError::Store(dreamos_runtime::Error::StoreFailed(
                "the task manager could not make its changes durable".to_string(),
            ))
        };
        for answer in answers {
            match answer {
                Answer::Task(reply, id) => {
                    let _ = reply.send(if durable {
                        self.task(id)
                    } else {
                        Err(failed())
                    });
                }
                Answer::Tasks(reply) => {
                    let _ = reply.send(if durable {
                        Ok(self.scheduler.tasks().cloned().collect())
                    } else {
                        Err(failed())
                    });
                }
                Answer::Done(reply) => {
                    let _ = reply.send(if durable { Ok(()) } else { Err(failed()) });
                }
                Answer::Flag(reply, flag) => {
                    let _ = reply.send(if durable { Ok(flag) } else { Err(failed()) });
                }
            }
        }
    }

    /// Shutting down: running skills are told to stop and their tasks queued again, without counting the
    /// attempt, so the next start runs them from their latest checkpoint.
    fn stop_running(&mut self, batch: &mut Batch) {
        let now = self.clock.now();
        for (id, run) in std::mem::take(&mut self.running) {
            run.cancel.set();
            batch
                .changed
                .extend(self.scheduler.interrupted(id, TaskStatus::Queued, now));
        }
    }

    /// Enforces the retention of finished tasks: forgets those beyond the bounds, in the store too, and keeps
    /// their ids taken.
    async fn prune(&mut self) -> Result<(), ManagerError> {
        let (keep, keep_for) = self.retention;
        let cutoff = Millis(
            self.clock
                .now()
                .0
                .saturating_sub(keep_for.as_millis() as u64),
        );
        let gone = self.scheduler.prune(keep, cutoff);
        if gone.is_empty() {
            return Ok(());
        }
        self.store.set_next_id(self.scheduler.next_id())?;
        for id in &gone {
            self.store.remove(*id)?;
        }
        self.ums.log().sync().await?;
        tracing::debug!(
            forgotten = gone.len(),
            "task manager: finished tasks forgotten"
        );
        Ok(())
    }

    /// Writes the records of `changed` and waits until they are durable.
    async fn persist(&mut self, changed: &[TaskId]) -> Result<(), ManagerError> {
        if changed.is_empty() {
            return Ok(());
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in changed {
            if seen.insert(*id) {
                if let Some(task) = self.scheduler.get(*id) {
                    self.store.put(task)?;
                }
            }
        }
        self.ums.log().sync().await?;
        // Durable now: frontends may show the changes (a checkpoint alone shows nothing new).
        for id in seen {
            self.show(id);
        }
        Ok(())
    }

    /// Emits task `id` as an event if what people see of it (status, agent, progress) changed since it was last
    /// shown.
    fn show(&mut self, id: TaskId) {
        let Some(task) = self.scheduler.get(id) else {
            self.shown.remove(&id);
            return;
        };
        let seen = Shown {
            status: task.status,
            agent: task.agent.clone(),
            progress: task.progress.clone(),
            attempts: task.attempts,
        };
        if self.shown.get(&id) == Some(&seen) {
            return;
        }
        self.ums.emit(SwarmEvent::Task(Arc::new(task.clone())));
        if task.status.is_final() {
            self.shown.remove(&id);
        } else {
            self.shown.insert(id, seen);
        }
    }

    fn task(&self, id: TaskId) -> Result<Task, ManagerError> {
        self.scheduler
            .get(id)
            .cloned()
            .ok_or(ManagerError::Task(TaskError::UnknownTask(id)))
    }

    /// Applies one request to the scheduler. Refusals are answered at once (nothing changed); everything else
    /// is answered after the batch is durable.
    fn apply(&mut self, request: Request, batch: &mut Batch) {
        let now = self.clock.now();
        match request {
            Request::Create(spec, reply) => match self.scheduler.create(*spec, now) {
                Ok(id) => {
                    batch.changed.push(id);
                    batch.created.push(id);
                    batch.answers.push(Answer::Task(reply, id));
                }
                Err(err) => {
                    let _ = reply.send(Err(err.into()));
                }
            },
            Request::Control(id, control, reply) => match self.control(id, control, now) {
                Ok(changed) => {
                    batch.changed.extend(changed);
                    batch.answers.push(Answer::Task(reply, id));
                }
                Err(err) => {
                    let _ = reply.send(Err(err));
                }
            },
            Request::Get(id, reply) => {
                if self.scheduler.get(id).is_some() {
                    batch.answers.push(Answer::Task(reply, id));
                } else {
                    let _ = reply.send(Err(ManagerError::Task(TaskError::UnknownTask(id))));
                }
            }
            Request::List(reply) => batch.answers.push(Answer::Tasks(reply)),
            Request::PauseAll(paused, reply) => {
                self.scheduler.set_paused(paused);
                batch.answers.push(Answer::Done(reply));
            }
            Request::Shutdown(reply) => batch.shutdown = Some(reply),
            Request::Agent(name, skills, reply) => {
                match skills {
                    Some(skills) => self
                        .scheduler
                        .set_agent(&name, &skills, false, self.per_agent),
                    None => self.scheduler.set_agent(&name, &[], true, self.per_agent),
                }
                batch.answers.push(Answer::Done(reply));
            }
            Request::Checkpoint {
                id,
                attempt,
                value,
                done,
            } => {
                if self.is_current(id, attempt) {
                    batch
                        .changed
                        .extend(self.scheduler.checkpoint(id, value, now));
                    batch.answers.push(Answer::Done(done));
                } else {
                    let _ = done.send(Err(self.stale(id)));
                }
            }
            Request::Progress {
                id,
                attempt,
                progress,
            } => {
                // Kept in memory; written with the task's next durable change. Shown at most every
                // PROGRESS_EVERY per task, and always when it reaches 100%.
                if self.is_current(id, attempt) {
                    let last = progress.percent >= 100;
                    self.scheduler.progress(id, progress, now);
                    let at = tokio::time::Instant::now();
                    let show = self.running.get_mut(&id).is_some_and(|run| {
                        let due = last
                            || run
                                .shown_at
                                .is_none_or(|shown| at.duration_since(shown) >= PROGRESS_EVERY);
                        if due {
                            run.shown_at = Some(at);
                        }
                        due
                    });
                    if show {
                        self.show(id);
                    }
                }
            }
            Request::AskApproval {
                id,
                attempt,
                checkpoint,
                done,
            } => {
                if !self.is_current(id, attempt) {
                    let _ = done.send(Err(self.stale(id)));
                    return;
                }
                match self.scheduler.ask_approval(id, checkpoint, now) {
                    Some(changed) => {
                        // The attempt is over: the skill stops, and its late answer changes nothing.
                        self.running.remove(&id);
                        batch.changed.push(changed);
                        batch.answers.push(Answer::Flag(done, true));
                    }
                    None => {
                        let _ = done.send(Ok(false));
                    }
                }
            }
            Request::Finished {
                id,
                attempt,
                outcome,
            } => {
                if !self.is_current(id, attempt) {
                    return;
                }
                let Some(run) = self.running.remove(&id) else {
                    return;
                };
                batch.changed.extend(match outcome {
                    Outcome::Done(result) => self.scheduler.succeeded(id, result, now),
                    Outcome::Failed { error, retry: true } => self.scheduler.failed(id, error, now),
                    Outcome::Failed {
                        error,
                        retry: false,
                    } => self.scheduler.failed_for_good(id, error, now),
                    Outcome::Interrupted => self.scheduler.interrupted(id, run.stopped_to, now),
                });
            }
        }
    }

    /// The answer to a skill whose attempt was ended meanwhile (cancelled, timed out, paused).
    fn stale(&self, id: TaskId) -> ManagerError {
        ManagerError::Task(TaskError::State {
            id,
            status: self.scheduler.get(id).map_or("gone", |t| t.status.as_str()),
            what: "this attempt no longer runs".to_string(),
        })
    }

    fn is_current(&self, id: TaskId, attempt: u32) -> bool {
        self.running.get(&id).is_some_and(|r| r.attempt == attempt)
    }

    fn control(
        &mut self,
        id: TaskId,
        control: Control,
        now: Millis,
    ) -> Result<Vec<TaskId>, ManagerError> {
        Ok(match control {
            Control::Cancel => {
                let (interrupt, changed) = self.scheduler.cancel(id, now)?;
                if interrupt == Interrupt::Stop {
                    if let Some(run) = self.running.remove(&id) {
                        run.cancel.set();
                    }
                }
                changed
            }
            Control::Pause => match self.scheduler.pause(id, now)? {
                Interrupt::None => vec![id],
                Interrupt::Stop => {
                    // Paused once the skill has stopped at its next check.
                    if let Some(run) = self.running.get_mut(&id) {
                        run.stopped_to = TaskStatus::Paused;
                        run.cancel.set();
                    }
                    Vec::new()
                }
            },
            Control::Resume => {
                self.scheduler.resume(id, now)?;
                vec![id]
            }
            Control::Retry => {
                self.scheduler.retry(id, now)?;
                vec![id]
            }
            Control::Approve { by } => {
                self.scheduler.approve(id, &by, now)?;
                vec![id]
            }
            Control::Reject { by } => self.scheduler.reject(id, &by, now)?,
        })
    }

    /// Starts the skill of a placement that is now durable.
    fn start(&mut self, assignment: super::scheduler::Assignment) {
        let Some(task) = self.scheduler.get(assignment.task).cloned() else {
            return;
        };
        if task.status != TaskStatus::Running {
            return;
        }
        let cancel = Arc::new(CancelSignal::default());
        self.running.insert(
            task.id,
            Running {
                attempt: task.attempts,
                cancel: cancel.clone(),
                stopped_to: TaskStatus::Queued,
                shown_at: None,
            },
        );
        self.start_skill(task, &assignment.agent, cancel);
    }

    fn start_skill(&self, task: Task, agent: &str, cancel: Arc<CancelSignal>) {
        let Some(skill) = self.skills.get(&task.skill).cloned() else {
            let _ = self.tx.try_send(Request::Finished {
                id: task.id,
                attempt: task.attempts,
                outcome: Outcome::Failed {
                    error: format!("no skill `{}` in this build", task.skill),
                    retry: false,
                },
            });
            return;
        };
        let Ok(agent) = AgentName::new(agent) else {
            return;
        };
        let ums = self.ums.clone();
        let tx = self.tx.clone();
        let deadline = task
            .timeout_ms
            .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        tokio::spawn(async move {
            let mut envelope = Envelope::new(
                Address::user(&task.origin.by),
                Address::agent(&agent),
                &task.skill,
                Body::from_value(&task.args),
            );
            // A task's input was accepted when the task was created.
            envelope.created_at = task.created_at;
            envelope.accepted_at = task.created_at;
            let hooks = TaskHooks {
                id: task.id,
                attempt: task.attempts,
                checkpoint: task.checkpoint.clone(),
                cancel: cancel.clone(),
                deadline,
                manager: tx.clone(),
            };
            let mut cx = SkillContext::for_task(&agent, &envelope, &ums, hooks);
            let ran = tokio::select! {
                ran = skill.run(&mut cx) => Some(ran),
                // A skill that does not check its cancellation is dropped at its next await.
                _ = cancel.wait() => None,
            };
            let outcome = match ran {
                None => Outcome::Interrupted,
                Some(Err(err)) if err.is_interrupted() || cancel.is_set() => Outcome::Interrupted,
                Some(Err(err)) => Outcome::Failed {
                    error: err.to_string(),
                    retry: !err.is_permanent(),
                },
                Some(Ok(())) => Outcome::Done(result_of(cx.into_outputs())),
            };
            let _ = tx
                .send(Request::Finished {
                    id: task.id,
                    attempt: task.attempts,
                    outcome,
                })
                .await;
        });
    }
}

/// A task's result: the body of the skill's last reply (`null` when it made none).
fn result_of(outputs: Vec<dreamos_runtime::log::StoredMessage>) -> serde_json::Value {
    outputs
        .last()
        .and_then(|m| serde_json::from_str(m.envelope.body.as_json()).ok())
        .unwrap_or(serde_json::Value::Null)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
