//! The memory skills, so that an agent's work leaves a trace and later work can look it up:
//! - `remember`: the body's text (or `{"text": ..., "kind": ..., "tags": [...]}`) becomes an entry by the agent;
//!   the reply is the entry.
//! - `recall`: the body's text (or `{"query": ..., "limit": N, "kind": ..., "tags": [...], "agent": ...}`) is
//!   searched; the reply lists the hits with their snippets.

use std::sync::Arc;

use async_trait::async_trait;
use dreamos_runtime::memory::{EntryKind, Links};
use serde_json::{json, Value};

use super::{index::Filters, RecallQuery};
use crate::skill::{Skill, SkillContext, SkillError, SkillRegistry};

/// Hits a `recall` answers with unless it asks for another number.
const DEFAULT_LIMIT: usize = 5;
/// Replies must fit in a message body: ten entries of the longest text do.
const MAX_LIMIT: usize = 10;

pub fn register(skills: &mut SkillRegistry) {
    skills.add(Arc::new(Remember));
    skills.add(Arc::new(Recall));
}

struct Remember;
struct Recall;

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => s
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl Skill for Remember {
    fn name(&self) -> &'static str {
        "remember"
    }

    fn summary(&self) -> &'static str {
        "write the text into the swarm's memory (JSON: text, kind, tags)"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let body = cx.message().body.to_value();
        let text = body
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| cx.text());
        let kind = match body.get("kind").and_then(Value::as_str) {
            Some(k) => k.parse::<EntryKind>().map_err(SkillError::permanent)?,
            None => EntryKind::Note,
        };
        let tags = body.get("tags").map(strings).unwrap_or_default();
        let entry = cx.remember(kind, &text, tags, Links::default()).await?;
        cx.reply(json!({
            "text": format!("remembered as {}", entry.id),
            "entry": entry,
        }))
    }
}

#[async_trait]
impl Skill for Recall {
    fn name(&self) -> &'static str {
        "recall"
    }

    fn summary(&self) -> &'static str {
        "search the swarm's memory (JSON: query, limit, kind, tags, agent)"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let body = cx.message().body.to_value();
        let words = body
            .get("query")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| cx.text());
        let limit = body
            .get("limit")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_LIMIT, |n| (n as usize).clamp(1, MAX_LIMIT));
        let kind = match body.get("kind").and_then(Value::as_str) {
            Some(k) => Some(
                k.parse::<EntryKind>()
                    .map_err(SkillError::permanent)?
                    .as_str()
                    .to_string(),
            ),
            None => None,
        };
        let filters = Filters {
            kind,
            tags: body.get("tags").map(strings).unwrap_or_default(),
            agent: body
                .get("agent")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Filters::default()
        };
        let found = cx
            .recall(RecallQuery {
                words,
                filters,
                limit,
            })
            .await?;
        let lines: Vec<String> = found
            .hits
            .iter()
            .map(|h| {
                format!(
                    "{} ({}, {}): {}",
                    h.entry.id, h.entry.kind, h.entry.author, h.snippet
                )
            })
            .collect();
        let text = if lines.is_empty() {
            "nothing in memory matches".to_string()
        } else {
            lines.join("\n")
        };
        cx.reply(json!({
            "text": text,
            "matched": found.matched,
            "hits": found.hits,
        }))
    }
}
