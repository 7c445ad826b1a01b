//! Phones: the handles people and agents send with.
//!
//! A [`CellPhone`] is for conversation: send to an agent or a group, reply. A [`CaptainPhone`] is for command:
//! broadcasts and control verbs on the Captain channel at urgent priority. It can only be obtained by a
//! [`Principal`] holding the captain role (see [`crate::Swarm::captain_phone`]), so holding one *is* the
//! capability; code that has no CaptainPhone cannot give orders.

use dreamos_runtime::{
    config::Role,
    message::{Address, Body, Channel, Envelope, Priority},
};

use crate::{
    error::{Error, Result},
    stats::AgentStatus,
    ums::{Sent, Ums},
};

/// A person acting through a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// As it appears in addresses (`user:NAME`): `console`, or a Discord user id.
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn new(name: &str, role: Role) -> Principal {
        Principal {
            name: name.to_string(),
            role,
        }
    }

    pub fn address(&self) -> Address {
        Address::user(&self.name)
    }

    /// Refuses with [`Error::Forbidden`] unless this principal is an operator or captain.
    pub fn require_operator(&self, action: &str) -> Result<()> {
        self.require(Role::Operator, action)
    }

    /// Refuses with [`Error::Forbidden`] unless this principal is captain.
    pub fn require_captain(&self, action: &str) -> Result<()> {
        self.require(Role::Captain, action)
    }

    /// Roles are ordered viewer < operator < captain; each may do what those below it may.
    fn require(&self, needed: Role, action: &str) -> Result<()> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Error::Forbidden {
                action: action.to_string(),
                needed: needed.as_str(),
                role: self.role.to_string(),
            })
        }
    }
}

/// Sends on the Cell channel as its owner.
#[derive(Clone)]
pub struct CellPhone {
    ums: Ums,
    owner: Address,
}

impl CellPhone {
    pub(crate) fn new(ums: Ums, owner: Address) -> CellPhone {
        CellPhone { ums, owner }
    }

    pub fn owner(&self) -> &Address {
        &self.owner
    }

    /// Sends a message to an agent, a group or everyone; returns once it is accepted (durable).
    pub async fn send(
        &self,
        to: Address,
        kind: &str,
        body: Body,
        priority: Priority,
    ) -> Result<Sent> {
        let envelope = Envelope::new(self.owner.clone(), to, kind, body).with_priority(priority);
        self.ums.send(envelope).await
    }

    /// Sends an envelope the caller built (so that it knows the id before the message is accepted); it goes out
    /// as the phone's owner, on the Cell channel, whatever the envelope said.
    pub async fn send_envelope(&self, mut envelope: Envelope) -> Result<Sent> {
        envelope.from = self.owner.clone();
        envelope.channel = dreamos_runtime::message::Channel::Cell;
        self.ums.send(envelope).await
    }

    /// Sends `body` as `kind` to agent `to` and waits up to `timeout` for its reply; `None` when none came in
    /// time. With `record` (a call store and the key of this request), the wait survives a restart: the message
    /// is recorded there (and synced) once it is accepted, and a request under a key already recorded sends
    /// nothing but waits for that message's reply, looking first in the owner's history for one that came
    /// meanwhile. The owner must be an agent (replies to people go to frontends).
    pub async fn request(
        &self,
        to: &dreamos_runtime::message::AgentName,
        kind: &str,
        body: Body,
        timeout: std::time::Duration,
        record: Option<(
            &dreamos_runtime::calls::CallStore,
            &dreamos_runtime::calls::CallKey,
        )>,
    ) -> Result<Option<std::sync::Arc<dreamos_runtime::log::StoredMessage>>> {
        use dreamos_runtime::message::{MessageId, Millis};
        let Address::Agent(me) = &self.owner else {
            return Err(crate::Error::Invalid(
                "only an agent's phone awaits replies".to_string(),
            ));
        };
        let earlier = match record {
            Some((calls, key)) => calls.get(key)?.and_then(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.json).ok()?;
                let id = ulid::Ulid::from_string(v["id"].as_str()?).ok()?;
                Some((MessageId(id), Millis(v["at"].as_u64()?)))
            }),
            None => None,
        };
        if let Some((id, at)) = earlier {
            // Waiting from before the history is read, so that a reply cannot fall between the two.
            let waiter = self.ums.expect_reply(id)?;
            if let Some(reply) = self.ums.reply_in_history(me, id, at, 1_000)? {
                return Ok(Some(std::sync::Arc::new(reply)));
            }
            return Ok(waiter.wait(timeout).await);
        }
        let envelope = Envelope::new(self.owner.clone(), Address::agent(to), kind, body);
        let id = envelope.id;
        let waiter = self.ums.expect_reply(id)?;
        let at = Millis::now();
        self.ums.send(envelope).await?;
        if let Some((calls, key)) = record {
            calls.put(
                key,
                "sent",
                serde_json::json!({"id": id.0.to_string(), "at": at.0}).to_string(),
            )?;
            self.ums.log().sync().await?;
        }
        Ok(waiter.wait(timeout).await)
    }

    /// Replies to a message, to its sender.
    pub async fn reply(&self, to: &Envelope, body: Body) -> Result<Sent> {
        let envelope = Envelope::new(self.owner.clone(), to.from.clone(), crate::REPLY_KIND, body)
            .with_priority(to.priority)
            .with_reply_to(to.id);
        self.ums.send(envelope).await
    }
}

