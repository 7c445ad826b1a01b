//! Answers and swarm messages as Discord messages, within Discord's limits.
//!
//! One-line results are plain content; tables and listings go in a code block. Anything longer than Discord's
//! 2000 characters of content is attached whole as a text file, under a one-line summary. Nothing we send can
//! ping anyone: every message carries empty `allowed_mentions`, whatever text it echoes. An answer showing one task
//! that waits for a captain's approval carries that task's Approve / Reject buttons.

use dreamos_runtime::{
    log::StoredMessage,
    task::{TaskId, TaskStatus},
};
use serde_json::{json, Value};

use super::rest::Attachment;
use crate::{answer::Reply, render, session::Answer};

/// Discord's limit on a message's content.
pub const CONTENT_MAX: usize = 2000;

/// A message for Discord: content, maybe a file, and whether only the person who asked sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscordMessage {
    pub content: String,
    pub file: Option<(String, String)>,
    pub ephemeral: bool,
    /// The task whose Approve / Reject buttons the message carries: one that waits for approval.
    pub approval: Option<TaskId>,
}

impl DiscordMessage {
    /// The JSON body of a channel post (or an edit), with mentions off.
    pub fn body(&self) -> Value {
        json!({
            "content": self.content,
            "allowed_mentions": { "parse": [] },
        })
    }

    pub fn attachments(&self) -> Vec<Attachment> {
        self.file
            .iter()
            .map(|(name, text)| Attachment {
                name: name.clone(),
                bytes: text.as_bytes().to_vec(),
            })
            .collect()
    }

    /// Plain content when it fits, else `summary` with the text attached as `name`.
    fn fitted(text: String, summary: String, name: &str, ephemeral: bool) -> DiscordMessage {
        if text.chars().count() <= CONTENT_MAX {
            DiscordMessage {
                content: text,
                file: None,
                ephemeral,
                approval: None,
            }
        } else {
            DiscordMessage {
                content: clip(&summary, CONTENT_MAX),
                file: Some((name.to_string(), text)),
                ephemeral,
                approval: None,
            }
        }
    }
}

/// A command's answer. Errors are ephemeral; results are for the channel.
pub fn answer(answer: &Answer) -> DiscordMessage {
    match &answer.result {
        Err(e) => DiscordMessage::fitted(
            format!("**Refused** (`{}`): {}", e.kind, e.message),
            format!("**Refused** (`{}`); the whole message is attached", e.kind),
            "error.txt",
            true,
        ),
        Ok(reply) => {
            let text = render::reply_text(reply);
            let summary = summary(&answer.command, reply);
            if plain(reply) {
                let mut message = DiscordMessage::fitted(
                    text,
                    summary,
                    &format!("{}.txt", answer.command),
                    false,
                );
                if let Reply::Task(shown) = reply {
                    if shown.task.status == TaskStatus::WaitingApproval {
                        message.approval = Some(shown.task.id);
                    }
                }
                message
            } else {
                let block = code_block(&text);
                if block.chars().count() <= CONTENT_MAX {
                    DiscordMessage {
                        content: block,
                        file: None,
                        ephemeral: false,
                        approval: None,
                    }
                } else {
                    DiscordMessage {
                        content: clip(&summary, CONTENT_MAX),
                        file: Some((format!("{}.txt", answer.command), text)),
                        ephemeral: false,
                        approval: None,
                    }
                }
            }
        }
    }
}

/// One-line results read best as plain text; the rest are tables.
fn plain(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Send(_)
            | Reply::Broadcast(_)
            | Reply::Agent(_)
            | Reply::Index(_)
            | Reply::Task(_)
            | Reply::Entry(_)
    )
}

