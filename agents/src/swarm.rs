//! The `Swarm` facade: what frontends hold. It starts the whole actor system from a config and a store, and
//! exposes phones, agent lifecycle, status, history and shutdown.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use dreamos_runtime::{
    audit::{AuditEntry, AuditLog},
    config::{AgentConfig, Config},
    log::{DeadLetter, HistoryPage, HistoryQuery, LogOptions, LogStats, MessageLog, StoredMessage},
    message::{check_name, AgentName, Millis, Seq},
    roster::{AgentOrigin, AgentRecord, DesiredState, Roster},
    Store,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinHandle;

use dreamos_runtime::memory::{Author, Entry, EntryId};

use crate::{
    code::Code,
    error::{Error, Result},
    events::{EventBus, EventReceiver},
    memory::{Memory, NewEntry, Retention, MEMORY_INDEX_DIR},
    orchestrator::OrchestratorHandle,
    phone::{CaptainPhone, CellPhone, Principal},
    skill::SkillRegistry,
    stats::{AgentSnapshot, AgentStatus},
    ums::{AgentSpec, Ums},
};

/// The code index's directory inside the data directory.
pub const CODE_INDEX_DIR: &str = "index";

/// The running swarm. Cheap to clone.
#[derive(Clone)]
pub struct Swarm {
    inner: Arc<SwarmInner>,
}

struct SwarmInner {
    config: Config,
    ums: Ums,
    code: Code,
    orchestrator: OrchestratorHandle,
    roster: Roster,
    audit: AuditLog,
    skills: Arc<SkillRegistry>,
    started_at: Millis,
    startup_events: Mutex<Option<EventReceiver>>,
    orchestrator_task: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
    tasks: crate::tasks::TaskManager,
    memory: Memory,
    /// Every call to a model is recorded here, whether or not one is configured now.
    ledger: crate::llm::Ledger,
    /// The bridge behind the ledger, or why there is none.
    llm: std::result::Result<crate::llm::Llm, String>,
}

/// `/status`: the agents and the message log's counters.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmStatus {
    pub started_at: String,
    pub uptime_secs: u64,
    pub agents: Vec<AgentSnapshot>,
    pub messages: LogStats,
}

