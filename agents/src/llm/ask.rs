//! `/ask`: a model answers a question with a tool-using loop of bounded steps over the code index and the memory.
//!
//! Each step sends the conversation so far with the tools offered; when the model asks for tools, each call runs
//! (`search_code`, `find_symbol`, `refs`, `outline`, `deps` on the code index; `recall` on the memory) and its
//! result goes back as a tool message, cut to [`MAX_TOOL_RESULT`] bytes. When the model answers in text, or after
//! [`MAX_STEPS`] steps (a last call then offers no tools), the loop ends. A model that never calls a tool (the
//! tiny local one) simply answers in the first step.
//!
//! Citations: the answer is asked to cite `repo:path:line`. Every citation in it is checked before it is shown: it
//! stands if a tool showed that line of that file during the loop, or if the file is in the index and the line
//! falls inside one of its definitions; otherwise it is listed as unverified.

use std::collections::BTreeSet;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, FunctionCall,
};
use dreamos_runtime::{
    calls::CallKey,
    config::ModelTag,
    conversation::Turn,
    memory::{Author, Links},
    message::{Address, AgentName, Body},
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Caller, ChatRequest, Llm, Routed};
use crate::{code::Code, memory::Memory};

/// Steps of the loop at most (each one call to a model), the last one without tools.
pub const MAX_STEPS: usize = 6;
/// The most bytes of one tool's result sent back to the model.
pub const MAX_TOOL_RESULT: usize = 6_000;
/// Hits a tool returns at most.
const TOOL_LIMIT: usize = 8;

const SYSTEM: &str = "You are an agent of Dream.OS, a swarm of AI agents. Answer the question briefly and \
correctly. You can use tools to look at the code index (search_code, find_symbol, refs, outline, deps) and the \
swarm's memory (recall). When you state where something is in the code, cite it as repo:path:line, exactly as the \
tools showed it. If you do not know, say so.";

/// One tool call the loop ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolUse {
    pub name: String,
    pub arguments: String,
    /// `None` when it ran; the error otherwise (the model saw it too).
    pub error: Option<String>,
}

/// A `repo:path:line` the answer cites.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Citation {
    pub repo: String,
    pub path: String,
    pub line: u32,
}

impl std::fmt::Display for Citation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.repo, self.path, self.line)
    }
}

/// `/ask`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskAnswer {
    pub text: String,
    /// The model that gave the final answer, the tag and why.
    pub model: String,
    pub tag: String,
    pub reason: String,
    /// Models that failed before, with their errors.
    pub fell_back: Vec<(String, String)>,
    pub steps: usize,
    /// Steps whose answer was the one recorded before a restart (nothing was sent for them).
    #[serde(default)]
    pub reused_steps: usize,
    /// Earlier turns of the conversation that were sent.
    #[serde(default)]
    pub history_turns: usize,
    pub tools: Vec<ToolUse>,
    /// Checked citations.
    pub citations: Vec<Citation>,
    /// Citations that could not be checked against the index.
    pub unverified: Vec<Citation>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What the loop may use.
pub struct Tools<'a> {
    pub code: &'a Code,
    pub memory: Option<&'a Memory>,
    /// Who `remember` writes as and what its entries link to; `None` offers no `remember`.
    pub remember_as: Option<RememberAs>,
    /// The swarm's other agents, for `ask_agent`; `None` offers no `ask_agent` (an agent answering another's
    /// question does not ask on, so questions never go round in circles).
    pub agents: Option<AgentLink<'a>>,
}

/// What `ask_agent` needs: the UMS to send over and the agent asking.
pub struct AgentLink<'a> {
    pub ums: &'a crate::ums::Ums,
    pub me: AgentName,
    pub person: Option<String>,
    pub frontend: Option<String>,
}

/// How long `ask_agent` waits for the other agent's answer unless the model asks for less.
pub const ASK_AGENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// The part of a step's record that holds the message `ask_agent`'s call `i` sent: `ASK_AGENT_SENT + i`.
const ASK_AGENT_SENT: u32 = 1_000;

