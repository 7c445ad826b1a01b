//! `dreamos-agents`: the actor system. Envelopes become deliveries, agents handle them, the orchestrator keeps
//! agents alive, and the [`Swarm`] facade is what frontends hold.
//!
//! Where to start reading:
//! - [`swarm`]: `Swarm::start` wires everything; its methods are the whole surface frontends use.
//! - [`ums`]: the UnifiedMessageSystem — validation, addressing, durable acceptance, routing, acknowledgement.
//!   The durability itself (group commit, recovery) is `dreamos_runtime::log`.
//! - [`mailbox`]: priority lanes per agent, surviving actor restarts.
//! - [`agent`] and [`orchestrator`]: the two actors; the orchestrator's restart policy is written out there.
//! - [`skill`]: the `Skill` trait and the built-in skills; [`phone`]: CellPhone and CaptainPhone.
//! - [`code`]: the scanner's code index behind async calls, shared by commands and the code skills.
//! - [`llm`]: the bridge to OpenAI-compatible model servers.
//!
//! Architecture invariant: this crate never names serenity or poise, and actors never call a frontend —
//! they emit [`events::SwarmEvent`]s.

pub mod agent;
pub mod code;
pub mod code_skills;
pub mod error;
pub mod events;
pub mod llm;
pub mod mailbox;
pub mod memory;
pub mod orchestrator;
pub mod phone;
pub mod skill;
pub mod stats;
pub mod swarm;
pub mod tasks;
pub mod ums;

pub use dreamos_runtime::message;
pub use error::{Error, Result};
pub use events::SwarmEvent;
pub use phone::{CaptainPhone, CellPhone, ControlVerb, Principal};
pub use skill::{Skill, SkillContext, SkillError, SkillRegistry};
pub use stats::{AgentSnapshot, AgentStatus};
pub use swarm::{Swarm, SwarmStatus};
pub use ums::Sent;

/// The kind of every reply. Agents take replies without a skill, so two agents never ping-pong.
pub const REPLY_KIND: &str = "reply";
