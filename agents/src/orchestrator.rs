//! The orchestrator: supervises agent actors, starts and stops them on request, and applies the restart policy.
//!
//! ractor's default supervisor stops itself when a child dies; this one overrides `handle_supervisor_evt`:
//!
//! * A child that **fails** (a panic or an error in its handler) has its in-flight message counted as a failed
//!   attempt (requeued in front, or dead-lettered once it has failed `max_attempts` times), and is restarted after
//!   a backoff that starts at `backoff_initial` and doubles up to `backoff_max`. More than `max_restarts`
//!   failures within `restart_window` and the agent is marked failed, left down, and the captain is told.
//! * A child that **terminates** normally (stopped by the captain) is marked stopped and answers whoever asked.
//!
//! Supervised by nobody: the [`crate::Swarm`] owns it and stops it last.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use dreamos_runtime::{config::SupervisorConfig, message::AgentName, roster::Roster};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use serde_json::json;

use crate::{
    agent::{Agent, AgentMsg},
    error::{Error, Result},
    events::SwarmEvent,
    skill::SkillRegistry,
    stats::AgentStatus,
    ums::{notice, Ums},
};

/// The orchestrator's messages. Requests carry a reply port and are sent with a timeout by [`OrchestratorHandle`].
pub enum OrchestratorMsg {
    /// Start the (registered) agent if it is not running.
    Start {
        name: AgentName,
        reply: RpcReplyPort<Result<()>>,
    },
    /// Stop the agent after its current message.
    Stop {
        name: AgentName,
        reply: RpcReplyPort<Result<()>>,
    },
    /// Stop it (if running) and start it again.
    Restart {
        name: AgentName,
        reply: RpcReplyPort<Result<()>>,
    },
    /// A backoff ran out: start incarnation `incarnation` of the agent, unless something changed meanwhile.
    RestartDue { name: AgentName, incarnation: u64 },
    /// Stop every agent; answered when all have terminated.
    StopAll { reply: RpcReplyPort<()> },
}

/// The only public way to talk to the orchestrator.
#[derive(Clone)]
pub struct OrchestratorHandle {
    actor: ActorRef<OrchestratorMsg>,
}

/// Long enough for an agent to finish a batch of messages and stop.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl OrchestratorHandle {
    pub async fn spawn(
        ums: Ums,
        skills: Arc<SkillRegistry>,
        roster: Roster,
        config: SupervisorConfig,
    ) -> Result<(OrchestratorHandle, tokio::task::JoinHandle<()>)> {
        let orchestrator = Orchestrator {
            ums,
            skills,
            roster,
            config,
        };
        let (actor, join) = Actor::spawn(None, orchestrator, ())
            .await
            .map_err(|e| Error::Actor(format!("cannot start the orchestrator: {e}")))?;
        Ok((OrchestratorHandle { actor }, join))
    }

    pub async fn start(&self, name: &AgentName) -> Result<()> {
        self.request("start", |reply| OrchestratorMsg::Start {
            name: name.clone(),
            reply,
        })
        .await
    }

    pub async fn stop(&self, name: &AgentName) -> Result<()> {
        self.request("stop", |reply| OrchestratorMsg::Stop {
            name: name.clone(),
            reply,
        })
        .await
    }

    pub async fn restart(&self, name: &AgentName) -> Result<()> {
        self.request("restart", |reply| OrchestratorMsg::Restart {
            name: name.clone(),
            reply,
        })
        .await
    }

    /// Stops every agent, waiting at most `timeout` for them to finish their current message.
    pub async fn stop_all(&self, timeout: Duration) -> Result<()> {
        let answer = self
            .actor
            .call(|reply| OrchestratorMsg::StopAll { reply }, Some(timeout))
            .await
            .map_err(|e| Error::Actor(e.to_string()))?;
        match answer {
            ractor::rpc::CallResult::Success(()) => Ok(()),
            ractor::rpc::CallResult::Timeout => Err(Error::Timeout {
                what: "agents to stop".to_string(),
                millis: timeout.as_millis() as u64,
            }),
            ractor::rpc::CallResult::SenderError => Err(Error::Actor(
                "the orchestrator dropped a request".to_string(),
            )),
        }
    }

    /// Stops the orchestrator itself (after the agents).
    pub fn shutdown(&self) {
        self.actor.stop(Some("swarm shutdown".to_string()));
    }

    async fn request(
        &self,
        what: &str,
        msg: impl FnOnce(RpcReplyPort<Result<()>>) -> OrchestratorMsg,
    ) -> Result<()> {
        match self
            .actor
            .call(msg, Some(CALL_TIMEOUT))
            .await
            .map_err(|e| Error::Actor(e.to_string()))?
        {
            ractor::rpc::CallResult::Success(result) => result,
            ractor::rpc::CallResult::Timeout => Err(Error::Timeout {
                what: format!("the orchestrator to {what} an agent"),
                millis: CALL_TIMEOUT.as_millis() as u64,
            }),
            ractor::rpc::CallResult::SenderError => Err(Error::Actor(
                "the orchestrator dropped a request".to_string(),
            )),
        }
    }
}

