//! The `ask` skill: `/ask` as a task (or a message of kind `ask` to an agent).
//!
//! Its input is `{"question", "model"?, "agent"?, "person"?, "frontend"?, "conversation"?, "stream"?}` (a text
//! body is the question). It runs [`super::ask::ask`] with the answering agent's persona and the
//! conversation's earlier turns, recording every step under the task (or message) so that a resumed task pays
//! for no call twice; it reports each step, and with `stream` the answer's text as it comes, as the task's
//! progress. When it is done it writes the turn into the conversation, journals the exchange (`questions`) and
//! replies with the [`super::ask::AskAnswer`].

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use async_trait::async_trait;
use dreamos_runtime::{
    config::{JournalTopic, ModelTag},
    conversation::{Conversations, Turn},
    memory::{Author, Links},
    message::Millis,
};
use serde_json::Value;

use super::{
    ask::{self, AgentLink, AskProgress, AskRun, RememberAs, Tools},
    Caller, Llm,
};
use crate::{
    code::Code,
    skill::{Skill, SkillContext, SkillError},
};

/// The most bytes of a streamed answer shown in one progress line (Discord shows 2,000 characters).
const SHOWN_TEXT: usize = 1_500;

/// See the module's doc.
pub struct AskSkill {
    /// Set once the swarm has built the bridge; the error says why there is none.
    pub llm: Arc<OnceLock<Result<Llm, String>>>,
    pub code: Code,
    /// Personas by agent name.
    pub personas: BTreeMap<String, String>,
    pub conversations: Conversations,
}

/// The tag `--model` names.
pub fn parse_tag(tag: &str) -> Result<ModelTag, String> {
    match tag {
        "fast" => Ok(ModelTag::Fast),
        "balanced" => Ok(ModelTag::Balanced),
        "heavy" => Ok(ModelTag::Heavy),
        "code" => Ok(ModelTag::Code),
        other => Err(format!(
            "--model {other}: use fast, balanced, heavy or code"
        )),
    }
}

/// The end of `text` that fits [`SHOWN_TEXT`], on a character boundary.
fn tail(text: &str) -> &str {
    if text.len() <= SHOWN_TEXT {
        return text;
    }
    let mut start = text.len() - SHOWN_TEXT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[async_trait]
impl Skill for AskSkill {
    fn name(&self) -> &'static str {
        "ask"
    }

    fn summary(&self) -> &'static str {
        "answer a question with a model and the code index and memory as tools (/ask)"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let body = cx.message().body.as_json().to_string();
        let args: Value = serde_json::from_str(&body).unwrap_or_else(|_| Value::Null);
        let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
        // A task's input names the question; a message sent as text (`/send agent-1 ... --kind ask`) is one.
        let question = match text("question").or_else(|| text("text")) {
            Some(q) => q,
            None if !args.is_object() => cx.text(),
            None => return Err(SkillError::permanent("`question` is required")),
        };
        if question.trim().is_empty() {
            return Err(SkillError::permanent("the question is empty"));
        }
        let tag = text("model")
            .map(|t| parse_tag(&t))
            .transpose()
            .map_err(SkillError::permanent)?;
        let llm = match self.llm.get() {
            Some(Ok(llm)) => llm,
            Some(Err(why)) => return Err(SkillError::permanent(why.clone())),
            None => return Err(SkillError::new("the LLM bridge is not started yet")),
        };
        let agent = text("agent").unwrap_or_else(|| cx.agent().to_string());
        let (scope, links) = match cx.task() {
            Some(task) => (
                format!("task:{task}"),
                Links {
                    tasks: vec![task],
                    agents: vec![agent.clone()],
                    ..Default::default()
                },
            ),
            None => (
                format!("msg:{}", cx.message().id),
                Links {
                    messages: vec![cx.message().id],
                    agents: vec![agent.clone()],
                    ..Default::default()
                },
            ),
        };
        let caller = Caller {
            person: text("person"),
            agent: Some(agent.clone()),
            task: cx.task().map(|t| t.to_string()),
            frontend: text("frontend"),
        };
        let conversation = text("conversation").filter(|c| !c.is_empty());
        let history = match &conversation {
            Some(c) => self
                .conversations
                .turns(c)
                .map_err(|e| SkillError::new(e.to_string()))?,
            None => Vec::new(),
        };
        let run = AskRun {
            question: &question,
            tag,
            scope: Some(&scope),
            persona: self.personas.get(&agent).map(String::as_str),
            history: &history,
            stream: args.get("stream").and_then(Value::as_bool).unwrap_or(false),
        };
        let memory = cx.memory().cloned();
        let tools = Tools {
            code: &self.code,
            memory: memory.as_ref(),
            remember_as: Some(RememberAs {
                author: Author::Agent(agent.clone()),
                links: links.clone(),
            }),
            // Only a task asks on: an agent answering another's question answers it itself.
            agents: cx.task().map(|_| AgentLink {
                ums: cx.ums(),
                me: cx.agent().clone(),
                person: caller.person.clone(),
                frontend: caller.frontend.clone(),
            }),
        };
        let answer = {
            let shown = &*cx;
            let mut streamed = String::new();
            let mut percent = 0u8;
            let mut progress = |p: AskProgress<'_>| match p {
                AskProgress::Step { step, doing } => {
                    percent = (step * 90 / ask::MAX_STEPS) as u8;
                    streamed.clear();
                    let line = if doing.is_empty() {
                        format!("step {step}: thinking")
                    } else {
                        format!("step {step}: thinking after {doing}")
                    };
                    shown.progress(Some(percent), &line);
                }
                AskProgress::Text(more) => {
                    streamed.push_str(more);
                    shown.progress(Some(percent), tail(&streamed));
                }
            };
            ask::ask(llm, &tools, &caller, &run, &mut progress).await
        };
        // The bridge has already retried what is worth retrying and fallen back to the other models: a model's
        // error ends the task. What else fails (the store, a shutdown) is tried again.
        let answer = answer.map_err(|e| match e {
            crate::Error::Llm(e) => SkillError::permanent(format!("{}: {e}", e.kind())),
            crate::Error::Invalid(m) => SkillError::permanent(m),
            other => SkillError::from(other),
        })?;
        if let (Some(c), Some(task)) = (&conversation, cx.task()) {
            self.conversations
                .put(
                    c,
                    task.0,
                    &Turn {
                        at: Millis::now(),
                        question: question.clone(),
                        answer: answer.text.clone(),
                    },
                )
                .map_err(|e| SkillError::new(e.to_string()))?;
        }
        if let Some(memory) = &memory {
            let who = caller.person.as_deref().unwrap_or("someone");
            let text = format!(
                "{who} asked {agent}: {question} — {} answered in {} step(s), {} tokens: {}",
                answer.model,
                answer.steps,
                answer.prompt_tokens + answer.completion_tokens,
                answer.text
            );
            // A task resumed after it journaled does not journal twice.
            let done = memory
                .written(&Author::Swarm, &links, &text)
                .map_err(|e| SkillError::new(e.to_string()))?;
            if done.is_none() {
                memory.note(JournalTopic::Questions, &["ask", "question"], text, links);
            }
        }
        let mut body = serde_json::to_value(&answer)
            .map_err(|e| SkillError::new(format!("the answer does not serialize: {e}")))?;
        // What the tools were asked is the first to go when the answer is too big for a message.
        if body.to_string().len() > cx.max_body_bytes() {
            if let Some(tools) = body.get_mut("tools").and_then(Value::as_array_mut) {
                for tool in tools {
                    tool["arguments"] = Value::String(String::new());
                }
            }
        }
        cx.reply(body)
    }
}
