//! The command model shared by every frontend, declared once in [`table::COMMANDS`].
//!
//! A tour:
//! - [`spec`]: what a declaration says (commands, subcommands, options, kinds, defaults, autocomplete sources).
//! - [`table`]: the declarations themselves.
//! - [`parse`]: a console line → an [`Invocation`] (the options by name, each value checked).
//! - [`complete`]: Tab completion of a console line: commands, subcommands, options and their values.
//! - here: [`Invocation`] (also built from a Discord interaction's options by the Discord frontend), its
//!   canonical text for the audit log, and its conversion into the typed [`Command`] that a
//!   [`crate::session::Session`] runs.
//!
//! Every frontend goes line or interaction → `Invocation` → `Command`, so checks, defaults and errors are the same
//! everywhere.

pub mod complete;
pub mod parse;
pub mod spec;
pub mod table;

use std::fmt;

use dreamos_agents::{
    code::SearchRequest,
    message::{check_kind, Channel, Priority},
};
use dreamos_runtime::config::{Config, Role};

pub use self::{
    parse::parse,
    spec::{CommandSpec, OptionKind, OptionSpec, Source, SubcommandSpec, Takes},
    table::{spec, COMMANDS},
};

/// Why a line or an interaction is not a command. `kind` is stable for scripts; `message` says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> ParseError {
        ParseError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The most characters of user input an error message repeats.
const ECHO_MAX: usize = 200;

/// User input as an error repeats it: at most [`ECHO_MAX`] characters.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(ECHO_MAX) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// The longest error message an answer carries, in characters.
const MESSAGE_MAX: usize = 1000;

/// An error message at most [`MESSAGE_MAX`] characters long.
pub(crate) fn clip_long(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_MAX) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// An option's value, checked against its declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Flag(bool),
}

/// A command with its options by name: what a console line or a Discord interaction asked for.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: &'static CommandSpec,
    pub sub: Option<&'static SubcommandSpec>,
    /// In declared order; only the options given.
    pub values: Vec<(&'static OptionSpec, Value)>,
}

impl PartialEq for Invocation {
    fn eq(&self, other: &Invocation) -> bool {
        self.command.name == other.command.name
            && self.sub.map(|s| s.name) == other.sub.map(|s| s.name)
            && self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|((a, x), (b, y))| a.name == b.name && x == y)
    }
}

/// Checks one value against its option's declaration: numbers and their bounds, choices, kinds.
pub fn check_value(
    option: &OptionSpec,
    text: String,
    config: &Config,
) -> Result<Value, ParseError> {
    match option.kind {
        OptionKind::Integer { min, max } => {
            let max = max.value(config);
            match text.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Value::Integer(n)),
                _ => Err(ParseError::new(
                    "invalid_argument",
                    format!(
                        "--{} must be a whole number between {min} and {max}, not `{}`",
                        option.name,
                        clip(&text)
                    ),
                )),
            }
        }
        OptionKind::Flag => match text.as_str() {
            "true" | "yes" => Ok(Value::Flag(true)),
            "false" | "no" => Ok(Value::Flag(false)),
            other => Err(ParseError::new(
                "invalid_argument",
                format!("--{} is yes or no, not `{}`", option.name, clip(other)),
            )),
        },
        OptionKind::Choice(words) => {
            if words.contains(&text.as_str()) {
                Ok(Value::Text(text))
            } else {
                Err(ParseError::new(
                    "invalid_argument",
                    format!(
                        "invalid {} `{}`: use {}",
                        option.name,
                        clip(&text),
                        parse::or_list(words)
                    ),
                ))
            }
        }
        OptionKind::Kind => {
            check_kind(&text).map_err(|why| ParseError::new("invalid_argument", clip(&why)))?;
            Ok(Value::Text(text))
        }
        _ => Ok(Value::Text(text)),
    }
}

