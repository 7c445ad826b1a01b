//! The command model shared by every frontend: names, arguments, required roles, and parsing of console lines.
//!
//! A console line such as `/send agent-2 hello --priority high` and a Discord slash command with the same options
//! both become one [`Command`]. The table [`COMMANDS`] is the single list of what exists; `/help` and the
//! console's completion are generated from it, and the Discord frontend registers its slash commands from it.

use std::fmt;

use dreamos_agents::{
    code::SearchRequest,
    message::{Channel, Priority},
};
use dreamos_runtime::config::Role;

/// One command of the table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    /// The least role that may run it.
    pub role: Role,
}

/// Every command, in the order `/help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        usage: "/help [COMMAND]",
        summary: "list the commands, or explain one",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "status",
        usage: "/status",
        summary: "the swarm at a glance: agents, queues, counters, messages",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "agents",
        usage: "/agents",
        summary: "every agent with its status, skills and groups",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "agent",
        usage: "/agent spawn|stop|restart|pause|resume NAME [--skills a,b] [--groups g,h]",
        summary: "start, stop, restart, pause or resume an agent (--skills/--groups with spawn)",
        role: Role::Captain,
    },
    CommandSpec {
        name: "send",
        usage: "/send AGENT TEXT [--priority low|normal|high|urgent] [--kind KIND] [--wait]",
        summary: "send a message to an agent (or group:NAME); --wait also waits for the reply",
        role: Role::Operator,
    },
    CommandSpec {
        name: "broadcast",
        usage: "/broadcast TEXT [--group GROUP] [--priority P]",
        summary: "order every agent (or one group) on the captain channel; urgent by default",
        role: Role::Captain,
    },
    CommandSpec {
        name: "history",
        usage: "/history [--agent A] [--channel cell|captain] [--kind K] [--since TIME] [--until TIME] [--text T] [--limit N] [--before SEQ]",
        summary: "messages newest first; TIME is RFC 3339 or a duration ago (10m, 2h); page on with --before",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "index",
        usage: "/index PATH [--name NAME]",
        summary: "index (incrementally) the repository at PATH, which must be under [scanner] allowed_roots",
        role: Role::Captain,
    },
    CommandSpec {
        name: "search",
        usage: "/search QUERY [--lang L] [--path GLOB] [--repo R] [--limit N]",
        summary: "search indexed code: foo lang:rust path:src/*.rs repo:name sym:Foo \"exact phrase\" /regex/ case:yes",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "symbol",
        usage: "/symbol NAME [--kind K] [--repo R] [--limit N]",
        summary: "find definitions by name: exact, then prefix, then fuzzy",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "outline",
        usage: "/outline FILE [--repo R]",
        summary: "the definitions of a file (a path on disk, or relative to its repository)",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "deps",
        usage: "/deps FILE [--repo R] [--depth N]",
        summary: "what a file imports and what imports it, N steps deep",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "repos",
        usage: "/repos",
        summary: "the repositories in the code index",
        role: Role::Viewer,
    },
    CommandSpec {
        name: "deadletters",
        usage: "/deadletters [--limit N] [--before SEQ]",
        summary: "messages that failed too often, newest first",
        role: Role::Viewer,
    },
];

pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
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
}

impl AgentAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentAction::Spawn => "spawn",
            AgentAction::Stop => "stop",
            AgentAction::Restart => "restart",
            AgentAction::Pause => "pause",
            AgentAction::Resume => "resume",
        }
    }
}

/// A parsed command, ready to run.
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
    Repos,
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
            Command::Repos => "repos",
        }
    }

    /// The least role that may run this command.
    pub fn role(&self) -> Role {
        spec(self.name()).map_or(Role::Captain, |s| s.role)
    }
}

/// Why a line is not a command. `kind` is stable for scripts; `message` says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: &'static str,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err(kind: &'static str, message: String) -> ParseError {
    ParseError { kind, message }
}

/// A word of the line; quoted words are never options. `raw` is the word as typed, quotes included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    raw: String,
    quoted: bool,
}