pub struct Orchestrator {
    ums: Ums,
    skills: Arc<SkillRegistry>,
    roster: Roster,
    config: SupervisorConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping,
    BackingOff,
    Stopped,
    Failed,
}

struct Slot {
    actor: Option<ActorRef<AgentMsg>>,
    phase: Phase,
    /// Bumped on every start, so that a stale `RestartDue` is ignored.
    incarnation: u64,
    failures: VecDeque<Instant>,
    /// Who waits for the current stop to finish.
    waiting: Vec<RpcReplyPort<Result<()>>>,
    start_after_stop: bool,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            actor: None,
            phase: Phase::Stopped,
            incarnation: 0,
            failures: VecDeque::new(),
            waiting: Vec::new(),
            start_after_stop: false,
        }
    }
}

#[derive(Default)]
pub struct OrchestratorState {
    slots: HashMap<AgentName, Slot>,
    ids: HashMap<ActorId, AgentName>,
    stop_all: Vec<RpcReplyPort<()>>,
}

impl Actor for Orchestrator {
    type Msg = OrchestratorMsg;
    type State = OrchestratorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<OrchestratorMsg>,
        _args: (),
    ) -> Result<OrchestratorState, ActorProcessingErr> {
        Ok(OrchestratorState::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<OrchestratorMsg>,
        message: OrchestratorMsg,
        state: &mut OrchestratorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            OrchestratorMsg::Start { name, reply } => {
                let result = self.start(&myself, state, &name).await;
                let _ = reply.send(result);
            }
            OrchestratorMsg::Stop { name, reply } => self.stop(state, &name, reply, false),
            OrchestratorMsg::Restart { name, reply } => {
                let running = state
                    .slots
                    .get(&name)
                    .is_some_and(|s| matches!(s.phase, Phase::Running | Phase::Stopping));
                if running {
                    self.stop(state, &name, reply, true);
                } else {
                    if let Some(slot) = state.slots.get_mut(&name) {
                        slot.failures.clear();
                    }
                    let result = self.start(&myself, state, &name).await;
                    let _ = reply.send(result);
                }
            }
            OrchestratorMsg::RestartDue { name, incarnation } => {
                let due = state
                    .slots
                    .get(&name)
                    .is_some_and(|s| s.phase == Phase::BackingOff && s.incarnation == incarnation);
                if due {
                    match self.start(&myself, state, &name).await {
                        Ok(()) => {
                            if let Some(entry) = self.ums.entry(name.as_str()) {
                                let restarts = entry.stats.restarted();
                                self.ums.emit(SwarmEvent::AgentRestarted {
                                    agent: name.clone(),
                                    restarts,
                                    reason: "restarted after a failure".to_string(),
                                });
                            }
                        }
                        Err(err) => tracing::error!(agent = %name, error = %err, "restart failed"),
                    }
                }
            }
            OrchestratorMsg::StopAll { reply } => {
                let names: Vec<AgentName> = state
                    .slots
                    .iter()
                    .filter(|(_, s)| s.actor.is_some())
                    .map(|(n, _)| n.clone())
                    .collect();
                for slot in state.slots.values_mut() {
                    if slot.phase == Phase::BackingOff {
                        slot.phase = Phase::Stopped;
                    }
                }
                for name in names {
                    self.halt(state, &name);
                }
                state.stop_all.push(reply);
                self.answer_stop_all(state);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<OrchestratorMsg>,
        event: SupervisionEvent,
        state: &mut OrchestratorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(name) = self.forget(state, &cell) {
                    self.on_failure(&myself, state, name, err.to_string())
                        .await?;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(name) = self.forget(state, &cell) {
                    self.on_terminated(&myself, state, name, reason).await;
                }
            }
            _ => {}
        }
        self.answer_stop_all(state);
        Ok(())
    }
}

