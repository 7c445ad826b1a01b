//! Skills: what agents can do. A message's kind picks the skill of the same name.
//!
//! A skill gets a [`SkillContext`]: the message, the agent's identity, a way to reply and to send, a progress
//! reporter, the store, and a CellPhone. Replies and sends made through the context are *buffered* and written
//! together with the agent's acknowledgement, in one commit: if the process dies mid-way, neither exists and the
//! message is handled again, so each handled message has its effects exactly once.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use dreamos_runtime::{
    log::StoredMessage,
    message::{Address, AgentName, Body, Envelope, Millis},
    Store,
};
use serde_json::json;

use crate::{events::SwarmEvent, phone::CellPhone, stats::AgentSnapshot, ums::Ums};

/// Why a skill failed; the message is retried, then dead-lettered. A skill *interrupted* because the process is
/// shutting down has not failed: its message is left unresolved and handled again after the restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillError {
    message: String,
    interrupted: bool,
    permanent: bool,
}

impl SkillError {
    pub fn new(message: impl Into<String>) -> SkillError {
        SkillError {
            message: message.into(),
            interrupted: false,
            permanent: false,
        }
    }

    /// The skill stopped because the swarm is shutting down.
    pub fn interrupted(message: impl Into<String>) -> SkillError {
        SkillError {
            interrupted: true,
            ..SkillError::new(message)
        }
    }

    /// A failure that another attempt would repeat (the input is wrong): a task fails at once, without retries.
    pub fn permanent(message: impl Into<String>) -> SkillError {
        SkillError {
            permanent: true,
            ..SkillError::new(message)
        }
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl std::fmt::Display for SkillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for SkillError {
    fn from(text: String) -> Self {
        SkillError::new(text)
    }
}

impl From<&str> for SkillError {
    fn from(text: &str) -> Self {
        SkillError::new(text)
    }
}

impl From<crate::Error> for SkillError {
    fn from(err: crate::Error) -> Self {
        if matches!(
            err,
            crate::Error::Scanner(dreamos_scanner::Error::Cancelled) | crate::Error::ShuttingDown
        ) {
            SkillError::interrupted(err.to_string())
        } else {
            SkillError::new(err.to_string())
        }
    }
}

/// Something an agent can do.
#[async_trait]
pub trait Skill: Send + Sync + 'static {
    /// The skill's name, which is also the message kind it handles.
    fn name(&self) -> &'static str;

    /// One line for `/help` and `/agents`.
    fn summary(&self) -> &'static str;

    /// Handles one message. A panic here crashes the agent: the supervisor restarts it and the message is
    /// retried; an `Err` is a failed attempt without a crash.
    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError>;
}

/// The skills a swarm knows, by name.
#[derive(Clone, Default)]
pub struct SkillRegistry {
    skills: BTreeMap<&'static str, Arc<dyn Skill>>,
}

impl SkillRegistry {
    /// The built-in skills: `ping` and `report`.
    pub fn builtin() -> SkillRegistry {
        let mut registry = SkillRegistry::default();
        registry.add(Arc::new(Ping));
        registry.add(Arc::new(Report));
        registry
    }