/// The author and links of the entries `remember` writes.
#[derive(Debug, Clone)]
pub struct RememberAs {
    pub author: Author,
    pub links: Links,
}

/// One `/ask`: the question and how to answer it.
#[derive(Debug, Clone, Default)]
pub struct AskRun<'a> {
    pub question: &'a str,
    /// The tag a person asked for (`--model`); `None` lets the classifier pick.
    pub tag: Option<ModelTag>,
    /// Where each step's answer and tool results are recorded (`task:ID`, `msg:ID`), so that running the same
    /// scope again (a resumed task, a redelivered message) pays for none of them twice. `None` records nothing.
    pub scope: Option<&'a str>,
    /// The answering agent's persona, put before the swarm's rules.
    pub persona: Option<&'a str>,
    /// Earlier turns of the conversation, oldest first; the newest that fit half the smallest context are sent.
    pub history: &'a [Turn],
    /// Stream the answer's text into the progress callback as it comes.
    pub stream: bool,
}

/// What the loop reports while it runs.
#[derive(Debug)]
pub enum AskProgress<'a> {
    /// A step starts; `doing` says what the previous one asked for (`search_code, outline`).
    Step { step: usize, doing: String },
    /// More of the answer's text, when streaming.
    Text(&'a str),
}

fn tool_specs(request: ChatRequest, memory: bool, remember: bool, agents: bool) -> ChatRequest {
    let text = |desc: &str| json!({"type": "string", "description": desc});
    let mut request = request
        .tool(
            "search_code",
            "Search the code index for words, an identifier or /a regex/. Returns repo, path, line and a snippet.",
            json!({"type": "object", "properties": {"query": text("what to search for"), "repo": text("only this repository")}, "required": ["query"]}),
        )
        .tool(
            "find_symbol",
            "Find where a symbol (function, type, method...) is defined.",
            json!({"type": "object", "properties": {"name": text("the symbol's name"), "repo": text("only this repository")}, "required": ["name"]}),
        )
        .tool(
            "refs",
            "Where a symbol is used: calls, type uses, imports.",
            json!({"type": "object", "properties": {"name": text("the symbol's name"), "repo": text("only this repository")}, "required": ["name"]}),
        )
        .tool(
            "outline",
            "The definitions of one file, with their lines.",
            json!({"type": "object", "properties": {"path": text("the file's path in its repository"), "repo": text("the repository")}, "required": ["path"]}),
        )
        .tool(
            "deps",
            "What a file imports and what imports it.",
            json!({"type": "object", "properties": {"path": text("the file's path in its repository"), "repo": text("the repository")}, "required": ["path"]}),
        );
    if memory {
        request = request.tool(
            "recall",
            "Search the swarm's memory (its journal, decisions and notes).",
            json!({"type": "object", "properties": {"query": text("words to look for")}, "required": ["query"]}),
        );
    }
    if agents {
        request = request.tool(
            "ask_agent",
            "Ask another agent of the swarm a question and wait for its answer.",
            json!({"type": "object", "properties": {"agent": text("the agent's name, such as agent-2"), "question": text("the question"), "timeout_s": {"type": "integer", "description": "seconds to wait (at most 600)"}}, "required": ["agent", "question"]}),
        );
    }
    if memory && remember {
        request = request.tool(
            "remember",
            "Write a note into the swarm's memory, for later questions.",
            json!({"type": "object", "properties": {"text": text("the note"), "kind": text("note, decision, fact or summary")}, "required": ["text"]}),
        );
    }
    request
}

/// The system prompt: the persona, then the swarm's rules.
fn system_prompt(persona: Option<&str>) -> String {
    match persona.map(str::trim).filter(|p| !p.is_empty()) {
        Some(persona) => format!("{persona}\n\n{SYSTEM}"),
        None => SYSTEM.to_string(),
    }
}

/// The newest turns whose text fits `budget` bytes, oldest first.
fn fitting(history: &[Turn], budget: usize) -> &[Turn] {
    let mut used = 0;
    let mut from = history.len();
    for (i, turn) in history.iter().enumerate().rev() {
        used += turn.question.len() + turn.answer.len();
        if used > budget {
            break;
        }
        from = i;
    }
    &history[from..]
}

