//! The writer thread: group commit.
//!
//! It blocks for the first submission, then takes whatever else is already queued (up to `max_batch` records and
//! `max_group_bytes` bytes), writes it all as one group (and with `sync = "full"` fdatasyncs it once), and
//! only then answers the senders. Under light load a group is one message and the answer comes a flush later;
//! under heavy load groups grow and the flush cost is shared, which is what lets sled accept hundreds of thousands
//! of messages a second. It runs on its own OS thread because sled's flush blocks.
//!
//! A group passes three stages, each on its own thread or task, so that the next group is written while the
//! previous one is made durable and delivered:
//!
//! 1. the **writer** (this thread) flushes sled's buffers (`sync_file_range`: whatever was written there before
//!    the group goes first), encodes the group and appends it to its epoch's segment file, then hands a
//!    [`Completion`] to
//! 2. the **syncer** thread, which (with `store.sync = "full"`) fdatasyncs sled's file and the segment files
//!    written, once for every completion waiting for it: a sync covers everything written before it began, so
//!    under load one fdatasync makes several groups durable
//!    (group commit on top of group commit); then it forwards them, in order, to
//! 3. the **completer**, a task on the async runtime, which routes each group ([`CommitSink`]) and answers its
//!    senders. Waking hundreds of waiting tasks from inside the runtime is a push onto a worker's local queue, where
//!    waking them from another thread costs a cross-thread wake-up each (the profile showed those futex calls among
//!    the top costs).
//!
//! Nothing is answered before the sync that covers it, and completions keep the writer's order through every stage.
//!
//! When a write or a flush fails, the writer *fails stop*: it records why, answers everyone waiting with
//! [`Error::StoreFailed`], tells the sink, and from then on answers every submission with that error without
//! writing anything. Unwritten resolutions are not lost: their messages are still unresolved in the store and are
//! delivered again after the restart.

use std::sync::{atomic::Ordering, Arc};

use tokio::sync::{mpsc, oneshot};

use super::{
    segment::{Location, Segments},
    state::GroupMeta,
    AcceptReply, Accepted, CommitSink, Committed, DeadLetter, DurableReply, Group, LogInner,
    Outcome, RecordRef, Resolution, StoredMessage, Submission,
};
use crate::{
    error::Error,
    message::{Millis, Seq},
};

/// A sender waiting for its messages to be durable: where they start in the group, how many, and the reply.
/// Messages of different submissions (appends and handlers' outputs) interleave in a group, so each waiter
/// remembers its own range.
type Waiter = (std::ops::Range<usize>, AcceptReply);

/// What the completer does after a flush, in the order the writer sent it.
pub(super) enum Completion {
    /// A group is durable: route it, then answer its senders.
    Committed {
        committed: Committed,
        /// The writer's flush of sled before the group wrote something: sled's file needs its fdatasync too.
        sled: bool,
        answers: Vec<(Vec<Accepted>, AcceptReply)>,
        durable: Vec<DurableReply>,
    },
    /// Answer once everything before is done.
    Barrier(oneshot::Sender<()>),
    /// The store failed; tell the sink once.
    Failed(String),
    /// Answer these with the store's failure (after the sink was told of it).
    Refused {
        why: String,
        waiters: Vec<AcceptReply>,
        durable: Vec<DurableReply>,
    },
    /// The writer flushed writes made outside the log (the audit log): the syncer syncs, nobody is answered.
    Flushed,
}

/// The completer: routes committed groups and answers their senders, in order.
pub(super) async fn complete(
    mut completions: mpsc::UnboundedReceiver<Completion>,
    sink: Arc<dyn CommitSink>,
) {
    while let Some(completion) = completions.recv().await {
        match completion {
            Completion::Committed {
                committed,
                answers,
                durable,
                ..
            } => {
                // Route before answering: when a sender learns its message is accepted, the message is already
                // in its recipients' mailboxes.
                sink.committed(&committed);
                for (accepted, done) in answers {
                    let _ = done.send(Ok(accepted));
                }
                for done in durable {
                    let _ = done.send(Ok(()));
                }
            }
            Completion::Barrier(done) => {
                let _ = done.send(());
            }
            Completion::Failed(error) => sink.failed(&error),
            Completion::Flushed => {}
            Completion::Refused {
                why,
                waiters,
                durable,
            } => {
                for done in waiters {
                    let _ = done.send(Err(Error::StoreFailed(why.clone())));
                }
                for done in durable {
                    let _ = done.send(Err(Error::StoreFailed(why.clone())));
                }
            }
        }
    }
}