    /// Adds (or replaces) a skill.
    pub fn add(&mut self, skill: Arc<dyn Skill>) -> &mut SkillRegistry {
        self.skills.insert(skill.name(), skill);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Skill>> {
        self.skills.get(name)
    }

    pub fn names(&self) -> Vec<String> {
        self.skills.keys().map(|s| s.to_string()).collect()
    }

    /// Expands a configured skill list: `*` means every skill; unknown names are an error naming them.
    pub fn expand(&self, agent: &str, wanted: &[String]) -> Result<Vec<String>, crate::Error> {
        let mut out = Vec::new();
        for name in wanted {
            if name == "*" {
                out.extend(self.names());
            } else if self.skills.contains_key(name.as_str()) {
                out.push(name.clone());
            } else {
                return Err(crate::Error::Invalid(format!(
                    "agent `{agent}`: unknown skill `{name}`; known skills are {}",
                    self.names().join(", ")
                )));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// What a skill sees of the world while it handles one message.
pub struct SkillContext<'a> {
    agent: &'a AgentName,
    message: &'a Envelope,
    ums: &'a Ums,
    outputs: Vec<StoredMessage>,
    task: Option<crate::tasks::TaskHooks>,
}

impl<'a> SkillContext<'a> {
    pub(crate) fn new(agent: &'a AgentName, message: &'a Envelope, ums: &'a Ums) -> Self {
        SkillContext {
            agent,
            message,
            ums,
            outputs: Vec::new(),
            task: None,
        }
    }

    /// A context for running a skill as one attempt at a task (the message is the task's input).
    pub(crate) fn for_task(
        agent: &'a AgentName,
        message: &'a Envelope,
        ums: &'a Ums,
        hooks: crate::tasks::TaskHooks,
    ) -> Self {
        SkillContext {
            task: Some(hooks),
            ..SkillContext::new(agent, message, ums)
        }
    }

    /// The task this skill runs as, when it runs as one.
    pub fn task(&self) -> Option<dreamos_runtime::task::TaskId> {
        self.task.as_ref().map(|t| t.id)
    }

    /// The checkpoint the task saved before the process stopped: a skill resumes from here instead of starting
    /// over. `None` for a message, and for a task's first run.
    pub fn resumed_from(&self) -> Option<&serde_json::Value> {
        self.task.as_ref().and_then(|t| t.checkpoint.as_ref())
    }

    /// Saves a checkpoint for the task; it is durable when this returns. A long skill calls it after each unit of
    /// work it would not want to redo. For a message (not a task) it is an error.
    pub async fn checkpoint(&mut self, value: serde_json::Value) -> Result<(), SkillError> {
        match &mut self.task {
            Some(task) => task.save(value).await,
            None => Err(SkillError::new(
                "checkpoints are for tasks; this skill runs for a message",
            )),
        }
    }

    /// Asks a captain to approve the rest of the work (human in the loop), saving `checkpoint`. When the task
    /// was approved already (at creation with `--approve`, or by an earlier ask) this returns `Ok` and the skill
    /// goes on. Otherwise the task waits in `waiting_approval`, durably, and this returns an interrupted error
    /// that the skill returns as it is; once approved, the skill runs again from `checkpoint`, and asking again
    /// there returns `Ok`. A rejection cancels the task. For a message (not a task) it is an error.
    pub async fn request_approval(
        &mut self,
        checkpoint: serde_json::Value,
    ) -> Result<(), SkillError> {
        let Some(task) = &mut self.task else {
            return Err(SkillError::new(
                "approval is for tasks; this skill runs for a message",
            ));
        };
        if task.ask_approval(checkpoint).await? {
            return Err(SkillError::interrupted("waiting for a captain's approval"));
        }
        Ok(())
    }

    /// True once the task was cancelled, paused or timed out, or the swarm is stopping: the skill should stop at
    /// its next check (returning an error made with [`SkillError::interrupted`]).
    pub fn is_cancelled(&self) -> bool {
        self.task.as_ref().is_some_and(|t| t.cancel.is_set())
    }

    /// Resolves when [`SkillContext::is_cancelled`] becomes true (never, for a message).
    pub async fn cancelled(&self) {
        match &self.task {
            Some(task) => task.cancel.wait().await,
            None => std::future::pending().await,
        }
    }

    /// When the current attempt times out, if the task has a timeout.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.task.as_ref().and_then(|t| t.deadline)
    }

    /// The agent running the skill.
    pub fn agent(&self) -> &AgentName {
        self.agent
    }

    /// The message being handled.
    pub fn message(&self) -> &Envelope {
        self.message
    }

    /// The body's `text` field, or the whole body as JSON text.
    pub fn text(&self) -> String {
        self.message
            .body
            .text_field()
            .unwrap_or_else(|| self.message.body.as_json().to_string())
    }

    /// Replies to the sender; written with this message's acknowledgement.
    pub fn reply(&mut self, body: serde_json::Value) -> Result<(), SkillError> {
        let envelope = Envelope::new(
            Address::agent(self.agent),
            self.message.from.clone(),
            crate::REPLY_KIND,
            Body::from_value(&body),
        )
        .with_priority(self.message.priority)
        .with_reply_to(self.message.id);
        self.push(envelope)
    }

    /// Sends a new message; written with this message's acknowledgement.
    pub fn send(
        &mut self,
        to: Address,
        kind: &str,
        body: serde_json::Value,
    ) -> Result<(), SkillError> {
        let envelope = Envelope::new(
            Address::agent(self.agent),
            to,
            kind,
            Body::from_value(&body),
        );
        self.push(envelope)
    }

    fn push(&mut self, envelope: Envelope) -> Result<(), SkillError> {
        let message = self.ums.prepare(envelope)?;
        self.outputs.push(message);
        Ok(())
    }

    /// Tells the frontends how far the skill has got. For a task it is also kept in the task's record.
    pub fn progress(&self, percent: Option<u8>, note: &str) {
        // A task's progress is shown as the task's own event.
        if let Some(task) = &self.task {
            task.progress(percent.unwrap_or(0), note);
            return;
        }
        self.ums.emit(SwarmEvent::Progress {
            agent: self.agent.clone(),
            message: self.message.id,
            percent: percent.map(|p| p.min(100)),
            note: note.to_string(),
        });
    }

    /// The UMS, for skills of this crate that send and await messages themselves.
    pub(crate) fn ums(&self) -> &Ums {
        self.ums
    }

    /// Sends `body` as `kind` to agent `to` and waits up to `timeout` for its reply (`None` when none came),
    /// durably: the request is recorded under this task (or message) and `step`, so that a resumed task or a
    /// redelivered message waits for the same message's reply instead of sending it again. Use a different
    /// `step` for each request a skill makes.
    pub async fn request(
        &self,
        step: u32,
        to: &AgentName,
        kind: &str,
        body: Body,
        timeout: std::time::Duration,
    ) -> Result<Option<std::sync::Arc<dreamos_runtime::log::StoredMessage>>, SkillError> {
        let scope = match self.task() {
            Some(task) => format!("task:{task}"),
            None => format!("msg:{}", self.message.id),
        };
        let calls = dreamos_runtime::calls::CallStore::open(self.ums.store())
            .map_err(|e| SkillError::new(e.to_string()))?;
        let key = dreamos_runtime::calls::CallKey::new(&scope, step, u32::MAX);
        self.phone()
            .request(to, kind, body, timeout, Some((&calls, &key)))
            .await
            .map_err(SkillError::from)
    }

    /// A phone to send messages that do not wait for this one's acknowledgement (durable on their own).
    pub fn phone(&self) -> CellPhone {
        CellPhone::new(self.ums.clone(), Address::agent(self.agent))
    }

    /// The largest body a reply or a message may have (`messages.max_body_bytes`).
    pub fn max_body_bytes(&self) -> usize {
        self.ums.config().max_body_bytes
    }

    /// The store, for skills that keep their own records.
    pub fn store(&self) -> &Store {
        self.ums.store()
    }

    /// Dreamscribe, when the swarm has it.
    pub fn memory(&self) -> Option<&crate::memory::Memory> {
        self.ums.memory()
    }

    /// Writes a memory entry by this agent, linked to the task it runs as (or else the message it handles);
    /// answers once it is durable. `links` adds to those.
    pub async fn remember(
        &self,
        kind: dreamos_runtime::memory::EntryKind,
        text: &str,
        tags: Vec<String>,
        mut links: dreamos_runtime::memory::Links,
    ) -> Result<dreamos_runtime::memory::Entry, SkillError> {
        let memory = self
            .memory()
            .ok_or_else(|| SkillError::permanent("this swarm has no memory"))?;
        match self.task() {
            Some(task) => links.tasks.push(task),
            None => links.messages.push(self.message.id),
        }
        memory
            .remember(crate::memory::NewEntry {
                author: dreamos_runtime::memory::Author::Agent(self.agent.to_string()),
                kind,
                text: text.to_string(),
                tags,
                links,
            })
            .await
            .map_err(|e| match e {
                crate::Error::Invalid(m) => SkillError::permanent(m),
                other => SkillError::new(other.to_string()),
            })
    }

    /// Searches the memory as `/recall` does.
    pub async fn recall(
        &self,
        query: crate::memory::RecallQuery,
    ) -> Result<crate::memory::Recalled, SkillError> {
        let memory = self
            .memory()
            .ok_or_else(|| SkillError::permanent("this swarm has no memory"))?;
        memory.recall(query).await.map_err(|e| match e {
            crate::Error::Invalid(m) => SkillError::permanent(m),
            other => SkillError::new(other.to_string()),
        })
    }

    /// An automatic journal entry about this skill's work (when `[memory] journal` has `topic`), linked like
    /// [`SkillContext::remember`]'s.
    pub fn journal(
        &self,
        topic: dreamos_runtime::config::JournalTopic,
        tags: &[&str],
        text: String,
    ) {
        if let Some(memory) = self.memory() {
            let mut links = dreamos_runtime::memory::Links {
                agents: vec![self.agent.to_string()],
                ..Default::default()
            };
            match self.task() {
                Some(task) => links.tasks.push(task),
                None => links.messages.push(self.message.id),
            }
            memory.note(topic, tags, text, links);
        }
    }

    /// This agent's status and counters.
    pub fn snapshot(&self) -> Option<AgentSnapshot> {
        self.ums.snapshot(self.agent.as_str())
    }

    pub(crate) fn into_outputs(self) -> Vec<StoredMessage> {
        self.outputs
    }
}

/// `ping`: echoes the text back with how long the message waited.
pub struct Ping;

#[async_trait]
impl Skill for Ping {
    fn name(&self) -> &'static str {
        "ping"
    }

    fn summary(&self) -> &'static str {
        "echo the text back, with the time from acceptance to handling"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let now = Millis::now();
        let waited = now.0.saturating_sub(cx.message().accepted_at.0);
        let text = cx.text();
        let agent = cx.agent().to_string();
        cx.reply(json!({
            "text": format!("pong: {text}"),
            "agent": agent,
            "waited_ms": waited,
            "handled_at": now.rfc3339(),
        }))
    }
}

/// `report`: replies with the agent's status and counters.
pub struct Report;

#[async_trait]
impl Skill for Report {
    fn name(&self) -> &'static str {
        "report"
    }