/// Answers `run.question` for `caller`: see the module's doc.
pub async fn ask(
    llm: &Llm,
    tools: &Tools<'_>,
    caller: &Caller,
    run: &AskRun<'_>,
    progress: &mut (dyn FnMut(AskProgress<'_>) + Send),
) -> crate::Result<AskAnswer> {
    let question = run.question;
    if question.trim().is_empty() {
        return Err(crate::Error::Invalid(
            "the question is empty: /ask QUESTION".to_string(),
        ));
    }
    // Half the smallest context (at about 4 bytes a token) is left for earlier turns.
    let smallest = llm
        .bridge()
        .models()
        .iter()
        .map(|m| m.context as usize)
        .min()
        .unwrap_or(2_048);
    let mut base = ChatRequest::default().system(system_prompt(run.persona));
    let history = fitting(run.history, smallest * 2);
    for turn in history {
        base = base.user(&turn.question).assistant(&turn.answer);
    }
    let base = base.user(question);
    let mut messages = base.messages.clone();
    let mut used = Vec::new();
    let mut seen: BTreeSet<Citation> = BTreeSet::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    let mut reused_steps = 0;
    let mut last: Option<Routed> = None;
    let mut steps = 0;
    let mut doing = String::new();
    let remember = tools.remember_as.is_some();
    for step in 0..MAX_STEPS {
        steps = step + 1;
        progress(AskProgress::Step {
            step: steps,
            doing: std::mem::take(&mut doing),
        });
        let final_step = step + 1 == MAX_STEPS;
        let mut request = ChatRequest {
            messages: messages.clone(),
            ..ChatRequest::default()
        };
        if !final_step {
            request = tool_specs(
                request,
                tools.memory.is_some(),
                remember,
                tools.agents.is_some(),
            );
        }
        let key = run.scope.map(|scope| CallKey::new(scope, step as u32, 0));
        let routed = if run.stream {
            let mut on_text = |text: &str| progress(AskProgress::Text(text));
            llm.chat_recorded(
                caller,
                key.as_ref(),
                question,
                run.tag,
                &request,
                Some(&mut on_text),
            )
            .await?
        } else {
            llm.chat_recorded(caller, key.as_ref(), question, run.tag, &request, None)
                .await?
        };
        if routed.reused {
            reused_steps += 1;
        }
        if let Some(usage) = routed.answer.usage {
            prompt_tokens += usage.prompt_tokens;
            completion_tokens += usage.completion_tokens;
        }
        if routed.answer.tool_calls.is_empty() || final_step {
            last = Some(routed);
            break;
        }
        let calls = routed.answer.tool_calls.clone();
        messages.push(ChatCompletionRequestMessage::Assistant(
            ChatCompletionRequestAssistantMessage {
                content: (!routed.answer.content.is_empty()).then(|| {
                    ChatCompletionRequestAssistantMessageContent::Text(
                        routed.answer.content.clone(),
                    )
                }),
                tool_calls: Some(
                    calls
                        .iter()
                        .map(|c| {
                            ChatCompletionMessageToolCalls::Function(
                                ChatCompletionMessageToolCall {
                                    id: c.id.clone(),
                                    function: FunctionCall {
                                        name: c.name.clone(),
                                        arguments: c.arguments.clone(),
                                    },
                                },
                            )
                        })
                        .collect(),
                ),
                ..Default::default()
            },
        ));
        doing = calls
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        for (i, call) in calls.iter().enumerate() {
            let key = run
                .scope
                .map(|scope| CallKey::new(scope, step as u32, i as u32 + 1));
            let outcome = match recorded(llm, key.as_ref())? {
                Some(outcome) => outcome,
                None => {
                    let outcome = if call.name == "ask_agent" {
                        let sent = run
                            .scope
                            .map(|s| CallKey::new(s, step as u32, ASK_AGENT_SENT + i as u32));
                        ask_agent(llm, sent.as_ref(), tools, &call.arguments).await?
                    } else {
                        run_tool(tools, &call.name, &call.arguments).await
                    };
                    record(llm, key.as_ref(), &outcome)?;
                    outcome
                }
            };
            let (result, error) = match outcome {
                Ok(value) => {
                    collect_locations(&value, None, None, &mut seen);
                    (truncate(value.to_string()), None)
                }
                Err(e) => (json!({"error": e}).to_string(), Some(e)),
            };
            used.push(ToolUse {
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                error,
            });
            messages.push(ChatCompletionRequestMessage::Tool(
                ChatCompletionRequestToolMessage {
                    content: ChatCompletionRequestToolMessageContent::Text(result),
                    tool_call_id: call.id.clone(),
                },
            ));
        }
        last = Some(routed);
    }
    let routed = last.ok_or_else(|| crate::Error::Invalid("the question is empty".to_string()))?;
    let text = routed.answer.content.trim().to_string();
    let (mut citations, mut unverified) = (Vec::new(), Vec::new());
    for cited in citations_in(&text) {
        if seen.contains(&cited) || in_a_definition(tools.code, &cited).await {
            citations.push(cited);
        } else {
            unverified.push(cited);
        }
    }
    citations.dedup();
    unverified.dedup();
    Ok(AskAnswer {
        text,
        model: routed.answer.model.clone(),
        tag: routed.tag.as_str().to_string(),
        reason: routed.reason,
        fell_back: routed.fell_back,
        steps,
        reused_steps,
        history_turns: history.len(),
        tools: used,
        citations,
        unverified,
        prompt_tokens,
        completion_tokens,
    })
}

/// The tool result recorded under `key`, if there is one. Tool results are durable with the next step's sync; a
/// tool that runs again after a crash gives the same answer or, for `remember` and `ask_agent`, finds what it
/// wrote or sent the first time.
fn recorded(llm: &Llm, key: Option<&CallKey>) -> crate::Result<Option<Result<Value, String>>> {
    let Some((store, key)) = llm.calls().zip(key) else {
        return Ok(None);
    };
    Ok(store
        .get(key)?
        .and_then(|r| serde_json::from_str::<Result<Value, String>>(&r.json).ok()))
}

fn record(llm: &Llm, key: Option<&CallKey>, outcome: &Result<Value, String>) -> crate::Result<()> {
    if let Some((store, key)) = llm.calls().zip(key) {
        let json = serde_json::to_string(outcome)
            .map_err(|e| crate::Error::Invalid(format!("recording a tool's result: {e}")))?;
        store.put(key, "tool", json)?;
    }
    Ok(())
}

/// `ask_agent`: sends the question to the other agent as an `ask` message and waits for its reply. The message
/// sent is recorded under `sent` (and synced) once it is accepted, so that after a restart the wait goes on for
/// the same message's reply (found in history if it came meanwhile) instead of asking again.
async fn ask_agent(
    llm: &Llm,
    sent: Option<&CallKey>,
    tools: &Tools<'_>,
    arguments: &str,
) -> crate::Result<Result<Value, String>> {
    let Some(link) = &tools.agents else {
        return Ok(Err("ask_agent is not offered here".to_string()));
    };
    let args: Value = match serde_json::from_str(arguments) {
        Ok(args) => args,
        Err(e) => return Ok(Err(format!("the arguments are not JSON: {e}"))),
    };
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
    let (Some(agent), Some(question)) = (text("agent"), text("question")) else {
        return Ok(Err("`agent` and `question` are required".to_string()));
    };
    let Ok(to) = AgentName::new(&agent) else {
        return Ok(Err(format!("`{agent}` is not an agent's name")));
    };
    if to == link.me {
        return Ok(Err("an agent cannot ask itself".to_string()));
    }
    if link.ums.entry(to.as_str()).is_none() {
        let names: Vec<String> = link
            .ums
            .entries()
            .iter()
            .map(|e| e.name.to_string())
            .filter(|n| n != link.me.as_str())
            .collect();
        return Ok(Err(format!(
            "there is no agent `{agent}`; the others are {}",
            names.join(", ")
        )));
    }
    let timeout = args
        .get("timeout_s")
        .and_then(Value::as_u64)
        .map_or(ASK_AGENT_TIMEOUT, |s| {
            std::time::Duration::from_secs(s.clamp(1, 600))
        });
    let phone = crate::phone::CellPhone::new(link.ums.clone(), Address::agent(&link.me));
    let body = Body::from_value(&json!({
        "question": question,
        "person": link.person,
        "frontend": link.frontend,
    }));
    let reply = phone
        .request(&to, "ask", body, timeout, llm.calls().zip(sent))
        .await?;
    let Some(reply) = reply else {
        return Ok(Err(format!(
            "{agent} did not answer within {} s",
            timeout.as_secs()
        )));
    };
    let body: Value = serde_json::from_str(reply.envelope.body.as_json())
        .unwrap_or_else(|_| Value::String(reply.envelope.body.as_json().to_string()));
    Ok(Ok(
        match serde_json::from_value::<AskAnswer>(body.clone()) {
            Ok(answer) => json!({
                "agent": agent,
                "answer": answer.text,
                "model": answer.model,
                "citations": answer.citations,
            }),
            Err(_) => json!({"agent": agent, "answer": body}),
        },
    ))
}

/// Runs one tool; its result as JSON, or an error text the model can read.
async fn run_tool(tools: &Tools<'_>, name: &str, arguments: &str) -> Result<Value, String> {
    let args: Value = serde_json::from_str(if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    })
    .map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let text = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
    let required = |key: &str| text(key).ok_or_else(|| format!("`{key}` is required"));
    let code = tools.code;
    let to_value = |v: Result<Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match name {
        "search_code" => {
            let hits = code
                .search(crate::code::SearchRequest {
                    query: required("query")?,
                    lang: None,
                    path: None,
                    repo: text("repo"),
                    limit: Some(TOOL_LIMIT),
                })
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(hits))
        }
        "find_symbol" => {
            let hits = code
                .symbol(&required("name")?, None, text("repo"), Some(TOOL_LIMIT))
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(hits))
        }
        "refs" => {
            let refs = code
                .refs(&required("name")?, None, text("repo"), Some(TOOL_LIMIT))
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(refs))
        }
        "outline" => {
            let (repo, path, definitions) = code
                .outline(text("repo"), &required("path")?)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"repo": repo, "path": path, "definitions": definitions}))
        }
        "deps" => {
            let deps = code
                .deps(text("repo"), &required("path")?, 1)
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(deps))
        }
        "recall" => {
            let memory = tools
                .memory
                .ok_or_else(|| "the memory is not available".to_string())?;
            let recalled = memory
                .recall(crate::memory::RecallQuery {
                    words: required("query")?,
                    filters: Default::default(),
                    limit: TOOL_LIMIT,
                })
                .await
                .map_err(|e| e.to_string())?;
            to_value(serde_json::to_value(recalled))
        }
        "remember" => {
            let memory = tools
                .memory
                .ok_or_else(|| "the memory is not available".to_string())?;
            let who = tools
                .remember_as
                .as_ref()
                .ok_or_else(|| "remember is not offered here".to_string())?;
            let text = required("text")?;
            let kind = match text_kind(args.get("kind").and_then(Value::as_str)) {
                Some(kind) => kind,
                None => return Err("`kind` is one of note, decision, fact, summary".to_string()),
            };
            // Run again after a crash, it finds the entry it wrote instead of writing a second.
            if let Some(entry) = memory
                .written(&who.author, &who.links, &text)
                .map_err(|e| e.to_string())?
            {
                return Ok(json!({"remembered": entry.id.to_string(), "again": true}));
            }
            let entry = memory
                .remember(crate::memory::NewEntry {
                    author: who.author.clone(),
                    kind,
                    text,
                    tags: vec!["ask".to_string()],
                    links: who.links.clone(),
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({"remembered": entry.id.to_string()}))
        }
        other => Err(format!(
            "there is no tool `{other}`; the tools are search_code, find_symbol, refs, outline, deps, recall, remember and ask_agent"
        )),
    }
}