/// A control verb every agent obeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlVerb {
    /// Take no more cell messages until resumed (captain orders still arrive).
    Pause,
    Resume,
    /// Stop after the current message.
    Stop,
    /// Reply with status and counters.
    Report,
}

impl ControlVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlVerb::Pause => "pause",
            ControlVerb::Resume => "resume",
            ControlVerb::Stop => "stop",
            ControlVerb::Report => "report",
        }
    }
}

impl std::str::FromStr for ControlVerb {
    type Err = String;
    fn from_str(s: &str) -> Result<ControlVerb, String> {
        match s {
            "pause" => Ok(ControlVerb::Pause),
            "resume" => Ok(ControlVerb::Resume),
            "stop" => Ok(ControlVerb::Stop),
            "report" => Ok(ControlVerb::Report),
            other => Err(format!(
                "unknown control verb `{other}`: use pause, resume, stop or report"
            )),
        }
    }
}

/// Sends orders on the Captain channel. Only a captain can hold one.
#[derive(Clone)]
pub struct CaptainPhone {
    ums: Ums,
    owner: Address,
    /// `pause` and `resume` to everyone also hold and release the scheduling of tasks.
    tasks: crate::tasks::TaskManager,
}

impl CaptainPhone {
    pub(crate) fn new(ums: Ums, owner: Address, tasks: crate::tasks::TaskManager) -> CaptainPhone {
        CaptainPhone { ums, owner, tasks }
    }

    /// Broadcasts an order to a group or to every live agent. Urgent unless told otherwise.
    pub async fn broadcast(&self, to: Address, text: &str, priority: Priority) -> Result<Sent> {
        if !matches!(to, Address::All | Address::Group(_)) {
            return Err(Error::Invalid(format!(
                "a broadcast goes to `all` or to a group, not to {to}"
            )));
        }
        let sent = self.order(to, "order", Body::text(text), priority).await?;
        if let Some(memory) = self.ums.memory() {
            memory.broadcast_sent(crate::memory::journal::Broadcast {
                id: sent.id,
                by: self.owner.to_string(),
                to: sent.to.clone(),
                text: text.to_string(),
                recipients: sent.recipients.iter().map(|a| a.to_string()).collect(),
            });
        }
        Ok(sent)
    }

    /// Sends a control verb to one agent, a group or everyone, at urgent priority. `pause` and `resume` to
    /// everyone also stop and let again the scheduling of new tasks (running ones go on).
    pub async fn control(&self, to: Address, verb: ControlVerb) -> Result<Sent> {
        let everyone = matches!(to, Address::All);
        let sent = self
            .order(
                to,
                verb.as_str(),
                Body::from_value(&serde_json::json!({ "verb": verb.as_str() })),
                Priority::Urgent,
            )
            .await?;
        let tasks_err =
            |e: crate::tasks::ManagerError| Error::Actor(format!("the task manager: {e}"));
        if everyone && matches!(verb, ControlVerb::Pause | ControlVerb::Resume) {
            self.tasks
                .pause_all(verb == ControlVerb::Pause)
                .await
                .map_err(tasks_err)?;
        }
        // Each agent the order reaches takes no new tasks while it is paused or stopping, and takes them again
        // when it resumes (unless it is stopped or failed, whose order waits in its queue).
        if let (Some(memory), ControlVerb::Pause | ControlVerb::Resume) = (self.ums.memory(), verb)
        {
            let what = if verb == ControlVerb::Pause {
                "paused"
            } else {
                "resumed"
            };
            for agent in &sent.recipients {
                memory.agent_changed(agent.as_str(), what, &self.owner.to_string());
            }
        }
        for agent in &sent.recipients {
            let skills = match verb {
                ControlVerb::Pause | ControlVerb::Stop => None,
                ControlVerb::Resume => match self.ums.entry(agent.as_str()) {
                    Some(entry)
                        if !matches!(
                            entry.stats.status(),
                            AgentStatus::Stopped | AgentStatus::Failed
                        ) =>
                    {
                        Some(entry.spec.read().skills.clone())
                    }
                    _ => continue,
                },
                ControlVerb::Report => continue,
            };
            self.tasks
                .set_agent(agent.as_str(), skills)
                .await
                .map_err(tasks_err)?;
        }
        Ok(sent)
    }

    async fn order(&self, to: Address, kind: &str, body: Body, priority: Priority) -> Result<Sent> {
        let envelope = Envelope::new(self.owner.clone(), to, kind, body)
            .with_channel(Channel::Captain)
            .with_priority(priority);
        self.ums.send(envelope).await
    }
}