    fn summary(&self) -> &'static str {
        "reply with this agent's status, queue and counters"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let snapshot = cx
            .snapshot()
            .ok_or_else(|| SkillError::new(format!("agent {} is not registered", cx.agent())))?;
        let text = format!(
            "{} is {}: {} queued, {} handled, {} failed, {} restarts",
            snapshot.name,
            snapshot.status.as_str(),
            snapshot.queue,
            snapshot.handled,
            snapshot.failed,
            snapshot.restarts
        );
        cx.reply(json!({ "text": text, "report": snapshot }))
    }
}

/// `fault`: fails on request, the hard ways a buggy skill can. Registered only with `[debug] fault_skill = true`,
/// for tests of supervision and recovery. The message text names the fault: `abort` (the process aborts),
/// `stack_overflow` (the thread overflows its stack, which aborts the process), `panic` (the agent crashes and is
/// restarted), `fail` (the attempt fails cleanly), or `sleep MS` (answers after MS milliseconds, at most a minute).
/// Anything else is answered `no fault: TEXT`.
pub struct Fault;

#[async_trait]
impl Skill for Fault {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn summary(&self) -> &'static str {
        "for tests: abort, stack_overflow, panic, fail or sleep MS on request"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let text = cx.text();
        match text.trim() {
            "abort" => {
                tracing::error!(agent = %cx.agent(), "fault skill: aborting the process on request");
                std::process::abort()
            }
            "stack_overflow" => {
                tracing::error!(agent = %cx.agent(), "fault skill: overflowing the stack on request");
                let depth = overflow(std::hint::black_box(1));
                Err(SkillError::new(format!("the stack held {depth} frames")))
            }
            "panic" => panic!("fault skill: panicking on request"),
            "fail" => Err(SkillError::new("fault skill: failing on request")),
            other => {
                if let Some(ms) = other
                    .strip_prefix("sleep ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                {
                    tokio::time::sleep(std::time::Duration::from_millis(ms.min(60_000))).await;
                    return cx.reply(json!({ "text": format!("slept {ms} ms") }));
                }
                cx.reply(json!({ "text": format!("no fault: {other}") }))
            }
        }
    }
}