/// The entry kind `remember` was given (a note when none).
fn text_kind(kind: Option<&str>) -> Option<dreamos_runtime::memory::EntryKind> {
    use dreamos_runtime::memory::EntryKind;
    match kind.map(str::trim).unwrap_or("note") {
        "" | "note" => Some(EntryKind::Note),
        "decision" => Some(EntryKind::Decision),
        "fact" => Some(EntryKind::Fact),
        "summary" => Some(EntryKind::Summary),
        _ => None,
    }
}

/// Cuts a tool's result to [`MAX_TOOL_RESULT`] bytes, on a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > MAX_TOOL_RESULT {
        let mut cut = MAX_TOOL_RESULT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …(cut)");
    }
    text
}

/// Every `(repo, path, line)` a tool's result shows: objects with `line` (and `end_line`) under the nearest
/// `repo` and `path`.
fn collect_locations(
    value: &Value,
    repo: Option<&str>,
    path: Option<&str>,
    out: &mut BTreeSet<Citation>,
) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect_locations(item, repo, path, out);
            }
        }
        Value::Object(map) => {
            let repo = map.get("repo").and_then(Value::as_str).or(repo);
            let path = map.get("path").and_then(Value::as_str).or(path);
            if let (Some(repo), Some(path), Some(line)) =
                (repo, path, map.get("line").and_then(Value::as_u64))
            {
                let end = map
                    .get("end_line")
                    .and_then(Value::as_u64)
                    .unwrap_or(line)
                    .clamp(line, line + 2_000);
                for line in line..=end {
                    out.insert(Citation {
                        repo: repo.to_string(),
                        path: path.to_string(),
                        line: line as u32,
                    });
                }
            }
            for child in map.values() {
                collect_locations(child, repo, path, out);
            }
        }
        _ => {}
    }
}