/// The line shown above an attached answer.
fn summary(command: &str, reply: &Reply) -> String {
    let count = match reply {
        Reply::History(h) => format!("{} messages", h.messages.len()),
        Reply::Search(s) => format!("{} hits", s.hits.len()),
        Reply::Symbol(s) => format!("{} definitions", s.symbols.len()),
        Reply::Refs(r) => format!(
            "{} definitions, {} of {} uses in {} files",
            r.definitions.len(),
            r.uses.len(),
            r.total,
            r.files
        ),
        Reply::Impact(i) => format!(
            "{} of {} files, {} definitions",
            i.files.len(),
            i.total_files,
            i.total_definitions
        ),
        Reply::Outline(o) => format!("{} definitions in {}", o.definitions.len(), o.path),
        Reply::Status(s) => format!("{} agents", s.agents.len()),
        Reply::Agents(a) => format!("{} agents", a.agents.len()),
        Reply::DeadLetters(d) => format!("{} dead letters", d.dead_letters.len()),
        Reply::Repos(r) => format!("{} repositories", r.repos.len()),
        Reply::Tasks(t) => format!("{} tasks", t.tasks.len()),
        Reply::Recall(r) => format!("{} of {} matches", r.hits.len(), r.matched),
        Reply::Journal(j) => format!("{} entries", j.entries.len()),
        _ => "the answer".to_string(),
    };
    format!("/{command}: {count}; the whole answer is attached")
}

/// A message of the swarm for a Discord channel: an agent's reply or a notice to the captain.
pub fn swarm_message(message: &StoredMessage, mention: Option<u64>) -> DiscordMessage {
    let env = &message.envelope;
    let text = env
        .body
        .text_field()
        .unwrap_or_else(|| env.body.as_json().to_string());
    let to = mention.map_or_else(String::new, |user| format!(" → <@{user}>"));
    let head = if env.kind.starts_with("notice") {
        format!("**{}** ({})", env.from, env.kind)
    } else {
        format!("**{}**{to}", env.from)
    };
    DiscordMessage::fitted(
        format!("{head}: {}", escape(&text)),
        format!("{head}: the message is attached"),
        "message.txt",
        false,
    )
}

/// Text in a code block that cannot close it early.
pub fn code_block(text: &str) -> String {
    format!("```\n{}\n```", text.replace("```", "`\u{200b}``"))
}

/// Text outside a code block: Discord markdown that could hide or fake parts of the message is neutralised.
fn escape(text: &str) -> String {
    text.replace("```", "`\u{200b}``")
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text.chars().count() > max => format!("{}…", &text[..end]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        answer::{HistoryReply, SendReply},
        session::CommandError,
    };

    #[test]
    fn long_answers_are_attached_and_errors_are_ephemeral() {
        let long = Answer {
            command: "history".into(),
            result: Ok(Reply::History(HistoryReply {
                messages: Vec::new(),
                next_before: None,
            })),
        };
        let short = answer(&long);
        assert!(short.content.starts_with("```"), "{short:?}");
        assert!(short.file.is_none() && !short.ephemeral);

        let error = answer(&Answer {
            command: "send".into(),
            result: Err(CommandError {
                kind: "forbidden".into(),
                message: "x".repeat(5000),
            }),
        });
        assert!(error.ephemeral);
        assert!(error.content.chars().count() <= CONTENT_MAX);
        assert!(error.file.as_ref().is_some_and(|(_, t)| t.len() > 5000));

        let sent = answer(&Answer {
            command: "send".into(),
            result: Ok(Reply::Send(SendReply {
                id: dreamos_agents::message::MessageId::new(),
                seq: dreamos_agents::message::Seq(3),
                to: "agent-1".into(),
                recipients: vec!["agent-1".into()],
                kind: "ping".into(),
                priority: "normal",
                accepted_at: "now".into(),
                reply: None,
                note: None,
            })),
        });
        assert!(sent.content.starts_with("accepted #3"), "{sent:?}");
        assert_eq!(sent.body()["allowed_mentions"], json!({ "parse": [] }));
    }

    #[test]
    fn code_blocks_cannot_be_closed_by_their_content() {
        let block = code_block("a ``` b");
        assert_eq!(block.matches("```").count(), 2);
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
