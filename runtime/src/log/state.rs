//! The log's in-memory index: which groups exist, which deliveries are unresolved, and history scans.
//!
//! Rebuilt from the `log` tree when the store opens (replaying every group once), then kept current by the
//! writer thread after each commit. Memory grows with unresolved deliveries and retained groups, not with the
//! size of message bodies.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use serde::Serialize;

use super::{Group, LogInner, Outcome, Record, Recovery, Redelivery, Resolution, StoredMessage};
use crate::{
    error::Result,
    message::{AgentName, Channel, Millis, Seq},
    store::{decode, TypedTree},
};

pub(super) const LOG_TREE: &str = "log";
pub(super) const DEAD_TREE: &str = "dead_letters";

/// What the index knows of one group without reading it.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupMeta {
    pub key: u64,
    pub first_seq: u64,
    pub messages: u64,
    pub at: Millis,
}

/// Per unresolved message: the recipients still owing a verdict, with their failed attempts so far.
type Pending = Vec<(AgentName, u32)>;

#[derive(Debug)]
pub(super) struct LogState {
    pub next_seq: u64,
    pub next_group: u64,
    pub groups: VecDeque<GroupMeta>,
    pub unresolved: BTreeMap<u64, Pending>,
    /// (seq, agent) of every dead letter, so history can show a recipient as dead without a lookup.
    pub dead: BTreeSet<(u64, AgentName)>,
}

impl LogState {
    /// Replays the whole log.
    pub fn recover(
        tree: &sled::Tree,
        dead_tree: &TypedTree<super::DeadLetter>,
    ) -> Result<(LogState, Recovery)> {
        let mut state = LogState {
            next_seq: 1,
            next_group: 0,
            groups: VecDeque::new(),
            unresolved: BTreeMap::new(),
            dead: BTreeSet::new(),
        };
        // Messages with unresolved recipients, kept whole until the end of the replay to build redeliveries.
        let mut bodies: HashMap<u64, Arc<StoredMessage>> = HashMap::new();
        let mut recovery = Recovery::default();
        for entry in tree.iter() {
            let (key, bytes) = entry?;
            let group: Group<Record> = decode(LOG_TREE, &bytes)?;
            let key = key_u64(&key);
            let mut messages = 0;
            for record in group.records {
                match record {
                    Record::Message(message) => {
                        let seq = message.envelope.seq.0;
                        messages += 1;
                        if !message.recipients.is_empty() {
                            state.unresolved.insert(
                                seq,
                                message.recipients.iter().map(|a| (a.clone(), 0)).collect(),
                            );
                            bodies.insert(seq, Arc::new(message));
                        }
                    }
                    Record::Handled { seq, agent } | Record::Dead { seq, agent, .. } => {
                        state.resolve(seq.0, &agent);
                    }
                    Record::Failed {
                        seq,
                        agent,
                        attempt,
                        ..
                    } => state.fail(seq.0, &agent, attempt),
                }
            }
            state.groups.push_back(GroupMeta {
                key,
                first_seq: group.first_seq,
                messages,
                at: group.at,
            });
            state.next_group = key + 1;
            state.next_seq = state.next_seq.max(group.first_seq + messages);
            recovery.groups += 1;
            recovery.messages += messages;
        }
        for entry in dead_tree.iter() {
            let (_, letter) = entry?;
            state
                .dead
                .insert((letter.message.envelope.seq.0, letter.agent));
        }
        for (seq, pending) in &state.unresolved {
            if let Some(message) = bodies.get(seq) {
                for (agent, attempts) in pending {
                    recovery.redeliveries.push(Redelivery {
                        message: message.clone(),
                        agent: agent.clone(),
                        attempts: *attempts,
                    });
                }
            }
        }
        Ok((state, recovery))
    }

    /// Records a commit the writer just made durable.
    pub fn apply(
        &mut self,
        meta: GroupMeta,
        messages: &[Arc<StoredMessage>],
        resolutions: &[Resolution],
    ) {
        for message in messages {
            if !message.recipients.is_empty() {
                self.unresolved.insert(
                    message.envelope.seq.0,
                    message.recipients.iter().map(|a| (a.clone(), 0)).collect(),
                );
            }
        }
        for resolution in resolutions {
            match &resolution.outcome {
                Outcome::Handled => self.resolve(resolution.seq.0, &resolution.agent),
                Outcome::Failed { attempt, .. } => {
                    self.fail(resolution.seq.0, &resolution.agent, *attempt)
                }
                Outcome::Dead { .. } => {
                    self.resolve(resolution.seq.0, &resolution.agent);
                    self.dead
                        .insert((resolution.seq.0, resolution.agent.clone()));
                }
            }
        }
        self.next_seq = meta.first_seq + meta.messages;
        self.next_group = meta.key + 1;
        self.groups.push_back(meta);
    }

    fn resolve(&mut self, seq: u64, agent: &AgentName) {
        if let Some(pending) = self.unresolved.get_mut(&seq) {
            pending.retain(|(a, _)| a != agent);
            if pending.is_empty() {
                self.unresolved.remove(&seq);
            }
        }
    }

    fn fail(&mut self, seq: u64, agent: &AgentName, attempt: u32) {
        if let Some(pending) = self.unresolved.get_mut(&seq) {
            for (a, attempts) in pending.iter_mut() {
                if a == agent {
                    *attempts = (*attempts).max(attempt);
                }
            }
        }
    }

    pub fn retained(&self) -> u64 {
        self.groups.iter().map(|g| g.messages).sum()
    }

    pub fn unresolved_count(&self) -> u64 {
        self.unresolved.len() as u64
    }