/// `steps`: a long task for tests of durable execution. Registered with `fault`. Arguments `{"steps": N, "ms": M}`
/// (at most 10,000 steps of at most 10 s): runs N steps of M milliseconds, reports progress and saves a checkpoint
/// `{"next": K}` after each, and on a resumed run starts at the checkpoint's step. With `"approve_at": K` it asks
/// a captain's approval before step K. With `[debug] journal` set, it
/// appends `start TASK FROM`, `step TASK K`, `saved TASK K` and `finish TASK` lines there, so that a test sees
/// what ran again after a crash.
pub struct Steps {
    pub journal: Option<std::path::PathBuf>,
}

impl Steps {
    fn note(&self, line: &str) -> Result<(), SkillError> {
        use std::io::Write;
        let Some(path) = &self.journal else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
            .map_err(|e| {
                SkillError::new(format!("cannot write the journal {}: {e}", path.display()))
            })
    }
}

#[async_trait]
impl Skill for Steps {
    fn name(&self) -> &'static str {
        "steps"
    }

    fn summary(&self) -> &'static str {
        "for tests: {\"steps\": N, \"ms\": M} runs N steps with a checkpoint after each"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let args: serde_json::Value =
            serde_json::from_str(cx.message().body.as_json()).unwrap_or_default();
        let steps = args["steps"].as_u64().unwrap_or(10).min(10_000);
        let ms = args["ms"].as_u64().unwrap_or(100).min(10_000);
        let task = cx
            .task()
            .map_or_else(|| "-".to_string(), |id| id.to_string());
        let from = cx
            .resumed_from()
            .and_then(|c| c["next"].as_u64())
            .unwrap_or(0);
        let approve_at = args["approve_at"].as_u64();
        self.note(&format!("start {task} {from}"))?;
        for step in from..steps {
            if cx.is_cancelled() {
                return Err(SkillError::interrupted("cancelled"));
            }
            if approve_at == Some(step) && cx.task().is_some() {
                cx.request_approval(json!({ "next": step })).await?;
            }
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            self.note(&format!("step {task} {step}"))?;
            cx.progress(
                Some(((step + 1) * 100 / steps.max(1)) as u8),
                &format!("step {} of {steps}", step + 1),
            );
            if cx.task().is_some() {
                cx.checkpoint(json!({ "next": step + 1 })).await?;
                self.note(&format!("saved {task} {}", step + 1))?;
            }
        }
        self.note(&format!("finish {task}"))?;
        cx.reply(json!({ "text": format!("{steps} steps done"), "steps": steps }))
    }
}

/// Recurses until the stack runs out; the array keeps each frame large and the black boxes keep it a recursion.
#[allow(unconditional_recursion)]
fn overflow(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 512]);
    overflow(std::hint::black_box(frame[0] + 1)) + frame[511]
}