/// The `repo:path:line` locations in a text.
pub fn citations_in(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || "()[]<>,;\"'`".contains(c)) {
        let token = token.trim_end_matches(['.', ':', '!', '?']);
        let mut parts = token.rsplitn(2, ':');
        let (Some(line), Some(rest)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(line) = line.parse::<u32>() else {
            continue;
        };
        let Some((repo, path)) = rest.split_once(':') else {
            continue;
        };
        let repo_ok = !repo.is_empty()
            && repo
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c));
        // Paths are relative to their repository: `//host` is a URL.
        if repo_ok && !path.is_empty() && !path.starts_with('/') && !path.contains(':') && line > 0
        {
            out.push(Citation {
                repo: repo.to_string(),
                path: path.to_string(),
                line,
            });
        }
    }
    out
}

/// Whether the index has the file and the line falls inside one of its definitions.
async fn in_a_definition(code: &Code, cited: &Citation) -> bool {
    match code.outline(Some(cited.repo.clone()), &cited.path).await {
        Ok((_, _, definitions)) => definitions
            .iter()
            .any(|d| d.line <= cited.line && cited.line <= d.end_line),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_found_in_prose_and_punctuation() {
        let text = "See tinyrepo:src/lib.rs:12, and (tinyrepo:src/parser/mod.rs:3). Not http://x:80 or a:b.";
        let found: Vec<String> = citations_in(text).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            found,
            vec!["tinyrepo:src/lib.rs:12", "tinyrepo:src/parser/mod.rs:3"]
        );
    }

    #[test]
    fn locations_come_from_nested_tool_results() {
        let result = json!({"repo": "r", "path": "a.rs", "definitions": [{"name": "f", "line": 3, "end_line": 5}]});
        let mut seen = BTreeSet::new();
        collect_locations(&result, None, None, &mut seen);
        let lines: Vec<u32> = seen.iter().map(|c| c.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        let hits = json!([{"repo": "r", "path": "b.rs", "line": 9}]);
        collect_locations(&hits, None, None, &mut seen);
        assert!(seen.contains(&Citation {
            repo: "r".to_string(),
            path: "b.rs".to_string(),
            line: 9
        }));
    }
}