/// The syncer: one fdatasync for every flushed completion waiting, then forwards them in order.
pub(super) fn sync_loop(
    inner: Arc<LogInner>,
    mut flushed: mpsc::UnboundedReceiver<Completion>,
    completer: mpsc::UnboundedSender<Completion>,
) {
    while let Some(first) = flushed.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = flushed.try_recv() {
            batch.push(next);
        }
        let needs_sync = batch
            .iter()
            .any(|c| matches!(c, Completion::Committed { .. } | Completion::Flushed));
        // sled's file only when something was written to it: an fdatasync with nothing to write still costs a
        // device cache flush, which halved the log's throughput. An explicit flush (`MessageLog::sync`, for state
        // kept in sled) always syncs it.
        let sled = batch.iter().any(|c| {
            matches!(
                c,
                Completion::Flushed | Completion::Committed { sled: true, .. }
            )
        });
        let synced = if needs_sync && inner.failure.lock().is_none() {
            // sled first: what was written there before a group must not be newer on disk than the group.
            let sled_synced = if sled {
                inner.store.sync_files()
            } else {
                Ok(())
            };
            sled_synced.and_then(|()| inner.segments.sync())
        } else {
            Ok(())
        };
        match synced {
            Ok(()) => {
                for completion in batch {
                    let _ = completer.send(completion);
                }
            }
            Err(err) => {
                // Flushed but not durable: nobody may be told these groups are accepted.
                fail(&inner, &completer, &err);
                let why = err.to_string();
                for completion in batch {
                    let forward = match completion {
                        Completion::Committed {
                            answers, durable, ..
                        } => Completion::Refused {
                            why: why.clone(),
                            waiters: answers.into_iter().map(|(_, done)| done).collect(),
                            durable,
                        },
                        Completion::Flushed => continue,
                        other => other,
                    };
                    let _ = completer.send(forward);
                }
            }
        }
    }
}

/// What the writer took for one group.
#[derive(Default)]
struct Batch {
    messages: Vec<StoredMessage>,
    resolutions: Vec<Resolution>,
    waiters: Vec<Waiter>,
    durable: Vec<DurableReply>,
    barriers: Vec<oneshot::Sender<()>>,
    flush: bool,
    closing: Option<oneshot::Sender<()>>,
}

impl Batch {
    fn add(&mut self, submission: Submission) {
        match submission {
            Submission::Append { messages, done, .. } => {
                let range = self.messages.len()..self.messages.len() + messages.len();
                self.messages.extend(messages);
                if let Some(done) = done {
                    self.waiters.push((range, done));
                }
            }
            Submission::Resolve {
                resolution,
                outputs,
                done,
                ..
            } => {
                self.resolutions.push(resolution);
                self.messages.extend(outputs);
                self.durable.extend(done);
            }
            Submission::Flush => self.flush = true,
            Submission::Barrier { done } => self.barriers.push(done),
            // Everything queued before the close is in this batch and gets written. What is still queued when
            // the loop ends is dropped unanswered: its senders get `Error::Closed`, and dropped resolutions are
            // simply redelivered after the restart.
            Submission::Close { done } => self.closing = Some(done),
        }
    }
}

/// The writer. `completer` is the syncer's channel: every completion passes the syncer on its way.
pub(super) fn run(
    inner: Arc<LogInner>,
    mut rx: mpsc::UnboundedReceiver<Submission>,
    completer: mpsc::UnboundedSender<Completion>,
) {
    let max_batch = inner.options.max_batch;
    let max_bytes = inner.options.max_group_bytes;
    let mut closing: Option<oneshot::Sender<()>> = None;
    // A submission that did not fit in the previous group starts the next one.
    let mut held: Option<Submission> = None;
    while closing.is_none() {
        let Some(first) = held.take().or_else(|| rx.blocking_recv()) else {
            break;
        };
        let mut records = first.records();
        let mut bytes = first.bytes();
        let mut batch = Batch::default();
        batch.add(first);
        while records < max_batch && bytes < max_bytes && batch.closing.is_none() {
            match rx.try_recv() {
                Ok(next) => {
                    if bytes + next.bytes() > max_bytes {
                        held = Some(next);
                        break;
                    }
                    records += next.records();
                    bytes += next.bytes();
                    batch.add(next);
                }
                Err(_) => break,
            }
        }
        inner.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        closing = batch.closing.take();
        let barriers = std::mem::take(&mut batch.barriers);
        if inner.failure.lock().is_some() {
            refuse(&inner, &completer, batch);
        } else if !batch.messages.is_empty() || !batch.resolutions.is_empty() {
            commit(&inner, &completer, batch);
        } else if batch.flush {
            match inner.store.flush_buffers() {
                Ok(_) => {
                    let _ = completer.send(Completion::Flushed);
                }
                Err(err) => fail(&inner, &completer, &err),
            }
        }
        for done in barriers {
            let _ = completer.send(Completion::Barrier(done));
        }
    }
    if let Some(held) = held {
        let mut batch = Batch::default();
        batch.add(held);
        refuse(&inner, &completer, batch);
    }
    if inner.failure.lock().is_none() {
        match inner.store.flush_buffers() {
            Ok(_) => {
                let _ = completer.send(Completion::Flushed);
            }
            Err(err) => tracing::error!(error = %err, "final flush of the message log failed"),
        }
    }
    if let Some(done) = closing {
        // Answered by the completer, so that `close` returns only after everything before it was delivered.
        let _ = completer.send(Completion::Barrier(done));
    }
}

