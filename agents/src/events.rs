//! What happens on its own, for frontends to show: messages to people, restarts, failures, progress.
//!
//! Actors never call a frontend; they emit [`SwarmEvent`]s on a broadcast channel that frontends subscribe to
//! with [`crate::Swarm::subscribe`].

use std::sync::Arc;

use dreamos_runtime::{
    log::StoredMessage,
    message::{AgentName, MessageId},
};

#[derive(Debug, Clone)]
pub enum SwarmEvent {
    /// A message to a person became durable: an agent's reply, or a notice from the swarm to the captain
    /// (a dead letter, an agent given up on). Notices are messages, so they are in history too.
    Message(Arc<StoredMessage>),
    /// A skill reported progress on the message it is handling.
    Progress {
        agent: AgentName,
        message: MessageId,
        percent: Option<u8>,
        note: String,
    },
    /// The supervisor restarted a crashed agent.
    AgentRestarted {
        agent: AgentName,
        restarts: u32,
        reason: String,
    },
}

impl SwarmEvent {
    /// The event's name in `{"event": ...}` lines.
    pub fn name(&self) -> &'static str {
        match self {
            SwarmEvent::Message(message) => {
                if message.envelope.reply_to.is_some() {
                    "reply"
                } else {
                    "notice"
                }
            }
            SwarmEvent::Progress { .. } => "progress",
            SwarmEvent::AgentRestarted { .. } => "agent_restarted",
        }
    }
}
