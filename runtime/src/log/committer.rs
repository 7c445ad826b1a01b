//! The writer thread: group commit.
//!
//! It blocks for the first submission, then takes whatever else is already queued (up to `max_batch` records),
//! writes it all as one group, flushes once, and only then answers the senders. Under light load a group is one
//! message and the answer comes a flush later; under heavy load groups grow and the flush cost is shared, which is
//! what lets sled accept hundreds of thousands of messages a second. It runs on its own OS thread because sled's
//! flush blocks.
//!
//! What follows a flush — routing the messages ([`CommitSink`]) and answering senders and barriers — is handed to
//! the *completer*, a task on the async runtime, as one [`Completion`] per group. Two reasons: the writer can start
//! the next group while the previous one is being delivered, and waking hundreds of waiting tasks from inside the
//! runtime is a push onto a worker's local queue, where waking them from this thread costs a cross-thread wake-up
//! each (the profile showed those futex calls among the top costs).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{
    state::GroupMeta, Accepted, CommitSink, Committed, DeadLetter, Group, LogInner, Outcome,
    RecordRef, Resolution, StoredMessage, Submission,
};
use crate::message::{Millis, Seq};

/// A sender waiting for its messages to be durable: where they start in the group, how many, and the reply.
/// Messages of different submissions (appends and handlers' outputs) interleave in a group, so each waiter
/// remembers its own range.
type Waiter = (std::ops::Range<usize>, Reply);

/// Where a sender waits for its acceptance.
type Reply = oneshot::Sender<Result<Vec<Accepted>, String>>;

/// What the completer does after a flush, in the order the writer sent it.
pub(super) enum Completion {
    /// A group is durable: route it, then answer its senders.
    Committed {
        committed: Committed,
        answers: Vec<(Vec<Accepted>, Reply)>,
    },
    /// Answer once everything before is done.
    Barrier(oneshot::Sender<()>),
}