impl Swarm {
    /// Opens the message log, recovers what was unresolved, and starts every agent the configuration and the
    /// roster name (except those the captain left stopped).
    ///
    /// `skills` are the swarm's skills besides the code skills, which it adds over its code index in
    /// `<data-dir>/index` (see [`crate::code`]), and the `fault` skill when `[debug] fault_skill` is on.
    pub async fn start(config: Config, store: Store, mut skills: SkillRegistry) -> Result<Swarm> {
        let code = Code::open(&store.dir().join(CODE_INDEX_DIR), &config.scanner)?;
        crate::code_skills::register(&mut skills, &code);
        crate::memory::skills::register(&mut skills);
        let llm_cell = Arc::new(std::sync::OnceLock::new());
        skills.add(Arc::new(crate::llm::skill::AskSkill {
            llm: llm_cell.clone(),
            code: code.clone(),
            personas: config
                .agents
                .iter()
                .filter(|a| !a.persona.trim().is_empty())
                .map(|a| (a.name.clone(), a.persona.clone()))
                .collect(),
            conversations: dreamos_runtime::conversation::Conversations::open(&store)?,
        }));
        if config.debug.fault_skill {
            tracing::warn!(
                "[debug] fault_skill is on: the `fault` skill can abort this process on request"
            );
            skills.add(Arc::new(crate::skill::Fault));
            let journal = &config.debug.journal;
            skills.add(Arc::new(crate::skill::Steps {
                journal: (!journal.as_os_str().is_empty()).then(|| journal.clone()),
            }));
        }
        let skills = Arc::new(skills);
        let roster = Roster::open(&store)?;
        let audit = AuditLog::open(&store)?;
        let (log, recovery) = MessageLog::open(
            &store,
            LogOptions::new(&config.store, &config.messages, &config.retention),
        )?;
        let events = EventBus::new(config.messages.event_buffer_bytes);
        let ums = Ums::new(log.clone(), store.clone(), config.messages.clone(), events);
        let memory = Memory::open(
            &store,
            &store.dir().join(MEMORY_INDEX_DIR),
            log.clone(),
            config.memory.clone(),
            Retention {
                max_entries: config.retention.memory_max,
                max_age: config.retention.memory_max_age,
                every: config.retention.compact_every,
            },
        )
        .await?;
        ums.set_memory(memory.clone());
        let ledger = crate::llm::Ledger::open(
            dreamos_runtime::usage::UsageStore::open(&store)?,
            log.clone(),
            config.llm.budgets.clone(),
        )?;
        let calls = dreamos_runtime::calls::CallStore::open(&store)?;
        let pruned = calls.prune()?;
        if pruned > 0 {
            tracing::info!(pruned, "recorded calls older than a week dropped");
        }
        let llm = match crate::llm::Bridge::new(&config.llm) {
            Ok(bridge) => Ok(crate::llm::Llm::new(bridge, ledger.clone()).recording(calls.clone())),
            Err(crate::llm::LlmError::NotConfigured) => {
                Err(crate::llm::LlmError::NotConfigured.to_string())
            }
            Err(e) => {
                tracing::warn!(error = %e, "the LLM bridge is off");
                Err(e.to_string())
            }
        };
        // The `ask` skill sees the same bridge (or why there is none).
        let _ = llm_cell.set(llm.clone());
        if let Ok(llm) = &llm {
            let embedder = llm
                .bridge()
                .models()
                .iter()
                .find(|m| {
                    m.tags
                        .contains(&dreamos_runtime::config::ModelTag::Embeddings)
                })
                .cloned();
            if let Some(model) = embedder {
                tracing::info!(model = %model.name, "recall ranks by BM25 and embeddings together");
                memory.set_semantic(crate::memory::semantic::Semantic {
                    llm: llm.clone(),
                    model,
                    vectors: dreamos_runtime::memory::VectorStore::open(&store)?,
                });
            }
        }

        let mut to_start = Vec::new();
        for agent in &config.agents {
            let desired = roster
                .get(&agent.name)?
                .map_or(DesiredState::Running, |r| r.desired);
            let record = record_from_config(agent, desired);
            register(&ums, &skills, &record)?;
            roster.put(&record)?;
            to_start.push(record);
        }
        for record in roster.all()? {
            if record.origin == AgentOrigin::Spawned
                && !config.agents.iter().any(|a| a.name == record.name)
            {
                register(&ums, &skills, &record)?;
                to_start.push(record);
            }
        }

        // Subscribed before anything is routed, so that the first frontend also sees what recovery produced
        // (a dead letter for an agent that is gone, say); see `events_since_start`.
        let startup_events = ums.subscribe();
        memory.start_journal(ums.subscribe(), config.memory.broadcast_window);
        log.start(ums.router())?;
        ums.recover(recovery)?;
        // What recovery decided (dead letters found at start, with their notices) is durable before anyone asks.
        log.barrier().await?;

        let (orchestrator, orchestrator_task) = OrchestratorHandle::spawn(
            ums.clone(),
            skills.clone(),
            roster.clone(),
            config.supervisor.clone(),
        )
        .await?;
        for record in &to_start {
            if record.desired != DesiredState::Stopped {
                orchestrator.start(&agent_name(&record.name)?).await?;
                memory.agent_changed(
                    &record.name,
                    if record.desired == DesiredState::Paused {
                        "started paused"
                    } else {
                        "started"
                    },
                    "the swarm at start",
                );
            }
        }
        let tasks = crate::tasks::TaskManager::start(
            dreamos_runtime::task::TaskStore::open(&store)?,
            ums.clone(),
            skills.clone(),
            to_start
                .iter()
                .filter(|r| r.desired == DesiredState::Running)
                .map(|r| (r.name.clone(), r.skills.clone()))
                .collect(),
            crate::tasks::TaskConfig::from(&config),
        )
        .await
        .map_err(|e| Error::Actor(format!("starting the task manager: {e}")))?;
        tracing::info!(agents = to_start.len(), dir = %store.dir().display(), "swarm started");
        Ok(Swarm {
            inner: Arc::new(SwarmInner {
                config,
                ums,
                code,
                orchestrator,
                roster,
                audit,
                skills,
                started_at: Millis::now(),
                startup_events: Mutex::new(Some(startup_events)),
                orchestrator_task: Mutex::new(Some(orchestrator_task)),
                tasks,
                memory,
                ledger,
                llm,
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// Writes an audit entry and has the log's writer flush it within milliseconds.
    pub fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.inner.audit.record(entry)?;
        self.inner.ums.log().request_flush();
        Ok(())
    }

    /// The task manager: `/task ...` runs through it.
    pub fn tasks(&self) -> &crate::tasks::TaskManager {
        &self.inner.tasks
    }

    /// Dreamscribe: `/remember`, `/recall`, `/journal` and `/forget` run through it.
    pub fn memory(&self) -> &Memory {
        &self.inner.memory
    }

    /// Writes an entry by a person (operator or captain); answers once it is durable.
    pub async fn remember(&self, who: &Principal, entry: NewEntry) -> Result<Entry> {
        who.require_operator("writing to the memory")?;
        self.inner.memory.remember(entry).await
    }

    /// Removes an entry from the memory (captain only); the removal is itself journaled.
    pub async fn forget(&self, who: &Principal, id: EntryId) -> Result<Entry> {
        who.require_captain("forgetting memory entries")?;
        self.inner.memory.forget(id, who_author(who)).await
    }

    /// The token ledger: `/usage` reads it.
    pub fn ledger(&self) -> &crate::llm::Ledger {
        &self.inner.ledger
    }

    /// `/usage`: token totals of the calls `filter` selects (operators and captains).
    pub fn usage(
        &self,
        who: &Principal,
        filter: &crate::llm::UsageFilter,
    ) -> Result<crate::llm::Totals> {
        who.require_operator("reading the token ledger")?;
        self.inner.ledger.totals(filter)
    }

    /// The LLM bridge behind the ledger, or why there is none (nothing configured, a key variable not set).
    pub fn llm(&self) -> std::result::Result<&crate::llm::Llm, &str> {
        self.inner.llm.as_ref().map_err(String::as_str)
    }

    /// The code index: `/index`, `/search`, `/symbol`, `/outline` and `/deps` run through it.
    pub fn code(&self) -> &Code {
        &self.inner.code
    }

    pub fn skills(&self) -> &SkillRegistry {
        &self.inner.skills
    }

    /// Events from now on: replies and notices for people, restarts, progress, a failed store.
    pub fn subscribe(&self) -> EventReceiver {
        self.inner.ums.subscribe()
    }

    /// Resolves when the store fails underneath the swarm, with why. The swarm then accepts nothing more; the
    /// process should stop (nothing acknowledged is lost, the rest is delivered again after a restart).
    pub async fn failed(&self) -> String {
        let mut fatal = self.inner.ums.fatal();
        loop {
            if let Some(error) = fatal.borrow_and_update().clone() {
                return error;
            }
            if fatal.changed().await.is_err() {
                // The swarm is gone without failing: never resolve.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Every event since the swarm started, for the first caller (the main frontend); later callers get a fresh
    /// subscription, as from [`Swarm::subscribe`].
    pub fn events_since_start(&self) -> EventReceiver {
        self.inner
            .startup_events
            .lock()
            .take()
            .unwrap_or_else(|| self.subscribe())
    }

    /// A phone to talk to agents as `who`.
    pub fn cell_phone(&self, who: &Principal) -> CellPhone {
        CellPhone::new(self.inner.ums.clone(), who.address())
    }

    /// A phone to give orders; only a captain gets one.
    pub fn captain_phone(&self, who: &Principal) -> Result<CaptainPhone> {
        who.require_captain("giving orders")?;
        Ok(CaptainPhone::new(
            self.inner.ums.clone(),
            who.address(),
            self.inner.tasks.clone(),
        ))
    }

    pub fn agents(&self) -> Vec<AgentSnapshot> {
        self.inner
            .ums
            .entries()
            .iter()
            .map(|e| e.snapshot())
            .collect()
    }

    pub fn agent(&self, name: &str) -> Result<AgentSnapshot> {
        self.inner
            .ums
            .snapshot(name)
            .ok_or_else(|| Error::UnknownAgent {
                name: name.to_string(),
            })
    }

    pub fn status(&self) -> SwarmStatus {
        SwarmStatus {
            started_at: self.inner.started_at.rfc3339(),
            uptime_secs: Millis::now().0.saturating_sub(self.inner.started_at.0) / 1000,
            agents: self.agents(),
            messages: self.inner.ums.log().stats(),
        }
    }

    /// Starts a new agent (or a stopped or failed one again). Captain only.
    pub async fn spawn_agent(
        &self,
        who: &Principal,
        name: &str,
        skills: Option<Vec<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<AgentSnapshot> {
        who.require_captain("spawning agents")?;
        let agent = agent_name(name)?;
        match self.inner.ums.entry(name) {
            Some(existing) => {
                let status = existing.stats.status();
                if status.is_live() {
                    return Err(Error::AgentExists {
                        name: name.to_string(),
                        status: status.as_str().to_string(),
                    });
                }
            }
            // A new agent follows the naming rule (an existing one is started again by the name it has).
            None => dreamos_runtime::message::check_agent_name(name).map_err(Error::Invalid)?,
        }
        if skills.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::Invalid(
                "--skills names no skill; give at least one (such as ping), or leave it out for every skill"
                    .to_string(),
            ));
        }
        let mut record = match self.inner.roster.get(name)? {
            Some(record) => record,
            None => AgentRecord {
                name: name.to_string(),
                skills: vec!["*".to_string()],
                groups: Vec::new(),
                subscribe: vec!["*".to_string()],
                desired: DesiredState::Running,
                origin: AgentOrigin::Spawned,
            },
        };
        if let Some(skills) = skills {
            record.skills = skills;
        }
        if let Some(groups) = groups {
            for group in &groups {
                check_name(group, "group").map_err(Error::Invalid)?;
            }
            record.groups = groups;
        }
        record.desired = DesiredState::Running;
        register(&self.inner.ums, &self.inner.skills, &record)?;
        self.inner.roster.put(&record)?;
        self.inner.orchestrator.start(&agent).await?;
        self.inner
            .memory
            .agent_changed(name, "started", &who.address().to_string());
        self.offer_tasks(name, Some(record.skills.clone())).await;
        self.agent(name)
    }

    /// Stops an agent after its current message; its queue is kept for when it is started again. Captain only.
    pub async fn stop_agent(&self, who: &Principal, name: &str) -> Result<AgentSnapshot> {
        who.require_captain("stopping agents")?;
        let agent = self.existing(name)?;
        self.inner.orchestrator.stop(&agent).await?;
        self.set_desired(name, DesiredState::Stopped)?;
        self.inner
            .memory
            .agent_changed(name, "stopped", &who.address().to_string());
        // A stopped agent takes no new tasks (the ones it runs finish).
        self.offer_tasks(name, None).await;
        self.agent(name)
    }

    /// Tells the task manager that agent `name` takes tasks with `skills`, or none (`None`). The agent's own
    /// change stands even if the manager cannot hear of it (it is stopping); that is logged.
    async fn offer_tasks(&self, name: &str, skills: Option<Vec<String>>) {
        if let Err(err) = self.inner.tasks.set_agent(name, skills).await {
            tracing::warn!(agent = name, error = %err, "the task manager did not hear of the agent's change");
        }
    }

    /// Stops (if running) and starts an agent, clearing its failure count. Captain only.
    pub async fn restart_agent(&self, who: &Principal, name: &str) -> Result<AgentSnapshot> {
        who.require_captain("restarting agents")?;
        let agent = self.existing(name)?;
        self.inner.orchestrator.restart(&agent).await?;
        self.inner
            .memory
            .agent_changed(name, "restarted", &who.address().to_string());
        if let Some(record) = self.inner.roster.get(name)? {
            if record.desired == DesiredState::Stopped {
                self.set_desired(name, DesiredState::Running)?;
            }
            if record.desired != DesiredState::Paused {
                self.offer_tasks(name, Some(record.skills.clone())).await;
            }
        }
        self.agent(name)
    }

    /// Moves every message waiting for an agent (not the one it is handling) to dead letters, whatever its state,
    /// and tells the captain. Captain only. Returns the agent and how many went.
    /// Moves every message waiting for `name` to dead letters; answers once that is durable (and visible).
    pub async fn purge_agent(&self, who: &Principal, name: &str) -> Result<(AgentSnapshot, usize)> {
        who.require_captain("purging an agent's queue")?;
        self.existing(name)?;
        let entry = self
            .inner
            .ums
            .entry(name)
            .ok_or_else(|| Error::UnknownAgent {
                name: name.to_string(),
            })?;
        let reason = format!("purged from {name}'s queue by {}", who.name);
        let purged = self.inner.ums.purge(&entry, &reason)?;
        self.inner.ums.log().barrier().await?;
        Ok((self.agent(name)?, purged))
    }

    fn existing(&self, name: &str) -> Result<AgentName> {
        let agent = agent_name(name)?;
        if self.inner.ums.entry(name).is_none() {
            return Err(Error::UnknownAgent {
                name: name.to_string(),
            });
        }
        Ok(agent)
    }

    fn set_desired(&self, name: &str, desired: DesiredState) -> Result<()> {
        if let Some(mut record) = self.inner.roster.get(name)? {
            record.desired = desired;
            self.inner.roster.put(&record)?;
        }
        Ok(())
    }

    /// Messages accepted after `after`, oldest first: for frontends that follow the log with a cursor of their
    /// own (the Discord outbox).
    pub fn messages_after(&self, after: Seq, limit: usize) -> Result<Vec<StoredMessage>> {
        Ok(self.inner.ums.log().read_after(after, limit)?)
    }

    /// Asks the log's writer to flush the store soon: what a frontend wrote to its own trees becomes durable.
    pub fn request_flush(&self) {
        self.inner.ums.log().request_flush();
    }

    /// The store, for frontends that keep state of their own in it (through `dreamos_runtime` types).
    pub fn store(&self) -> &Store {
        self.inner.ums.store()
    }

    pub fn history(&self, query: &HistoryQuery) -> Result<HistoryPage> {
        Ok(self.inner.ums.log().history(query)?)
    }

    pub fn dead_letters(&self, limit: usize, before: Option<Seq>) -> Result<Vec<DeadLetter>> {
        Ok(self.inner.ums.log().dead_letters(limit, before)?)
    }

    /// Waits (at most `timeout`) until running agents have handled everything queued for them.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.inner.ums.drain(timeout).await
    }

    /// Stops accepting, lets each agent finish its current message (at most `timeout`), writes and flushes
    /// everything queued, and stops the actors. Messages still queued stay in the log for the next start.
    pub async fn shutdown(&self, timeout: Duration) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // Running tasks are interrupted and queued again (durably) to resume at the next start.
        if let Err(err) = self.inner.tasks.shutdown().await {
            tracing::warn!(error = %err, "the task manager did not stop cleanly");
        }
        self.inner.ums.stop_accepting();
        // A search in a skill would otherwise hold its agent (and so the shutdown) until the search's deadline.
        self.inner.code.close();
        if let Err(err) = self.inner.orchestrator.stop_all(timeout).await {
            tracing::warn!(error = %err, "agents did not all stop in time");
        }
        self.inner.orchestrator.shutdown();
        let orchestrator = self.inner.orchestrator_task.lock().take();
        if let Some(task) = orchestrator {
            if tokio::time::timeout(timeout, task).await.is_err() {
                tracing::warn!("the orchestrator did not stop in time");
            }
        }
        // What was queued for the memory is written (durably) before the log closes under it.
        self.inner.memory.close().await;
        self.inner.ums.log().close().await;
        tracing::info!("swarm stopped");
    }

    /// The UMS, for tests and benchmarks that drive messages below the phones.
    #[doc(hidden)]
    pub fn ums(&self) -> &Ums {
        &self.inner.ums
    }
}

/// A person as the memory names its authors: the principal's address (`user:console`, `user:<discord id>`).
pub fn who_author(who: &Principal) -> Author {
    let (frontend, user) = match who.name.parse::<u64>() {
        Ok(_) => ("discord", who.name.as_str()),
        Err(_) => ("console", who.name.as_str()),
    };
    Author::Person {
        frontend: frontend.to_string(),
        user: user.to_string(),
        name: who.name.clone(),
    }
}

fn agent_name(name: &str) -> Result<AgentName> {
    AgentName::new(name).map_err(Error::Invalid)
}

fn record_from_config(agent: &AgentConfig, desired: DesiredState) -> AgentRecord {
    AgentRecord {
        name: agent.name.clone(),
        skills: agent.skills.clone(),
        groups: agent.groups.clone(),
        subscribe: agent.subscribe.clone(),
        desired,
        origin: AgentOrigin::Config,
    }
}

/// Puts an agent in the UMS directory with its skills expanded; paused agents start paused.
fn register(ums: &Ums, skills: &SkillRegistry, record: &AgentRecord) -> Result<()> {
    let name = agent_name(&record.name)?;
    let spec = AgentSpec {
        skills: skills.expand(&record.name, &record.skills)?,
        groups: record.groups.clone(),
        subscribe: record.subscribe.clone(),
    };
    let entry = ums.register(name, spec, AgentStatus::Stopped);
    entry
        .mailbox
        .set_paused(record.desired == DesiredState::Paused);
    Ok(())
}
