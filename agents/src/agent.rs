//! The agent actor: drains its mailbox, runs skills, obeys captain orders, and acknowledges what it handled.
//!
//! Supervised by the [`crate::orchestrator`], which restarts it when it fails. Its only message is
//! [`AgentMsg::Pump`], sent by its mailbox when work is waiting. It answers nobody directly: replies travel as
//! messages through the UMS. A panic in a skill fails the actor on purpose — that is how a poisoned message
//! reaches the supervisor, which counts the attempt, requeues or dead-letters the message, and restarts it.

use std::sync::Arc;

use dreamos_runtime::{
    log::StoredMessage,
    message::{Address, Body, Channel, Envelope},
    roster::{DesiredState, Roster},
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::json;

use crate::{
    mailbox::Delivery,
    skill::{SkillContext, SkillRegistry},
    stats::AgentStatus,
    ums::{AgentEntry, Ums},
    REPLY_KIND,
};

/// Deliveries handled per pump before the actor yields, so that a stop request is seen between batches.
const PUMP_BATCH: usize = 64;

/// The handle's message.
#[derive(Debug)]
pub enum AgentMsg {
    /// Work is waiting in the mailbox.
    Pump,
}

/// Read-only configuration of one incarnation.
pub struct Agent {
    pub(crate) entry: Arc<AgentEntry>,
    pub(crate) ums: Ums,
    pub(crate) skills: Arc<SkillRegistry>,
    pub(crate) roster: Roster,
}

/// Whether the agent keeps going after a delivery.
enum Next {
    Continue,
    /// Stop, for this reason.
    Stop(&'static str),
}

impl Actor for Agent {
    type Msg = AgentMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<AgentMsg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        self.entry.mailbox.set_halted(false);
        self.entry.stats.set_status(self.resting_status());
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<AgentMsg>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let me = myself.clone();
        self.entry
            .mailbox
            .attach(Box::new(move || me.cast(AgentMsg::Pump).is_ok()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        message: AgentMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Pump => self.pump(&myself).await,
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<AgentMsg>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        self.entry.mailbox.detach();
        Ok(())
    }
}

impl Agent {
    fn resting_status(&self) -> AgentStatus {
        if self.entry.mailbox.is_paused() {
            AgentStatus::Paused
        } else {
            AgentStatus::Idle
        }
    }

    async fn pump(&self, myself: &ActorRef<AgentMsg>) -> Result<(), ActorProcessingErr> {
        let mailbox = &self.entry.mailbox;
        mailbox.pump_started();
        for _ in 0..PUMP_BATCH {
            let Some(delivery) = mailbox.pop() else {
                break;
            };
            self.entry.stats.set_status(AgentStatus::Busy);
            if let Next::Stop(reason) = self.deliver(delivery).await? {
                mailbox.set_halted(true);
                myself.stop(Some(reason.to_string()));
                return Ok(());
            }
        }
        self.entry.stats.set_status(self.resting_status());
        if mailbox.is_idle() {
            self.ums.agent_idle();
        } else {
            mailbox.wake();
        }
        Ok(())
    }

    async fn deliver(&self, delivery: Delivery) -> Result<Next, ActorProcessingErr> {
        let envelope = &delivery.message.envelope;
        let mut next = Next::Continue;
        let result: Result<Vec<StoredMessage>, String> = match (envelope.channel, &*envelope.kind) {
            // Replies to an agent need no handling beyond being recorded as received.
            (_, REPLY_KIND) => Ok(Vec::new()),
            (Channel::Captain, verb) => {
                let (text, stop) = self.obey(verb, envelope)?;
                if stop {
                    next = Next::Stop("stopped by captain order");
                }
                self.reply_to(envelope, json!({ "text": text, "verb": verb }))
                    .map(|reply| vec![reply])
            }
            (Channel::Cell, kind) => match self.skills.get(kind) {
                Some(skill) => {
                    // Skills are the code that can take the process down; the attempt is on disk before it runs.
                    if let Err(err) = self.ums.begin(&self.entry, &delivery).await {
                        self.ums.put_back(&self.entry);
                        tracing::warn!(agent = %self.entry.name, error = %err, "cannot record an attempt; stopping the agent");
                        return Ok(Next::Stop("the message log refuses writes"));
                    }
                    let mut cx = SkillContext::new(&self.entry.name, envelope, &self.ums);
                    // Captain orders never wait for a skill: they are obeyed while it runs, and `stop` ends it.
                    let ran = {
                        let run = skill.run(&mut cx);
                        tokio::pin!(run);
                        loop {
                            tokio::select! {
                                biased;
                                result = &mut run => break Some(result),
                                _ = self.entry.mailbox.order_arrived() => {
                                    if self.obey_during_skill()? {
                                        break None;
                                    }
                                }
                            }
                        }
                    };
                    let Some(ran) = ran else {
                        // Stopped mid-skill: the message was not handled; it waits for the next start.
                        self.ums.put_back(&self.entry);
                        return Ok(Next::Stop("stopped by captain order"));
                    };
                    match ran {
                        Ok(()) => Ok(cx.into_outputs()),
                        Err(err) if err.is_interrupted() => {
                            // Shutting down: leave the message unresolved, to be handled after the restart.
                            self.ums.put_back(&self.entry);
                            tracing::info!(agent = %self.entry.name, kind, "skill interrupted by shutdown");
                            return Ok(Next::Stop("interrupted by shutdown"));
                        }
                        Err(err) => Err(format!("skill `{kind}` failed: {err}")),
                    }
                }
                None => Err(format!("agent {} has no skill `{kind}`", self.entry.name)),
            },
        };
        let written = match result {
            Ok(outputs) => self.ums.handled(&self.entry, &delivery, outputs),
            Err(error) => self.ums.failed(&self.entry, delivery, error, Vec::new()),
        };
        if let Err(err) = written {
            // The message is back in the mailbox and unresolved in the store: it is delivered again after the
            // restart that a failed store calls for.
            tracing::warn!(agent = %self.entry.name, error = %err, "cannot record a verdict; stopping the agent");
            return Ok(Next::Stop("the message log refuses writes"));
        }
        Ok(next)
    }

    /// Obeys the captain orders that arrived while a skill runs, each acknowledged on its own; returns true when
    /// one of them says stop (or the log refuses the acknowledgement, which stops the agent too).
    fn obey_during_skill(&self) -> Result<bool, ActorProcessingErr> {
        while let Some(order) = self.entry.mailbox.pop_order() {
            let envelope = &order.message.envelope;
            let (outputs, stop) = if &*envelope.kind == REPLY_KIND {
                (Vec::new(), false)
            } else {
                let (text, stop) = self.obey(&envelope.kind, envelope)?;
                match self.reply_to(envelope, json!({ "text": text, "verb": &*envelope.kind })) {
                    Ok(reply) => (vec![reply], stop),
                    Err(err) => {
                        tracing::warn!(agent = %self.entry.name, error = %err, "cannot acknowledge an order with a reply");
                        (Vec::new(), stop)
                    }
                }
            };
            if let Err(err) = self.ums.order_handled(&self.entry, &order, outputs) {
                tracing::warn!(agent = %self.entry.name, error = %err, "cannot record an order's verdict; stopping the agent");
                return Ok(true);
            }
            if stop {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Carries out a captain order; returns the text of the acknowledgement and whether to stop.
    fn obey(&self, verb: &str, envelope: &Envelope) -> Result<(String, bool), ActorProcessingErr> {
        let name = &self.entry.name;
        Ok(match verb {
            "pause" => {
                self.entry.mailbox.set_paused(true);
                self.persist(DesiredState::Paused)?;
                (format!("{name} paused"), false)
            }
            "resume" => {
                self.entry.mailbox.set_paused(false);
                self.persist(DesiredState::Running)?;
                (format!("{name} resumed"), false)
            }
            "stop" => {
                self.persist(DesiredState::Stopped)?;
                (format!("{name} stopping"), true)
            }
            "report" => {
                let s = self.entry.snapshot();
                (
                    format!(
                        "{name} is {}: {} queued, {} handled, {} failed, {} restarts",
                        s.status.as_str(),
                        s.queue,
                        s.handled,
                        s.failed,
                        s.restarts
                    ),
                    false,
                )
            }
            _ => {
                let text = envelope
                    .body
                    .text_field()
                    .unwrap_or_else(|| envelope.body.as_json().to_string());
                (format!("{name} acknowledges: {text}"), false)
            }
        })
    }

    fn persist(&self, desired: DesiredState) -> Result<(), ActorProcessingErr> {
        if let Some(mut record) = self.roster.get(self.entry.name.as_str())? {
            record.desired = desired;
            self.roster.put(&record)?;
        }
        Ok(())
    }

    fn reply_to(
        &self,
        envelope: &Envelope,
        body: serde_json::Value,
    ) -> Result<StoredMessage, String> {
        let reply = Envelope::new(
            Address::agent(&self.entry.name),
            envelope.from.clone(),
            REPLY_KIND,
            Body::from_value(&body),
        )
        .with_priority(envelope.priority)
        .with_reply_to(envelope.id);
        self.ums.prepare(reply).map_err(|e| e.to_string())
    }
}