    /// Pops the groups retention lets go, returning their keys and how many messages they held.
    ///
    /// A group may go when it is over the count bound or older than `age_cutoff`, and every message in it is
    /// resolved. Only a prefix goes, and the newest group always stays: its `first_seq` is how the next
    /// sequence number is known after a restart.
    pub fn take_compactable(&mut self, max_messages: u64, age_cutoff: Millis) -> (Vec<u64>, u64) {
        let first_unresolved = self.unresolved.keys().next().copied().unwrap_or(u64::MAX);
        let mut retained = self.retained();
        let mut keys = Vec::new();
        let mut removed = 0;
        while self.groups.len() > 1 {
            let front = self.groups[0];
            // Retention works in whole groups, so the count bound may be undershot by less than one group.
            let over_count = retained > max_messages;
            let too_old = front.at < age_cutoff;
            let resolved = front.first_seq + front.messages <= first_unresolved;
            if !(resolved && (over_count || too_old)) {
                break;
            }
            self.groups.pop_front();
            keys.push(front.key);
            retained -= front.messages;
            removed += front.messages;
        }
        (keys, removed)
    }

    /// Each recipient's state for one message.
    fn receipts(&self, message: &StoredMessage) -> Vec<Receipt> {
        let seq = message.envelope.seq.0;
        let pending = self.unresolved.get(&seq);
        message
            .recipients
            .iter()
            .map(|agent| {
                let status = match pending.and_then(|p| p.iter().find(|(a, _)| a == agent)) {
                    Some((_, attempts)) => ReceiptStatus::Pending {
                        attempts: *attempts,
                    },
                    None if self.dead.contains(&(seq, agent.clone())) => ReceiptStatus::Dead,
                    None => ReceiptStatus::Handled,
                };
                Receipt {
                    agent: agent.clone(),
                    status,
                }
            })
            .collect()
    }
}

/// What history asks for. Every filter is optional; they combine with AND.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Messages from, to, or delivered to this agent.
    pub agent: Option<AgentName>,
    pub channel: Option<Channel>,
    pub kind: Option<String>,
    /// Accepted at or after.
    pub since: Option<Millis>,
    /// Accepted before.
    pub until: Option<Millis>,
    /// Case-insensitive substring of the body.
    pub text: Option<String>,
    /// Only messages with a sequence number below this (the previous page's `next_before`).
    pub before: Option<Seq>,
    pub limit: usize,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            agent: None,
            channel: None,
            kind: None,
            since: None,
            until: None,
            text: None,
            before: None,
            limit: 50,
        }
    }
}

/// A recipient's state for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub agent: AgentName,
    #[serde(flatten)]
    pub status: ReceiptStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReceiptStatus {
    Pending { attempts: u32 },
    Handled,
    Dead,
}

impl Receipt {
    pub fn handled(&self) -> bool {
        self.status == ReceiptStatus::Handled
    }
}

#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub message: StoredMessage,
    pub receipts: Vec<Receipt>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    /// Newest first.
    pub entries: Vec<HistoryEntry>,
    /// Pass as `before` to get the next (older) page; `None` when this is the last.
    pub next_before: Option<Seq>,
}

/// Scans groups newest first, decoding only those that can hold a match.
pub(super) fn history(inner: &LogInner, query: &HistoryQuery) -> Result<HistoryPage> {
    let before = query.before.map_or(u64::MAX, |s| s.0);
    let needle = query.text.as_ref().map(|t| t.to_lowercase());
    // The group list is copied so that the scan does not hold the lock while it reads sled.
    let candidates: Vec<GroupMeta> = {
        let state = inner.state.lock();
        state
            .groups
            .iter()
            .rev()
            .filter(|g| g.messages > 0 && g.first_seq < before)
            .copied()
            .collect()
    };
    let mut page = HistoryPage::default();
    let limit = query.limit.max(1);
    for meta in candidates {
        if query.since.is_some_and(|since| meta.at < since) {
            // Groups are in acceptance order: every older one is out of range too.
            break;
        }
        if query.until.is_some_and(|until| meta.at >= until) {
            continue;
        }
        let Some(bytes) = inner.log_tree.get(meta.key.to_be_bytes())? else {
            // Compacted away since the list was copied.
            continue;
        };
        let group: Group<Record> = decode(LOG_TREE, &bytes)?;
        for record in group.records.into_iter().rev() {
            let Record::Message(message) = record else {
                continue;
            };
            let seq = message.envelope.seq.0;
            if seq >= before || !matches(&message, query, needle.as_deref()) {
                continue;
            }
            if page.entries.len() == limit {
                page.next_before = page.entries.last().map(|e| e.message.envelope.seq);
                return Ok(page);
            }
            let receipts = inner.state.lock().receipts(&message);
            page.entries.push(HistoryEntry { message, receipts });
        }
    }
    Ok(page)
}

fn matches(message: &StoredMessage, query: &HistoryQuery, needle: Option<&str>) -> bool {
    let env = &message.envelope;
    if let Some(agent) = &query.agent {
        let involved = matches!(&env.from, crate::message::Address::Agent(a) if a == agent)
            || matches!(&env.to, crate::message::Address::Agent(a) if a == agent)
            || message.recipients.contains(agent);
        if !involved {
            return false;
        }
    }
    if query.channel.is_some_and(|c| c != env.channel) {
        return false;
    }
    if query.kind.as_deref().is_some_and(|k| k != &*env.kind) {
        return false;
    }
    if let Some(needle) = needle {
        if !env.body.as_json().to_lowercase().contains(needle) {
            return false;
        }
    }
    true
}

pub(super) fn key_u64(key: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = key.len().min(8);
    buf[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(buf)
}
