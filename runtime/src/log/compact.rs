//! Retention: the log, the dead-letter store and the audit log stay within their bounds, whatever is stuck.
//!
//! The log is compacted a prefix of whole epochs at a time (see the log's module doc), by count
//! (`retention.max_messages`) and age (`retention.max_age`); an epoch goes with its segment file. A message some
//! recipient still owes a verdict on is not a reason to stop: before its epoch goes, it is *carried* into the
//! `log_carried` tree, keyed by its sequence number, with its recipients' state (pending attempts, dead letters).
//! The carried copies are written and made durable before the epoch's file is deleted, so a crash in between leaves the message
//! in both places, and recovery prefers the carried copy. Records in later epochs still apply to a carried message;
//! when one of those epochs goes in turn, the carried copy is rewritten with the message's current state first. A
//! carried message whose recipients are all done is removed. The writer's epoch and the newest group always stay
//! (the newest group tells the next sequence number).
//!
//! The dead-letter store keeps at most `retention.dead_letters_max` entries, none older than
//! `dead_letters_max_age` (oldest first by sequence number); the audit log at most `audit_max_entries`, none
//! older than `audit_max_age` (its keys are ULIDs, so the oldest come first and the key tells the age).
//! Removals there are made durable by the next flush: if one is lost in a crash, the next compaction repeats it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{
    state::{read_group, GroupMeta},
    Carried, LogInner, Record, StoredMessage,
};
use crate::{error::Result, message::Millis};

/// What one compaction did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compacted {
    /// Epochs (segment files) dropped from the log.
    pub epochs: u64,
    /// Groups removed with them.
    pub groups: u64,
    /// Messages removed with them (not counting carried ones).
    pub messages: u64,
    /// Messages carried forward (new carries and rewrites of earlier ones).
    pub carried: u64,
    /// Carried messages removed because every recipient was done with them.
    pub released: u64,
    pub dead_letters: u64,
    pub audit: u64,
}

pub(super) fn compact(inner: &LogInner, now: Millis) -> Result<Compacted> {
    let mut done = compact_log(inner, now)?;
    done.dead_letters = compact_dead_letters(inner, now)?;
    done.audit = compact_audit(inner, now)?;
    if done != Compacted::default() {
        tracing::debug!(?done, "compacted the store");
    }
    Ok(done)
}