/// Records the store's failure (once), tells the completer, and refuses from now on.
fn fail(inner: &LogInner, completer: &mpsc::UnboundedSender<Completion>, err: &Error) {
    let mut failure = inner.failure.lock();
    if failure.is_some() {
        return;
    }
    tracing::error!(error = %err, "the store failed; the message log accepts nothing more");
    *failure = Some(err.to_string());
    let _ = completer.send(Completion::Failed(err.to_string()));
}

/// Answers everyone in a batch with the store's failure, writing nothing. The completer answers them, after it
/// has told the sink of the failure.
fn refuse(inner: &LogInner, completer: &mpsc::UnboundedSender<Completion>, batch: Batch) {
    let why = inner
        .failure
        .lock()
        .clone()
        .unwrap_or_else(|| "the store failed".to_string());
    let _ = completer.send(Completion::Refused {
        why,
        waiters: batch.waiters.into_iter().map(|(_, done)| done).collect(),
        durable: batch.durable,
    });
}

fn commit(inner: &LogInner, completer: &mpsc::UnboundedSender<Completion>, batch: Batch) {
    let at = Millis::now();
    let (key, first_seq, epoch) = {
        let state = inner.state.lock();
        // A new epoch once the current one holds a sixteenth of the count bound or spans a sixteenth of the age
        // bound: retention then drops it whole (see the module's doc).
        let per_epoch = (inner.options.retention_max_messages / super::EPOCHS_PER_BOUND).max(1);
        let span = inner.options.retention_max_age / super::EPOCHS_PER_BOUND as u32;
        let full = state.epoch_messages >= per_epoch
            || (state.epoch_messages > 0 && at.saturating_sub(span) > state.epoch_started);
        let epoch = if full { state.epoch + 1 } else { state.epoch };
        (state.next_group, state.next_seq, epoch)
    };
    let Batch {
        messages,
        resolutions,
        waiters,
        durable,
        ..
    } = batch;
    let messages: Vec<Arc<StoredMessage>> = messages
        .into_iter()
        .enumerate()
        .map(|(i, mut message)| {
            message.envelope.seq = Seq(first_seq + i as u64);
            message.envelope.accepted_at = at;
            Arc::new(message)
        })
        .collect();

    let (location, sled) =
        match write_group(inner, epoch, key, first_seq, at, &messages, &resolutions) {
            Ok(written) => written,
            Err(err) => {
                // The store is failing underneath us (disk full, I/O error, a failed fdatasync). Nothing of this
                // group is acknowledged, and nothing after it will be: see the module's doc.
                fail(inner, completer, &err);
                refuse(
                    inner,
                    completer,
                    Batch {
                        waiters,
                        durable,
                        ..Batch::default()
                    },
                );
                return;
            }
        };

    inner.state.lock().apply(
        GroupMeta {
            key,
            epoch,
            location,
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
        sled,
        committed: Committed {
            messages,
            resolutions,
        },
        answers,
        durable,
    });
}

fn write_group(
    inner: &LogInner,
    epoch: u64,
    key: u64,
    first_seq: u64,
    at: Millis,
    messages: &[Arc<StoredMessage>],
    resolutions: &[Resolution],
) -> crate::Result<(Location, bool)> {
    let mut dead_letters = false;
    let mut records: Vec<RecordRef<'_>> = Vec::with_capacity(messages.len() + resolutions.len());
    records.extend(messages.iter().map(|m| RecordRef::Message(m)));
    for resolution in resolutions {
        let (seq, agent) = (resolution.seq, &resolution.agent);
        records.push(match &resolution.outcome {
            Outcome::Started { attempt } => RecordRef::Started {
                seq,
                agent,
                attempt: *attempt,
            },
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
                // The dead-letter entry is made durable before the group that resolves the message is written:
                // a crash in between only means the message fails and lands here once more.
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
                dead_letters = true;
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
    let sled = if dead_letters {
        // Rare (a message that failed `max_attempts` times): its own sync, so that with `sync = "full"` no power
        // cut leaves the resolution without its dead letter.
        inner.store.flush()?;
        false
    } else {
        // Whatever was written to sled before this group is no newer on disk than the group (a crash keeps
        // both or the earlier alone); the syncer's fdatasync of sled's file makes it stable with the group.
        inner.store.flush_buffers()?
    };
    // Roughly 300 bytes a message: one allocation for most groups.
    let buffer = Segments::frame_buffer(64 + messages.len() * 320 + resolutions.len() * 24);
    let frame =
        postcard::to_extend(&group, buffer).expect("postcard encodes every serde value to a Vec");
    // Durable against a crash of the process now; against a power cut once the syncer's fdatasync covers it.
    Ok((inner.segments.append(epoch, key, frame)?, sled))
}