impl Orchestrator {
    async fn start(
        &self,
        myself: &ActorRef<OrchestratorMsg>,
        state: &mut OrchestratorState,
        name: &AgentName,
    ) -> Result<()> {
        let entry = self
            .ums
            .entry(name.as_str())
            .ok_or_else(|| Error::UnknownAgent {
                name: name.to_string(),
            })?;
        let slot = state.slots.entry(name.clone()).or_insert_with(Slot::new);
        if matches!(slot.phase, Phase::Running | Phase::Stopping) {
            return Err(Error::AgentExists {
                name: name.to_string(),
                status: entry.stats.status().as_str().to_string(),
            });
        }
        let agent = Agent {
            entry: entry.clone(),
            ums: self.ums.clone(),
            skills: self.skills.clone(),
            roster: self.roster.clone(),
        };
        let (actor, _join) = Actor::spawn_linked(None, agent, (), myself.get_cell())
            .await
            .map_err(|e| Error::Actor(format!("cannot start agent {name}: {e}")))?;
        state.ids.insert(actor.get_id(), name.clone());
        slot.actor = Some(actor);
        slot.phase = Phase::Running;
        slot.incarnation += 1;
        tracing::info!(agent = %name, "agent started");
        Ok(())
    }

    fn stop(
        &self,
        state: &mut OrchestratorState,
        name: &AgentName,
        reply: RpcReplyPort<Result<()>>,
        start_after: bool,
    ) {
        let Some(slot) = state.slots.get_mut(name) else {
            let _ = reply.send(Err(Error::UnknownAgent {
                name: name.to_string(),
            }));
            return;
        };
        match slot.phase {
            Phase::Running | Phase::Stopping => {
                slot.waiting.push(reply);
                slot.start_after_stop |= start_after;
                self.halt(state, name);
            }
            Phase::BackingOff => {
                slot.phase = Phase::Stopped;
                self.set_status(name, AgentStatus::Stopped);
                let _ = reply.send(Ok(()));
            }
            Phase::Stopped | Phase::Failed => {
                let status = if slot.phase == Phase::Failed {
                    "failed"
                } else {
                    "stopped"
                };
                let _ = reply.send(Err(Error::AgentState {
                    name: name.to_string(),
                    status: status.to_string(),
                    hint: "it is not running; use /agent spawn or /agent restart to start it",
                }));
            }
        }
    }

    /// Asks a running agent to stop after its current message.
    fn halt(&self, state: &mut OrchestratorState, name: &AgentName) {
        if let Some(slot) = state.slots.get_mut(name) {
            if let Some(actor) = &slot.actor {
                if let Some(entry) = self.ums.entry(name.as_str()) {
                    entry.mailbox.set_halted(true);
                }
                actor.stop(Some("stopped by the orchestrator".to_string()));
                slot.phase = Phase::Stopping;
            }
        }
    }

    fn forget(&self, state: &mut OrchestratorState, cell: &ActorCell) -> Option<AgentName> {
        let name = state.ids.remove(&cell.get_id())?;
        if let Some(slot) = state.slots.get_mut(&name) {
            slot.actor = None;
        }
        Some(name)
    }