fn compact_log(inner: &LogInner, now: Millis) -> Result<Compacted> {
    let options = &inner.options;
    let age_cutoff = now.saturating_sub(options.retention_max_age);
    let epochs: Vec<(u64, Vec<GroupMeta>)> = inner
        .state
        .lock()
        .compactable(options.retention_max_messages, age_cutoff);
    let mut done = Compacted::default();

    // Read what the epochs hold: messages that may need carrying, and sequence numbers their resolutions touch
    // (carried messages whose state those records changed).
    let mut messages: BTreeMap<u64, StoredMessage> = BTreeMap::new();
    let mut touched: BTreeSet<u64> = BTreeSet::new();
    for meta in epochs.iter().flat_map(|(_, groups)| groups) {
        let Some(group) = read_group(inner, meta)? else {
            continue;
        };
        for record in group.records {
            match record {
                Record::Message(message) if !message.recipients.is_empty() => {
                    messages.insert(message.envelope.seq.0, message);
                }
                Record::Message(_) => {}
                Record::Handled { seq, .. }
                | Record::Dead { seq, .. }
                | Record::Failed { seq, .. }
                | Record::Started { seq, .. } => {
                    touched.insert(seq.0);
                }
            }
        }
        done.messages += meta.messages;
    }

    // Decide, under the lock, what the carried tree must say: the state now includes every durable record, and
    // replaying later records on top of it again is idempotent.
    let mut writes: Vec<(u64, Carried)> = Vec::new();
    let mut releases: Vec<u64> = Vec::new();
    {
        let state = inner.state.lock();
        for (seq, message) in messages {
            if let Some(carried) = state.carry(message) {
                writes.push((seq, carried));
            }
        }
        for seq in touched {
            if state.carried.contains(&seq) && state.unresolved.contains_key(&seq) {
                if let Some(earlier) = inner.carried.get(&seq.to_be_bytes())? {
                    if let Some(carried) = state.carry(earlier.message) {
                        writes.push((seq, carried));
                    }
                }
            }
        }
        releases.extend(
            state
                .carried
                .iter()
                .filter(|seq| !state.unresolved.contains_key(seq))
                .copied(),
        );
    }
    if !writes.is_empty() {
        for (seq, carried) in &writes {
            inner.carried.insert(&seq.to_be_bytes(), carried)?;
        }
        // Durable before the epochs holding the originals go.
        inner.store.flush()?;
    }
    for seq in &releases {
        inner.carried.remove(&seq.to_be_bytes())?;
    }

    let dropped: Vec<u64> = epochs.iter().map(|(epoch, _)| *epoch).collect();
    {
        let mut state = inner.state.lock();
        for (seq, _) in &writes {
            state.carried.insert(*seq);
        }
        for seq in &releases {
            state.carried.remove(seq);
        }
        state.forget_epochs(&dropped);
    }
    for epoch in &dropped {
        // No sync of its own: if the removal is lost in a crash, recovery reads the epoch again, prefers the
        // carried copies, and finds every other message in it resolved, so nothing is delivered twice.
        inner.segments.remove(*epoch)?;
    }
    done.groups = epochs.iter().map(|(_, g)| g.len() as u64).sum();
    done.epochs = dropped.len() as u64;
    done.carried = writes.len() as u64;
    done.released = releases.len() as u64;
    Ok(done)
}

fn compact_dead_letters(inner: &LogInner, now: Millis) -> Result<u64> {
    let options = &inner.options;
    let cutoff = now.saturating_sub(options.dead_letters_max_age);
    let mut removed = 0;
    // Over the count bound: everything before the newest `max` entries.
    let keep_from = inner
        .dead
        .keys()
        .rev()
        .nth(options.dead_letters_max.saturating_sub(1) as usize)
        .transpose()?;
    if let Some(first_kept) = keep_from {
        for key in inner.dead.keys() {
            let key = key?;
            if key >= first_kept {
                break;
            }
            inner.dead.remove(&key)?;
            removed += 1;
        }
    }
    // Too old: from the oldest, until one is young enough.
    for entry in inner.dead.iter() {
        let (key, letter) = entry?;
        if letter.at >= cutoff {
            break;
        }
        inner.dead.remove(&key)?;
        removed += 1;
    }
    Ok(removed)
}

fn compact_audit(inner: &LogInner, now: Millis) -> Result<u64> {
    let options = &inner.options;
    let cutoff = now.saturating_sub(options.audit_max_age);
    let tree = &inner.audit;
    let mut removed = 0;
    let keep_from = tree
        .iter()
        .keys()
        .rev()
        .nth(options.audit_max_entries.saturating_sub(1) as usize)
        .transpose()?;
    if let Some(first_kept) = keep_from {
        let mut batch = sled::Batch::default();
        for key in tree.range(..first_kept).keys() {
            batch.remove(key?);
            removed += 1;
        }
        tree.apply_batch(batch)?;
    }
    // The first 48 bits of a ULID are its milliseconds since the epoch.
    let mut batch = sled::Batch::default();
    for key in tree.iter().keys() {
        let key = key?;
        let millis = match <[u8; 16]>::try_from(key.as_ref()) {
            Ok(bytes) => (u128::from_be_bytes(bytes) >> 80) as u64,
            Err(_) => 0,
        };
        if millis >= cutoff.0 {
            break;
        }
        batch.remove(key);
        removed += 1;
    }
    tree.apply_batch(batch)?;
    Ok(removed)
}
