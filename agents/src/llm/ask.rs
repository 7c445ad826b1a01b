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
use dreamos_runtime::config::ModelTag;
use serde::Serialize;
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
#[derive(Debug, Clone, Serialize)]
pub struct ToolUse {
    pub name: String,
    pub arguments: String,
    /// `None` when it ran; the error otherwise (the model saw it too).
    pub error: Option<String>,
}

/// A `repo:path:line` the answer cites.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct AskAnswer {
    pub text: String,
    /// The model that gave the final answer, the tag and why.
    pub model: String,
    pub tag: &'static str,
    pub reason: String,
    /// Models that failed before, with their errors.
    pub fell_back: Vec<(String, String)>,
    pub steps: usize,
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
}

fn tool_specs(request: ChatRequest, memory: bool) -> ChatRequest {
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
    request
}

/// Answers `question` for `caller`: see the module's doc.
pub async fn ask(
    llm: &Llm,
    tools: &Tools<'_>,
    caller: &Caller,
    question: &str,
    tag: Option<ModelTag>,
) -> crate::Result<AskAnswer> {
    let base = ChatRequest::default().system(SYSTEM).user(question);
    let mut messages = base.messages.clone();
    let mut used = Vec::new();
    let mut seen: BTreeSet<Citation> = BTreeSet::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    let mut last: Option<Routed> = None;
    let mut steps = 0;
    for step in 0..MAX_STEPS {
        steps = step + 1;
        let final_step = step + 1 == MAX_STEPS;
        let mut request = ChatRequest {
            messages: messages.clone(),
            ..ChatRequest::default()
        };
        if !final_step {
            request = tool_specs(request, tools.memory.is_some());
        }
        let routed = llm
            .chat_routed(caller, question, tag, &request, None)
            .await?;
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
        for call in calls {
            let (result, error) = match run_tool(tools, &call.name, &call.arguments).await {
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
        tag: routed.tag.as_str(),
        reason: routed.reason,
        fell_back: routed.fell_back,
        steps,
        tools: used,
        citations,
        unverified,
        prompt_tokens,
        completion_tokens,
    })
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
        other => Err(format!(
            "there is no tool `{other}`; the tools are search_code, find_symbol, refs, outline, deps and recall"
        )),
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
