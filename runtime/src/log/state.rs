//! The log's in-memory index: which groups exist, which deliveries are unresolved, and history scans.
//!
//! Rebuilt from the `log_carried` tree and the segment files when the log opens (replaying every group once), then kept
//! current by the writer thread after each commit and by compaction. Memory grows with unresolved deliveries and
//! retained groups, not with the size of message bodies.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use serde::Serialize;

use super::{
    segment::{Frame, Location},
    Carried, Group, LogInner, Outcome, Record, Recovery, Redelivery, Resolution, StoredMessage,
};
use crate::{
    error::Result,
    message::{AgentName, Channel, Millis, Seq},
    store::{decode, TypedTree},
};

pub(super) const LOG_TREE: &str = "log";
pub(super) const CARRIED_TREE: &str = "log_carried";
pub(super) const DEAD_TREE: &str = "dead_letters";

/// The epoch a sled tree's name stands for, if it is an epoch's tree of an earlier version's log: `log` for the
/// first, then `log.` and the epoch's number in 16 digits.
pub(super) fn epoch_of(name: &str) -> Option<u64> {
    if name == LOG_TREE {
        return Some(0);
    }
    let digits = name.strip_prefix("log.")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What the index knows of one group without reading it.
#[derive(Debug, Clone, Copy)]
pub(super) struct GroupMeta {
    pub key: u64,
    /// The epoch (segment file) holding it, and where in the file.
    pub epoch: u64,
    pub location: Location,
    pub first_seq: u64,
    pub messages: u64,
    pub at: Millis,
}

/// Per unresolved message: the recipients still owing a verdict, with their attempts so far.
pub(super) type Pending = Vec<(AgentName, u32)>;

#[derive(Debug)]
pub(super) struct LogState {
    pub next_seq: u64,
    pub next_group: u64,
    pub groups: VecDeque<GroupMeta>,
    pub unresolved: BTreeMap<u64, Pending>,
    /// (seq, agent) of every dead letter of a retained message, so history can show a recipient as dead.
    pub dead: BTreeSet<(u64, AgentName)>,
    /// Sequence numbers of the messages in `log_carried`: they outlived their group.
    pub carried: BTreeSet<u64>,
    /// The epoch the writer writes to, how many messages it holds so far, and when its first group was written.
    pub epoch: u64,
    pub epoch_messages: u64,
    pub epoch_started: Millis,
}

/// Rebuilds the index while the log opens: the carried messages first, then every group in order.
pub(super) struct Replay {
    state: LogState,
    /// Messages with unresolved recipients, kept whole until the end of the replay to build redeliveries.
    bodies: HashMap<u64, Arc<StoredMessage>>,
    recovery: Recovery,
}

impl Replay {
    pub fn new(carried_tree: &TypedTree<Carried>) -> Result<Replay> {
        let mut replay = Replay {
            state: LogState {
                next_seq: 1,
                next_group: 0,
                groups: VecDeque::new(),
                unresolved: BTreeMap::new(),
                dead: BTreeSet::new(),
                carried: BTreeSet::new(),
                epoch: 0,
                epoch_messages: 0,
                epoch_started: Millis(0),
            },
            bodies: HashMap::new(),
            recovery: Recovery::default(),
        };
        let state = &mut replay.state;
        for entry in carried_tree.iter() {
            let (_, carried) = entry?;
            let seq = carried.message.envelope.seq.0;
            state.carried.insert(seq);
            for agent in carried.dead {
                state.dead.insert((seq, agent));
            }
            if !carried.pending.is_empty() {
                state.unresolved.insert(seq, carried.pending);
                replay.bodies.insert(seq, Arc::new(carried.message));
            }
            replay.recovery.messages += 1;
        }
        Ok(replay)
    }

    /// Applies one group, in log order.
    pub fn group(&mut self, frame: Frame<'_>) -> Result<()> {
        let group: Group<Record> = decode(LOG_TREE, frame.payload)?;
        let state = &mut self.state;
        let mut messages = 0;
        for record in group.records {
            match record {
                Record::Message(message) => {
                    let seq = message.envelope.seq.0;
                    messages += 1;
                    // A carried copy is newer: this group's removal was not yet durable when the process died.
                    if !message.recipients.is_empty() && !state.carried.contains(&seq) {
                        state.unresolved.insert(
                            seq,
                            message.recipients.iter().map(|a| (a.clone(), 0)).collect(),
                        );
                        self.bodies.insert(seq, Arc::new(message));
                    }
                }
                Record::Handled { seq, agent } => state.resolve(seq.0, &agent),
                Record::Dead { seq, agent, .. } => {
                    state.resolve(seq.0, &agent);
                    state.dead.insert((seq.0, agent));
                }
                Record::Failed {
                    seq,
                    agent,
                    attempt,
                    ..
                }
                | Record::Started {
                    seq,
                    agent,
                    attempt,
                } => state.attempted(seq.0, &agent, attempt),
            }
        }
        state.groups.push_back(GroupMeta {
            key: frame.key,
            epoch: frame.epoch,
            location: frame.location,
            first_seq: group.first_seq,
            messages,
            at: group.at,
        });
        if frame.epoch != state.epoch {
            state.epoch = frame.epoch;
            state.epoch_messages = 0;
            state.epoch_started = Millis(0);
        }
        if state.epoch_messages == 0 && state.epoch_started == Millis(0) {
            state.epoch_started = group.at;
        }
        state.epoch_messages += messages;
        state.next_group = frame.key + 1;
        state.next_seq = state.next_seq.max(group.first_seq + messages);
        self.recovery.groups += 1;
        self.recovery.messages += messages;
        Ok(())
    }

    pub fn finish(self) -> (LogState, Recovery) {
        let Replay {
            state,
            bodies,
            mut recovery,
        } = self;
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
        (state, recovery)
    }
}

impl LogState {
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
            let (seq, agent) = (resolution.seq.0, &resolution.agent);
            match &resolution.outcome {
                Outcome::Handled => self.resolve(seq, agent),
                Outcome::Started { attempt } | Outcome::Failed { attempt, .. } => {
                    self.attempted(seq, agent, *attempt)
                }
                Outcome::Dead { .. } => {
                    self.resolve(seq, agent);
                    self.dead.insert((seq, agent.clone()));
                }
            }
        }
        self.next_seq = meta.first_seq + meta.messages;
        self.next_group = meta.key + 1;
        if meta.epoch == self.epoch && self.epoch_started != Millis(0) {
            self.epoch_messages += meta.messages;
        } else {
            self.epoch = meta.epoch;
            self.epoch_messages = meta.messages;
            self.epoch_started = meta.at;
        }
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

    /// Attempt `attempt` at `seq` by `agent` began or failed: the count only grows, so replaying is idempotent.
    fn attempted(&mut self, seq: u64, agent: &AgentName, attempt: u32) {
        if let Some(pending) = self.unresolved.get_mut(&seq) {
            for (a, attempts) in pending.iter_mut() {
                if a == agent {
                    *attempts = (*attempts).max(attempt);
                }
            }
        }
    }

    /// Messages in retained groups, plus carried ones.
    pub fn retained(&self) -> u64 {
        self.groups.iter().map(|g| g.messages).sum::<u64>() + self.carried.len() as u64
    }

    pub fn unresolved_count(&self) -> u64 {
        self.unresolved.len() as u64
    }

    /// The epochs retention lets go, oldest first, each with its groups: a prefix of whole epochs over the count
    /// bound or entirely older than `age_cutoff`. The writer's epoch always stays (its newest group's
    /// `first_seq` is how the next sequence number is known after a restart). Unresolved messages do not stop it:
    /// compaction carries them forward.
    pub fn compactable(&self, max_messages: u64, age_cutoff: Millis) -> Vec<(u64, Vec<GroupMeta>)> {
        let mut by_epoch: Vec<(u64, Vec<GroupMeta>)> = Vec::new();
        for group in &self.groups {
            match by_epoch.last_mut() {
                Some((epoch, groups)) if *epoch == group.epoch => groups.push(*group),
                _ => by_epoch.push((group.epoch, vec![*group])),
            }
        }
        let mut retained: u64 = self.groups.iter().map(|g| g.messages).sum();
        let newest = self.groups.back().map(|g| g.epoch);
        let mut out = Vec::new();
        for (epoch, groups) in by_epoch {
            if epoch == self.epoch || Some(epoch) == newest {
                break;
            }
            // Retention works in whole epochs, so the count bound may be undershot by up to one epoch.
            let over_count = retained > max_messages;
            let too_old = groups.iter().all(|g| g.at < age_cutoff);
            if !(over_count || too_old) {
                break;
            }
            retained -= groups.iter().map(|g| g.messages).sum::<u64>();
            out.push((epoch, groups));
        }
        out
    }

    /// What a carried copy of `message` must say now, or `None` when every recipient is done with it.
    pub fn carry(&self, message: StoredMessage) -> Option<Carried> {
        let seq = message.envelope.seq.0;
        let pending = self.unresolved.get(&seq)?.clone();
        let dead = self
            .dead
            .range((seq, agent_min())..)
            .take_while(|(s, _)| *s == seq)
            .map(|(_, a)| a.clone())
            .collect();
        Some(Carried {
            message,
            pending,
            dead,
        })
    }

    /// Forgets the groups of epochs that compaction dropped (they are the front of `groups`), and dead-letter
    /// marks of messages no longer retained anywhere.
    pub fn forget_epochs(&mut self, epochs: &[u64]) {
        while self
            .groups
            .front()
            .is_some_and(|g| epochs.contains(&g.epoch))
        {
            self.groups.pop_front();
        }
        let first_retained = self.groups.front().map_or(self.next_seq, |g| g.first_seq);
        let carried = &self.carried;
        self.dead
            .retain(|(seq, _)| *seq >= first_retained || carried.contains(seq));
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

/// The smallest agent name, for range scans of `(seq, agent)` sets.
fn agent_min() -> AgentName {
    AgentName::min()
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

/// Scans groups newest first, decoding only those that can hold a match, and merges in carried messages by
/// sequence number (they are older than every group).
pub(super) fn history(inner: &LogInner, query: &HistoryQuery) -> Result<HistoryPage> {
    let before = query.before.map_or(u64::MAX, |s| s.0);
    let needle = query.text.as_ref().map(|t| t.to_lowercase());
    // The group list is copied so that the scan does not hold the lock while it reads sled.
    let (candidates, carried): (Vec<GroupMeta>, Vec<u64>) = {
        let state = inner.state.lock();
        (
            state
                .groups
                .iter()
                .rev()
                .filter(|g| g.messages > 0 && g.first_seq < before)
                .copied()
                .collect(),
            state.carried.range(..before).rev().copied().collect(),
        )
    };
    let mut page = Page {
        inner,
        query,
        needle: needle.as_deref(),
        limit: query.limit.max(1),
        out: HistoryPage::default(),
    };
    for meta in candidates {
        if query.since.is_some_and(|since| meta.at < since) {
            // Groups are in acceptance order: every older one is out of range too.
            break;
        }
        if query.until.is_some_and(|until| meta.at >= until) {
            continue;
        }
        let Some(group) = read_group(inner, &meta)? else {
            continue;
        };
        for record in group.records.into_iter().rev() {
            let Record::Message(message) = record else {
                continue;
            };
            if message.envelope.seq.0 >= before || page.offer(message) {
                continue;
            }
            return Ok(page.out);
        }
    }
    for seq in carried {
        let Some(entry) = inner.carried.get(&seq.to_be_bytes())? else {
            continue;
        };
        let message = entry.message;
        let at = message.envelope.accepted_at;
        let in_range = query.since.is_none_or(|s| at >= s) && query.until.is_none_or(|u| at < u);
        if in_range && !page.offer(message) {
            return Ok(page.out);
        }
    }
    Ok(page.out)
}

/// Messages with a sequence number above `after`, oldest first, from the groups (carried messages are to
/// agents, which no consumer of this kind follows).
pub(super) fn read_after(inner: &LogInner, after: u64, limit: usize) -> Result<Vec<StoredMessage>> {
    let candidates: Vec<GroupMeta> = {
        let state = inner.state.lock();
        state
            .groups
            .iter()
            .filter(|g| g.messages > 0 && g.first_seq + g.messages > after + 1)
            .copied()
            .collect()
    };
    let mut out = Vec::new();
    for meta in candidates {
        let Some(group) = read_group(inner, &meta)? else {
            continue;
        };
        for record in group.records {
            if let Record::Message(message) = record {
                if message.envelope.seq.0 > after {
                    out.push(message);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The group `meta` names, or `None` when compaction removed it since its metadata was copied.
pub(super) fn read_group(inner: &LogInner, meta: &GroupMeta) -> Result<Option<Group<Record>>> {
    match inner.segments.read(meta.epoch, meta.location)? {
        Some(bytes) => Ok(Some(decode(LOG_TREE, &bytes)?)),
        None => Ok(None),
    }
}

/// A history page being filled.
struct Page<'a> {
    inner: &'a LogInner,
    query: &'a HistoryQuery,
    needle: Option<&'a str>,
    limit: usize,
    out: HistoryPage,
}

impl Page<'_> {
    /// Adds `message` if it matches; returns false once the page is full (and says where the next one starts).
    fn offer(&mut self, message: StoredMessage) -> bool {
        if !matches(&message, self.query, self.needle) {
            return true;
        }
        if self.out.entries.len() == self.limit {
            self.out.next_before = self.out.entries.last().map(|e| e.message.envelope.seq);
            return false;
        }
        let receipts = self.inner.state.lock().receipts(&message);
        self.out.entries.push(HistoryEntry { message, receipts });
        true
    }
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