impl Invocation {
    /// The name `/help` and answers use: `send`, or `agent` for `/agent spawn`.
    pub fn name(&self) -> &'static str {
        self.command.name
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .find(|(o, _)| o.name == name)
            .map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Text(text)) => Some(text.clone()),
            Some(Value::Integer(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    fn integer(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Integer(n)) => Some(*n),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Flag(true)))
    }

    fn list(&self, name: &str) -> Option<Vec<String>> {
        self.text(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    }

    /// A required value; the parser and the Discord conversion have already checked it is there.
    fn required(&self, name: &str) -> Result<String, ParseError> {
        self.text(name).ok_or_else(|| {
            ParseError::new(
                "missing_argument",
                format!("/{} needs {}", self.command.name, name.to_ascii_uppercase()),
            )
        })
    }

    /// The command as the console would type it, options in declared order: what the audit log records for every
    /// frontend. `/send agent-1 "hello there" --priority high --wait`.
    pub fn canonical(&self) -> String {
        let mut out = format!("/{}", self.command.name);
        if let Some(sub) = self.sub {
            out.push(' ');
            out.push_str(sub.name);
        }
        for (option, value) in &self.values {
            out.push(' ');
            let shown = match value {
                Value::Text(text) if option.takes == Takes::RawRest => text.clone(),
                Value::Text(text) => quote(text),
                Value::Integer(n) => n.to_string(),
                Value::Flag(_) => String::new(),
            };
            match (option.takes, value) {
                (Takes::Named, Value::Flag(true)) => out.push_str(&format!("--{}", option.name)),
                (Takes::Named, Value::Flag(false)) => {
                    out.push_str(&format!("--{}=no", option.name))
                }
                (Takes::Named, _) => out.push_str(&format!("--{} {shown}", option.name)),
                _ => out.push_str(&shown),
            }
        }
        out
    }
}

/// A word as the console reads it back: bare when it is one plain word, double-quoted otherwise.
fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with("--")
        && text
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '\'' && c != '\\');
    if plain {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The filters of `/history`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryArgs {
    pub agent: Option<String>,
    pub channel: Option<Channel>,
    pub kind: Option<String>,
    /// RFC 3339, or a duration ago (`10m`).
    pub since: Option<String>,
    pub until: Option<String>,
    pub text: Option<String>,
    pub limit: Option<usize>,
    pub before: Option<u64>,
}

/// What `/agent` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAction {
    Spawn,
    Stop,
    Restart,
    Pause,
    Resume,
    Purge,
}

impl AgentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentAction::Spawn => "spawn",
            AgentAction::Stop => "stop",
            AgentAction::Restart => "restart",
            AgentAction::Pause => "pause",
            AgentAction::Resume => "resume",
            AgentAction::Purge => "purge",
        }
    }
}

/// A parsed command, ready to run, with its defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help {
        topic: Option<String>,
    },
    Status,
    Agents,
    Agent {
        action: AgentAction,
        name: String,
        skills: Option<Vec<String>>,
        groups: Option<Vec<String>>,
    },
    Send {
        to: String,
        text: String,
        priority: Priority,
        kind: Option<String>,
        wait: bool,
    },
    Broadcast {
        text: String,
        group: Option<String>,
        priority: Priority,
    },
    History(HistoryArgs),
    DeadLetters {
        limit: Option<usize>,
        before: Option<u64>,
    },
    Index {
        path: String,
        name: Option<String>,
        wait: bool,
    },
    Search(SearchRequest),
    Symbol {
        name: String,
        kind: Option<String>,
        repo: Option<String>,
        limit: Option<usize>,
    },
    Outline {
        file: String,
        repo: Option<String>,
    },
    Deps {
        file: String,
        repo: Option<String>,
        depth: Option<u32>,
    },
    Refs {
        name: String,
        kind: Option<String>,
        repo: Option<String>,
        limit: Option<usize>,
    },
    Impact {
        target: String,
        repo: Option<String>,
        depth: Option<u32>,
        limit: Option<usize>,
    },
    Repos,
    Task(TaskCommand),
    Remember(RememberArgs),
    Recall(RecallArgs),
    Journal {
        agent: Option<String>,
        kind: Option<String>,
        limit: Option<usize>,
        before: Option<String>,
    },
    Forget(String),
    Ask {
        question: String,
        model: Option<String>,
        agent: Option<String>,
    },
    Usage {
        person: Option<String>,
        agent: Option<String>,
        since: Option<String>,
    },
}