/// Splits a line into words: spaces separate, '…' and "…" group (a backslash escapes inside double quotes).
fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(tokens);
        };
        let mut text = String::new();
        let mut raw = String::new();
        let mut quoted = false;
        let _ = first;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            raw.push(c);
            match c {
                '"' | '\'' => {
                    quoted = true;
                    let close = c;
                    loop {
                        let next = chars.next();
                        if let Some(ch) = next {
                            raw.push(ch);
                        }
                        match next {
                            Some(ch) if ch == close => break,
                            Some('\\') if close == '"' => match chars.next() {
                                Some(escaped) => {
                                    raw.push(escaped);
                                    text.push(escaped)
                                }
                                None => break,
                            },
                            Some(ch) => text.push(ch),
                            None => {
                                return Err(err(
                                    "invalid_argument",
                                    format!("unclosed {close} quote: close it, or escape it with a backslash"),
                                ))
                            }
                        }
                    }
                }
                c => text.push(c),
            }
        }
        tokens.push(Token { text, raw, quoted });
    }
}

/// The arguments of one command, consumed as the parser asks for them.
struct Args {
    command: &'static str,
    positionals: Vec<String>,
    /// The positionals as typed (quotes kept), for commands whose argument is a query.
    raw: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    /// Separates `--name value`, `--name=value` and `--flag` from positionals. `flags` take no value.
    fn new(command: &'static str, tokens: Vec<Token>, flags: &[&str]) -> Result<Args, ParseError> {
        let mut positionals = Vec::new();
        let mut raw = Vec::new();
        let mut options = Vec::new();
        let mut tokens = tokens.into_iter();
        let mut literal = false;
        while let Some(token) = tokens.next() {
            if literal || token.quoted || !token.text.starts_with("--") {
                positionals.push(token.text);
                raw.push(token.raw);
                continue;
            }
            if token.text == "--" {
                literal = true;
                continue;
            }
            let body = &token.text[2..];
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None if flags.contains(&body) => (body.to_string(), None),
                None => {
                    let value = tokens.next().map(|t| t.text);
                    (body.to_string(), value)
                }
            };
            options.push((name, value));
        }
        Ok(Args {
            command,
            positionals,
            raw,
            options,
        })
    }

    fn usage(&self) -> &'static str {
        spec(self.command).map_or("", |s| s.usage)
    }

    fn positional(&mut self, what: &str) -> Result<String, ParseError> {
        if self.positionals.is_empty() {
            return Err(err(
                "missing_argument",
                format!("/{} needs {what}; usage: {}", self.command, self.usage()),
            ));
        }
        self.raw.remove(0);
        Ok(self.positionals.remove(0))
    }

    /// Every remaining positional word as typed, quotes kept, joined by spaces: a query's own syntax.
    fn rest_raw(&mut self, what: &str) -> Result<String, ParseError> {
        if self.raw.is_empty() {
            return Err(err(
                "missing_argument",
                format!("/{} needs {what}; usage: {}", self.command, self.usage()),
            ));
        }
        self.positionals.clear();
        Ok(std::mem::take(&mut self.raw).join(" "))
    }

    /// Every remaining positional word, joined by spaces.
    fn rest(&mut self, what: &str) -> Result<String, ParseError> {
        if self.positionals.is_empty() {
            return Err(err(
                "missing_argument",
                format!("/{} needs {what}; usage: {}", self.command, self.usage()),
            ));
        }
        self.raw.clear();
        Ok(std::mem::take(&mut self.positionals).join(" "))
    }

    fn option(&mut self, name: &str) -> Result<Option<String>, ParseError> {
        match self.options.iter().position(|(n, _)| n == name) {
            None => Ok(None),
            Some(i) => match self.options.remove(i) {
                (_, Some(value)) => Ok(Some(value)),
                (_, None) => Err(err(
                    "missing_argument",
                    format!("--{name} needs a value; usage: {}", self.usage()),
                )),
            },
        }
    }

    fn flag(&mut self, name: &str) -> Result<bool, ParseError> {
        match self.options.iter().position(|(n, _)| n == name) {
            None => Ok(false),
            Some(i) => match self.options.remove(i) {
                (_, None) => Ok(true),
                (_, Some(value)) => Err(err(
                    "unexpected_argument",
                    format!("--{name} takes no value (got `{value}`)"),
                )),
            },
        }
    }

    fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, ParseError> {
        match self.option(name)? {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| {
                err(
                    "invalid_argument",
                    format!("--{name} must be {what}, not `{value}`"),
                )
            }),
        }
    }

    fn priority(&mut self) -> Result<Option<Priority>, ParseError> {
        match self.option("priority")? {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|message| err("invalid_argument", message)),
        }
    }

    fn list(&mut self, name: &str) -> Result<Option<Vec<String>>, ParseError> {
        Ok(self.option(name)?.map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }))
    }

    /// Anything not consumed is an error naming it.
    fn finish(self) -> Result<(), ParseError> {
        if let Some((name, _)) = self.options.first() {
            return Err(err(
                "unexpected_argument",
                format!(
                    "/{} has no option --{name}; usage: {}",
                    self.command,
                    self.usage()
                ),
            ));
        }
        if let Some(extra) = self.positionals.first() {
            return Err(err(
                "unexpected_argument",
                format!(
                    "unexpected `{extra}` for /{}; usage: {}",
                    self.command,
                    self.usage()
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a console line such as `/send agent-2 hello --priority high`.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(err(
            "unknown_command",
            format!("`{line}` is not a command: commands start with '/', such as /send agent-1 hello; /help lists them"),
        ));
    };
    let mut tokens = tokenize(rest)?;
    if tokens.is_empty() {
        return Err(err(
            "unknown_command",
            "a command name must follow '/'; /help lists them".to_string(),
        ));
    }
    let name = tokens.remove(0).text;
    let Some(spec) = spec(&name) else {
        let names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        return Err(err(
            "unknown_command",
            format!(
                "unknown command /{name}; the commands are /{}",
                names.join(", /")
            ),
        ));
    };
    let command = spec.name;
    let mut args = Args::new(command, tokens, &["wait"])?;
    let parsed = match command {
        "help" => Command::Help {
            topic: if args.positionals.is_empty() {
                None
            } else {
                Some(args.positional("a COMMAND")?)
            },
        },
        "status" => Command::Status,
        "agents" => Command::Agents,
        "agent" => {
            let action = match args
                .positional("an action (spawn, stop, restart, pause or resume)")?
                .as_str()
            {
                "spawn" => AgentAction::Spawn,
                "stop" => AgentAction::Stop,
                "restart" => AgentAction::Restart,
                "pause" => AgentAction::Pause,
                "resume" => AgentAction::Resume,
                other => {
                    return Err(err(
                        "invalid_argument",
                        format!(
                            "unknown action `{other}`: use spawn, stop, restart, pause or resume"
                        ),
                    ))
                }
            };
            let name = args.positional("an agent NAME")?;
            let (skills, groups) = if action == AgentAction::Spawn {
                (args.list("skills")?, args.list("groups")?)
            } else {
                (None, None)
            };
            Command::Agent {
                action,
                name,
                skills,
                groups,
            }
        }
        "send" => {
            let priority = args.priority()?.unwrap_or(Priority::Normal);
            let kind = args.option("kind")?;
            let wait = args.flag("wait")?;
            let to = args.positional("an AGENT")?;
            let text = args.rest("a TEXT to send")?;
            Command::Send {
                to,
                text,
                priority,
                kind,
                wait,
            }
        }
        "broadcast" => {
            let priority = args.priority()?.unwrap_or(Priority::Urgent);
            let group = args.option("group")?;
            let text = args.rest("a TEXT to broadcast")?;
            Command::Broadcast {
                text,
                group,
                priority,
            }
        }
        "history" => Command::History(HistoryArgs {
            agent: args.option("agent")?,
            channel: match args.option("channel")? {
                None => None,
                Some(value) => Some(value.parse().map_err(|m| err("invalid_argument", m))?),
            },
            kind: args.option("kind")?,
            since: args.option("since")?,
            until: args.option("until")?,
            text: args.option("text")?,
            limit: args.parsed("limit", "a positive number")?,
            before: args.parsed("before", "a sequence number")?,
        }),
        "deadletters" => Command::DeadLetters {
            limit: args.parsed("limit", "a positive number")?,
            before: args.parsed("before", "a sequence number")?,
        },
        "index" => Command::Index {
            name: args.option("name")?,
            path: args.positional("a PATH to index")?,
        },
        "search" => Command::Search(SearchRequest {
            lang: args.option("lang")?,
            path: args.option("path")?,
            repo: args.option("repo")?,
            limit: args.parsed("limit", "a positive number")?,
            query: args.rest_raw("a QUERY")?,
        }),
        "symbol" => Command::Symbol {
            kind: args.option("kind")?,
            repo: args.option("repo")?,
            limit: args.parsed("limit", "a positive number")?,
            name: args.positional("a symbol NAME")?,
        },
        "outline" => Command::Outline {
            repo: args.option("repo")?,
            file: args.positional("a FILE")?,
        },
        "deps" => Command::Deps {
            repo: args.option("repo")?,
            depth: args.parsed("depth", "a number of steps")?,
            file: args.positional("a FILE")?,
        },
        "repos" => Command::Repos,
        other => {
            return Err(err(
                "unknown_command",
                format!("/{other} is listed but has no parser"),
            ))
        }
    };
    args.finish()?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: Result<Command, &str>) {
        match (parse(line), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
            (Err(got), Err(kind)) => assert_eq!(got.kind, kind, "{line}: {}", got.message),
            (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
        }
    }

    fn send(to: &str, text: &str, priority: Priority, kind: Option<&str>, wait: bool) -> Command {
        Command::Send {
            to: to.into(),
            text: text.into(),
            priority,
            kind: kind.map(Into::into),
            wait,
        }
    }

    #[test]
    fn parses_commands() {
        check("/status", Ok(Command::Status));
        check("  /agents  ", Ok(Command::Agents));
        check(
            "/help send",
            Ok(Command::Help {
                topic: Some("send".into()),
            }),
        );
        check(
            "/send agent-2 hello world",
            Ok(send(
                "agent-2",
                "hello world",
                Priority::Normal,
                None,
                false,
            )),
        );
        check(
            "/send agent-2 hello --priority urgent --kind report --wait",
            Ok(send(
                "agent-2",
                "hello",
                Priority::Urgent,
                Some("report"),
                true,
            )),
        );
        check(
            "/send agent-1 \"use --force\" now",
            Ok(send(
                "agent-1",
                "use --force now",
                Priority::Normal,
                None,
                false,
            )),
        );
        check(
            "/send agent-1 -- --literal text",
            Ok(send(
                "agent-1",
                "--literal text",
                Priority::Normal,
                None,
                false,
            )),
        );
        check(
            "/broadcast all hands --group crew",
            Ok(Command::Broadcast {
                text: "all hands".into(),
                group: Some("crew".into()),
                priority: Priority::Urgent,
            }),
        );
        check(
            "/agent spawn agent-9 --skills ping,report --groups a",
            Ok(Command::Agent {
                action: AgentAction::Spawn,
                name: "agent-9".into(),
                skills: Some(vec!["ping".into(), "report".into()]),
                groups: Some(vec!["a".into()]),
            }),
        );
        check(
            "/history --agent agent-1 --channel captain --limit 5 --before=10",
            Ok(Command::History(HistoryArgs {
                agent: Some("agent-1".into()),
                channel: Some(Channel::Captain),
                limit: Some(5),
                before: Some(10),
                ..HistoryArgs::default()
            })),
        );
        check(
            "/deadletters",
            Ok(Command::DeadLetters {
                limit: None,
                before: None,
            }),
        );
    }

    #[test]
    fn rejects_bad_lines_with_a_kind() {
        check("/frobnicate", Err("unknown_command"));
        check("send agent-1 hi", Err("unknown_command"));
        check("/", Err("unknown_command"));
        check("/send", Err("missing_argument"));
        check("/send agent-1", Err("missing_argument"));
        check("/send agent-1 hi --priority asap", Err("invalid_argument"));
        check("/send agent-1 hi --priority", Err("missing_argument"));
        check("/send agent-1 hi --colour red", Err("unexpected_argument"));
        check("/send agent-1 hi --wait=yes", Err("unexpected_argument"));
        check("/status now", Err("unexpected_argument"));
        check("/agent explode agent-1", Err("invalid_argument"));
        check("/agent stop", Err("missing_argument"));
        check("/agent stop agent-1 agent-2", Err("unexpected_argument"));
        check("/history --limit lots", Err("invalid_argument"));
        check("/history --channel radio", Err("invalid_argument"));
        check("/send agent-1 \"unclosed", Err("invalid_argument"));
        check("/search", Err("missing_argument"));
        check("/index", Err("missing_argument"));
        check("/outline a.rs b.rs", Err("unexpected_argument"));
        check("/deps a.rs --depth deep", Err("invalid_argument"));
    }

    #[test]
    fn every_command_has_a_parser_and_a_usage_naming_it() {
        for spec in COMMANDS {
            assert!(
                spec.usage.starts_with(&format!("/{}", spec.name)),
                "{spec:?}"
            );
            // Parsing the bare name either works or asks for an argument: it never hits the fallback arm.
            if let Err(e) = parse(&format!("/{}", spec.name)) {
                assert_eq!(e.kind, "missing_argument", "/{}: {}", spec.name, e.message);
            }
        }
    }
}
