//! An agent's status and counters, shared between its actor, the supervisor and `/status`; they outlive restarts.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use dreamos_runtime::message::Millis;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    Idle,
    Busy,
    Paused,
    Stopped,
    Failed,
    /// Crashed; the supervisor will start it again after a backoff.
    Restarting,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Idle => "idle",
            AgentStatus::Busy => "busy",
            AgentStatus::Paused => "paused",
            AgentStatus::Stopped => "stopped",
            AgentStatus::Failed => "failed",
            AgentStatus::Restarting => "restarting",
        }
    }

    /// Running in the sense of "takes broadcasts": idle, busy, paused or about to restart.
    pub fn is_live(self) -> bool {
        !matches!(self, AgentStatus::Stopped | AgentStatus::Failed)
    }

    fn from_u8(value: u8) -> AgentStatus {
        match value {
            0 => AgentStatus::Idle,
            1 => AgentStatus::Busy,
            2 => AgentStatus::Paused,
            3 => AgentStatus::Stopped,
            4 => AgentStatus::Failed,
            _ => AgentStatus::Restarting,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AgentStatus::Idle => 0,
            AgentStatus::Busy => 1,
            AgentStatus::Paused => 2,
            AgentStatus::Stopped => 3,
            AgentStatus::Failed => 4,
            AgentStatus::Restarting => 5,
        }
    }
}

#[derive(Debug)]
pub struct AgentStats {
    status: AtomicU8,
    handled: AtomicU64,
    failed: AtomicU64,
    restarts: AtomicU32,
    last_seen: AtomicU64,
}

impl AgentStats {
    pub fn new(status: AgentStatus) -> AgentStats {
        AgentStats {
            status: AtomicU8::new(status.to_u8()),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            restarts: AtomicU32::new(0),
            last_seen: AtomicU64::new(0),
        }
    }

    pub fn status(&self) -> AgentStatus {
        AgentStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    pub fn set_status(&self, status: AgentStatus) {
        self.status.store(status.to_u8(), Ordering::Release);
    }

    pub fn seen(&self) {
        self.last_seen.store(Millis::now().0, Ordering::Relaxed);
    }

    pub fn handled_one(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.seen();
    }

    pub fn failed_one(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.seen();
    }

    pub fn restarted(&self) -> u32 {
        self.restarts.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub fn last_seen(&self) -> Option<Millis> {
        match self.last_seen.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Millis(ms)),
        }
    }
}

/// A point-in-time view of one agent, for `/status` and `/agents`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSnapshot {
    pub name: String,
    pub status: AgentStatus,
    pub skills: Vec<String>,
    pub groups: Vec<String>,
    pub subscribe: Vec<String>,
    pub queue: usize,
    pub handled: u64,
    pub failed: u64,
    pub restarts: u32,
    /// RFC 3339, or null when the agent has done nothing yet.
    pub last_seen: Option<String>,
}