    async fn on_failure(
        &self,
        myself: &ActorRef<OrchestratorMsg>,
        state: &mut OrchestratorState,
        name: AgentName,
        reason: String,
    ) -> Result<(), ActorProcessingErr> {
        let Some(entry) = self.ums.entry(name.as_str()) else {
            return Ok(());
        };
        entry.mailbox.detach();
        tracing::warn!(agent = %name, %reason, "agent failed");
        // An order obeyed during a skill is not what crashed: it goes back in front, unresolved.
        if let Some(order) = entry.mailbox.take_order_in_flight() {
            entry.mailbox.requeue(vec![order]);
        }
        let in_flight = entry.mailbox.take_in_flight();
        let Some(slot) = state.slots.get_mut(&name) else {
            if let Some(delivery) = in_flight {
                self.record_crash(&entry, delivery, &reason, Vec::new());
            }
            return Ok(());
        };
        if slot.phase == Phase::Stopping {
            // It was asked to stop and died on the way: it is stopped either way.
            if let Some(delivery) = in_flight {
                self.record_crash(&entry, delivery, &reason, Vec::new());
            }
            self.finish_stop(myself, state, &name).await;
            return Ok(());
        }
        let now = Instant::now();
        slot.failures.push_back(now);
        while slot
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.restart_window)
        {
            slot.failures.pop_front();
        }
        let failures = slot.failures.len() as u32;
        if failures > self.config.max_restarts {
            slot.phase = Phase::Failed;
            entry.stats.set_status(AgentStatus::Failed);
            tracing::error!(agent = %name, failures, "agent failed too often; not restarting it");
            let notice = notice(
                "notice.agent_failed",
                format!(
                    "{name} failed {failures} times within {}; it is down until you restart it (/agent restart {name}). Last error: {reason}",
                    humantime::format_duration(self.config.restart_window)
                ),
                json!({ "agent": name, "failures": failures, "error": reason }),
            );
            // With the verdict on the message it died on, when there is one: one commit, both or neither.
            match in_flight {
                Some(delivery) => self.record_crash(&entry, delivery, &reason, vec![notice]),
                None => self.ums.notify_captain(notice),
            }
            return Ok(());
        }
        if let Some(delivery) = in_flight {
            self.record_crash(&entry, delivery, &reason, Vec::new());
        }
        let exponent = failures.saturating_sub(1).min(16);
        let backoff = self
            .config
            .backoff_initial
            .saturating_mul(1 << exponent)
            .min(self.config.backoff_max);
        slot.phase = Phase::BackingOff;
        entry.stats.set_status(AgentStatus::Restarting);
        let incarnation = slot.incarnation;
        let target = name.clone();
        myself.send_after(backoff, move || OrchestratorMsg::RestartDue {
            name: target,
            incarnation,
        });
        Ok(())
    }

    /// Counts the attempt that crashed the agent (a retry or a dead letter), with `notices` in the same commit.
    fn record_crash(
        &self,
        entry: &crate::ums::AgentEntry,
        delivery: crate::mailbox::Delivery,
        reason: &str,
        notices: Vec<dreamos_runtime::log::StoredMessage>,
    ) {
        if let Err(err) =
            self.ums
                .failed(entry, delivery, format!("agent crashed: {reason}"), notices)
        {
            tracing::warn!(agent = %entry.name, error = %err, "cannot record a crash; the message is delivered again after a restart");
        }
    }

    async fn on_terminated(
        &self,
        myself: &ActorRef<OrchestratorMsg>,
        state: &mut OrchestratorState,
        name: AgentName,
        reason: Option<String>,
    ) {
        tracing::info!(agent = %name, reason = reason.as_deref().unwrap_or("none"), "agent stopped");
        if let Some(entry) = self.ums.entry(name.as_str()) {
            // A graceful stop happens between messages, so nothing should be in flight; if something is, it was
            // not handled and goes back in front.
            let unresolved: Vec<crate::mailbox::Delivery> = [
                entry.mailbox.take_order_in_flight(),
                entry.mailbox.take_in_flight(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !unresolved.is_empty() {
                entry.mailbox.requeue(unresolved);
            }
        }
        self.finish_stop(myself, state, &name).await;
    }

    async fn finish_stop(
        &self,
        myself: &ActorRef<OrchestratorMsg>,
        state: &mut OrchestratorState,
        name: &AgentName,
    ) {
        let (waiting, start_again) = match state.slots.get_mut(name) {
            Some(slot) => {
                slot.phase = Phase::Stopped;
                (
                    std::mem::take(&mut slot.waiting),
                    std::mem::take(&mut slot.start_after_stop),
                )
            }
            None => return,
        };
        self.set_status(name, AgentStatus::Stopped);
        let result = if start_again && state.stop_all.is_empty() {
            if let Some(slot) = state.slots.get_mut(name) {
                slot.failures.clear();
            }
            self.start(myself, state, name).await
        } else {
            Ok(())
        };
        for reply in waiting {
            let _ = reply.send(match &result {
                Ok(()) => Ok(()),
                Err(err) => Err(Error::Actor(err.to_string())),
            });
        }
    }

    fn set_status(&self, name: &AgentName, status: AgentStatus) {
        if let Some(entry) = self.ums.entry(name.as_str()) {
            entry.stats.set_status(status);
        }
    }

    fn answer_stop_all(&self, state: &mut OrchestratorState) {
        if !state.stop_all.is_empty() && state.slots.values().all(|s| s.actor.is_none()) {
            for reply in state.stop_all.drain(..) {
                let _ = reply.send(());
            }
        }
    }
}