/// The completer: routes committed groups and answers their senders, in order.
pub(super) async fn complete(
    mut completions: mpsc::UnboundedReceiver<Completion>,
    sink: Arc<dyn CommitSink>,
) {
    while let Some(completion) = completions.recv().await {
        match completion {
            Completion::Committed { committed, answers } => {
                // Route before answering: when a sender learns its message is accepted, the message is already
                // in its recipients' mailboxes.
                sink.committed(&committed);
                for (accepted, done) in answers {
                    let _ = done.send(Ok(accepted));
                }
            }
            Completion::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

pub(super) fn run(
    inner: Arc<LogInner>,
    mut rx: mpsc::Receiver<Submission>,
    completer: mpsc::UnboundedSender<Completion>,
) {
    let max_batch = inner.options.max_batch;
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut records = first.records();
        let mut batch = vec![first];
        while records < max_batch {
            match rx.try_recv() {
                Ok(next) => {
                    records += next.records();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let mut messages = Vec::with_capacity(records);
        let mut resolutions = Vec::new();
        let mut waiters: Vec<Waiter> = Vec::new();
        let mut barriers = Vec::new();
        let mut flush = false;
        for submission in batch {
            match submission {
                Submission::Append { messages: m, done } => {
                    waiters.push((messages.len()..messages.len() + m.len(), done));
                    messages.extend(m);
                }
                Submission::Resolve {
                    resolution,
                    outputs,
                } => {
                    resolutions.push(resolution);
                    messages.extend(outputs);
                }
                Submission::Flush => flush = true,
                Submission::Barrier { done } => barriers.push(done),
                Submission::Close { done } => {
                    // Everything queued before the close is in this batch and gets written. What is still
                    // queued when the loop ends is dropped unanswered: its senders get `Error::Closed`, and
                    // dropped resolutions are simply redelivered after the restart.
                    closing = Some(done);
                }
            }
        }
        if !messages.is_empty() || !resolutions.is_empty() {
            commit(&inner, &completer, messages, resolutions, waiters);
        } else if flush {
            if let Err(err) = inner.store.flush() {
                tracing::error!(error = %err, "flushing the store failed");
            }
        }
        for done in barriers {
            let _ = completer.send(Completion::Barrier(done));
        }
    }
    if let Err(err) = inner.store.flush() {
        tracing::error!(error = %err, "final flush of the message log failed");
    }
    if let Some(done) = closing {
        // Answered by the completer, so that `close` returns only after everything before it was delivered.
        let _ = completer.send(Completion::Barrier(done));
    }
}

fn commit(
    inner: &LogInner,
    completer: &mpsc::UnboundedSender<Completion>,
    messages: Vec<StoredMessage>,
    resolutions: Vec<Resolution>,
    waiters: Vec<Waiter>,
) {
    let (key, first_seq) = {
        let state = inner.state.lock();
        (state.next_group, state.next_seq)
    };
    let at = Millis::now();
    let messages: Vec<Arc<StoredMessage>> = messages
        .into_iter()
        .enumerate()
        .map(|(i, mut message)| {
            message.envelope.seq = Seq(first_seq + i as u64);
            message.envelope.accepted_at = at;
            Arc::new(message)
        })
        .collect();

    let written = write_group(inner, key, first_seq, at, &messages, &resolutions);
    if let Err(err) = written {
        // The store is failing underneath us (disk full, I/O error). Nothing of this group is acknowledged;
        // senders get the error, and resolutions will be retried by redelivery after a restart.
        tracing::error!(error = %err, "message log write failed");
        for (_, done) in waiters {
            let _ = done.send(Err(err.to_string()));
        }
        return;
    }

    inner.state.lock().apply(
        GroupMeta {
            key,
            first_seq,
            messages: messages.len() as u64,
            at,
        },
        &messages,
        &resolutions,
    );

    let accepted: Vec<Accepted> = messages
        .iter()
        .map(|m| Accepted {
            id: m.envelope.id,
            seq: m.envelope.seq,
            accepted_at: at,
        })
        .collect();
    let answers = waiters
        .into_iter()
        .map(|(range, done)| (accepted[range].to_vec(), done))
        .collect();
    // The completer lives as long as the log; if it is gone the process is shutting down and nobody waits.
    let _ = completer.send(Completion::Committed {
        committed: Committed {
            messages,
            resolutions,
        },
        answers,
    });
}

fn write_group(
    inner: &LogInner,
    key: u64,
    first_seq: u64,
    at: Millis,
    messages: &[Arc<StoredMessage>],
    resolutions: &[Resolution],
) -> crate::Result<()> {
    let mut records: Vec<RecordRef<'_>> = Vec::with_capacity(messages.len() + resolutions.len());
    records.extend(messages.iter().map(|m| RecordRef::Message(m)));
    for resolution in resolutions {
        let (seq, agent) = (resolution.seq, &resolution.agent);
        records.push(match &resolution.outcome {
            Outcome::Handled => RecordRef::Handled { seq, agent },
            Outcome::Failed { attempt, error } => RecordRef::Failed {
                seq,
                agent,
                attempt: *attempt,
                error,
            },
            Outcome::Dead {
                attempts,
                error,
                message,
            } => {
                // The dead-letter entry is written before the group that resolves the message, and both are
                // flushed below: a crash in between only means the message fails and lands here once more.
                let letter = DeadLetter {
                    message: (**message).clone(),
                    agent: agent.clone(),
                    attempts: *attempts,
                    error: error.clone(),
                    at,
                };
                let mut dead_key = seq.0.to_be_bytes().to_vec();
                dead_key.extend_from_slice(agent.as_str().as_bytes());
                inner.dead.insert(&dead_key, &letter)?;
                RecordRef::Dead {
                    seq,
                    agent,
                    attempts: *attempts,
                    error,
                }
            }
        });
    }
    let group = Group {
        first_seq,
        at,
        records,
    };
    // Roughly 300 bytes a message: one allocation for most groups.
    let buffer = Vec::with_capacity(64 + messages.len() * 320 + resolutions.len() * 24);
    let bytes =
        postcard::to_extend(&group, buffer).expect("postcard encodes every serde value to a Vec");
    inner.log_tree.insert(key.to_be_bytes(), bytes)?;
    inner.store.flush()?;
    Ok(())
}