/// `/remember`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RememberArgs {
    pub text: String,
    pub kind: Option<String>,
    pub tags: Vec<String>,
    pub tasks: Vec<String>,
    pub agents: Vec<String>,
    pub files: Vec<String>,
    pub messages: Vec<String>,
}

/// `/recall`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecallArgs {
    pub query: String,
    pub agent: Option<String>,
    pub author: Option<String>,
    pub kind: Option<String>,
    pub tags: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub task: Option<u64>,
    pub message: Option<String>,
    pub limit: Option<usize>,
}

/// `/task ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCommand {
    Create {
        skill: String,
        args: Option<String>,
        priority: Priority,
        after: Vec<String>,
        title: Option<String>,
        timeout: Option<String>,
        max_attempts: Option<u32>,
        approve: bool,
    },
    List {
        status: Option<String>,
        agent: Option<String>,
        limit: Option<usize>,
    },
    Show(u64),
    Pause(u64),
    Resume(u64),
    Cancel(u64),
    Retry(u64),
    Approve(u64),
    Reject(u64),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help { .. } => "help",
            Command::Status => "status",
            Command::Agents => "agents",
            Command::Agent { .. } => "agent",
            Command::Send { .. } => "send",
            Command::Broadcast { .. } => "broadcast",
            Command::History(_) => "history",
            Command::DeadLetters { .. } => "deadletters",
            Command::Index { .. } => "index",
            Command::Search(_) => "search",
            Command::Symbol { .. } => "symbol",
            Command::Outline { .. } => "outline",
            Command::Deps { .. } => "deps",
            Command::Refs { .. } => "refs",
            Command::Impact { .. } => "impact",
            Command::Repos => "repos",
            Command::Task(_) => "task",
            Command::Remember(_) => "remember",
            Command::Recall(_) => "recall",
            Command::Journal { .. } => "journal",
            Command::Usage { .. } => "usage",
            Command::Ask { .. } => "ask",
            Command::Forget(_) => "forget",
        }
    }

    /// The least role that may run this command.
    pub fn role(&self) -> Role {
        spec(self.name()).map_or(Role::Captain, |s| s.role)
    }

    /// The typed command an invocation asks for.
    pub fn from_invocation(inv: &Invocation) -> Result<Command, ParseError> {
        let priority = |default: Priority| -> Priority {
            inv.text("priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or(default)
        };
        let usize_of = |name: &str| inv.integer(name).map(|n| n as usize);
        Ok(match inv.command.name {
            "help" => Command::Help {
                topic: inv.text("command"),
            },
            "status" => Command::Status,
            "agents" => Command::Agents,
            "agent" => {
                let action =
                    match inv.sub.map(|s| s.name) {
                        Some("spawn") => AgentAction::Spawn,
                        Some("stop") => AgentAction::Stop,
                        Some("restart") => AgentAction::Restart,
                        Some("pause") => AgentAction::Pause,
                        Some("resume") => AgentAction::Resume,
                        Some("purge") => AgentAction::Purge,
                        _ => return Err(ParseError::new(
                            "missing_argument",
                            "/agent needs an action: spawn, stop, restart, pause, resume or purge",
                        )),
                    };
                Command::Agent {
                    action,
                    name: inv.required("name")?,
                    skills: inv.list("skills"),
                    groups: inv.list("groups"),
                }
            }
            "send" => Command::Send {
                to: inv.required("agent")?,
                text: inv.required("text")?,
                priority: priority(Priority::Normal),
                kind: inv.text("kind"),
                wait: inv.flag("wait"),
            },
            "broadcast" => Command::Broadcast {
                text: inv.required("text")?,
                group: inv.text("group"),
                priority: priority(Priority::Urgent),
            },
            "history" => Command::History(HistoryArgs {
                agent: inv.text("agent"),
                channel: inv.text("channel").and_then(|c| c.parse().ok()),
                kind: inv.text("kind"),
                since: inv.text("since"),
                until: inv.text("until"),
                text: inv.text("text"),
                limit: usize_of("limit"),
                before: inv.integer("before").map(|n| n as u64),
            }),
            "deadletters" => Command::DeadLetters {
                limit: usize_of("limit"),
                before: inv.integer("before").map(|n| n as u64),
            },
            "index" => Command::Index {
                path: inv.required("path")?,
                name: inv.text("name"),
                wait: inv.flag("wait"),
            },
            "search" => Command::Search(SearchRequest {
                query: inv.required("query")?,
                lang: inv.text("lang"),
                path: inv.text("path"),
                repo: inv.text("repo"),
                limit: usize_of("limit"),
            }),
            "symbol" => Command::Symbol {
                name: inv.required("name")?,
                kind: inv.text("kind"),
                repo: inv.text("repo"),
                limit: usize_of("limit"),
            },
            "outline" => Command::Outline {
                file: inv.required("file")?,
                repo: inv.text("repo"),
            },
            "deps" => Command::Deps {
                file: inv.required("file")?,
                repo: inv.text("repo"),
                depth: inv.integer("depth").map(|n| n as u32),
            },
            "refs" => Command::Refs {
                name: inv.required("name")?,
                kind: inv.text("kind"),
                repo: inv.text("repo"),
                limit: usize_of("limit"),
            },
            "impact" => Command::Impact {
                target: inv.required("target")?,
                repo: inv.text("repo"),
                depth: inv.integer("depth").map(|n| n as u32),
                limit: usize_of("limit"),
            },
            "repos" => Command::Repos,
            "task" => {
                let id = || -> Result<u64, ParseError> {
                    inv.integer("id").map(|n| n as u64).ok_or_else(|| {
                        ParseError::new(
                            "missing_argument",
                            "give the task's id, such as /task show 17",
                        )
                    })
                };
                Command::Task(match inv.sub.map(|s| s.name) {
                    Some("create") => TaskCommand::Create {
                        skill: inv.required("skill")?,
                        args: inv.text("args"),
                        priority: priority(Priority::Normal),
                        after: inv.list("after").unwrap_or_default(),
                        title: inv.text("title"),
                        timeout: inv.text("timeout"),
                        max_attempts: inv.integer("max-attempts").map(|n| n as u32),
                        approve: inv.flag("approve"),
                    },
                    Some("list") => TaskCommand::List {
                        status: inv.text("status"),
                        agent: inv.text("agent"),
                        limit: usize_of("limit"),
                    },
                    Some("show") => TaskCommand::Show(id()?),
                    Some("pause") => TaskCommand::Pause(id()?),
                    Some("resume") => TaskCommand::Resume(id()?),
                    Some("cancel") => TaskCommand::Cancel(id()?),
                    Some("retry") => TaskCommand::Retry(id()?),
                    Some("approve") => TaskCommand::Approve(id()?),
                    Some("reject") => TaskCommand::Reject(id()?),
                    _ => {
                        return Err(ParseError::new(
                            "missing_argument",
                            "/task needs an action: create, list, show, pause, resume, cancel, retry, approve or reject",
                        ))
                    }
                })
            }
            "remember" => Command::Remember(RememberArgs {
                text: inv.required("text")?,
                kind: inv.text("kind"),
                tags: inv.list("tags").unwrap_or_default(),
                tasks: inv.list("tasks").unwrap_or_default(),
                agents: inv.list("agents").unwrap_or_default(),
                files: inv.list("files").unwrap_or_default(),
                messages: inv.list("messages").unwrap_or_default(),
            }),
            "recall" => Command::Recall(RecallArgs {
                query: inv.required("query")?,
                agent: inv.text("agent"),
                author: inv.text("author"),
                kind: inv.text("kind"),
                tags: inv.list("tags").unwrap_or_default(),
                since: inv.text("since"),
                until: inv.text("until"),
                task: inv.integer("task").map(|n| n as u64),
                message: inv.text("message"),
                limit: usize_of("limit"),
            }),
            "journal" => Command::Journal {
                agent: inv.text("agent"),
                kind: inv.text("kind"),
                limit: usize_of("limit"),
                before: inv.text("before"),
            },
            "forget" => Command::Forget(inv.required("id")?),
            "ask" => Command::Ask {
                question: inv.required("question")?,
                model: inv.text("model"),
                agent: inv.text("agent"),
            },
            "usage" => Command::Usage {
                person: inv.text("person"),
                agent: inv.text("agent"),
                since: inv.text("since"),
            },
            other => {
                return Err(ParseError::new(
                    "unknown_command",
                    format!("/{other} is declared but has no conversion"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests;
