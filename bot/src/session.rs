//! Running commands for one person: role checks, execution against the swarm, audit, and the answer's data.
//!
//! Every frontend goes through [`Session::execute`] (the console by way of [`Session::run`], which parses a line),
//! so a command behaves the same in the console and in Discord: same checks, same errors, same typed answers, and
//! one audit entry written in one place. Internal errors are logged with an id; the answer shows only the id.

use std::time::Duration;

use crate::{
    answer::{
        AgentReply, AgentsReply, BroadcastReply, DeadLetterView, DeadLettersReply, EntryReply,
        EntryView, HelpEntry, HelpReply, HistoryReply, JournalReply, MessageView, OrderAck,
        OutlineReply, RecallHit, RecallReply, Reply, ReposReply, SearchReply, SendReply,
        SymbolReply, TaskReply, TasksReply, UsageReply,
    },
    command::{
        self, AgentAction, Command, HistoryArgs, Invocation, ParseError, RecallArgs, RememberArgs,
        TaskCommand, COMMANDS,
    },
};
use dreamos_agents::{
    events::{EventReceiver, RecvError},
    message::{Address, AgentName, Body, Millis, Priority, Seq},
    ControlVerb, Error as SwarmError, Principal, Swarm, SwarmEvent,
};
use dreamos_runtime::{
    audit::{AuditEntry, AuditOutcome},
    log::{HistoryQuery, StoredMessage},
    memory::EntryKind,
};

/// A failed command: `kind` is stable for scripts, `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub kind: String,
    pub message: String,
}

impl CommandError {
    fn new(kind: &str, message: impl Into<String>) -> CommandError {
        CommandError {
            kind: kind.to_string(),
            message: message.into(),
        }
    }
}

impl From<ParseError> for CommandError {
    fn from(e: ParseError) -> Self {
        CommandError::new(e.kind, e.message)
    }
}

impl From<SwarmError> for CommandError {
    fn from(e: SwarmError) -> Self {
        if e.is_internal() {
            let id = ulid::Ulid::new();
            tracing::error!(error_id = %id, error = %e, "internal error");
            CommandError::new(
                "internal",
                format!("internal error (id {id}); the log has the details"),
            )
        } else {
            // Whatever an error quotes of the input, it stays a readable size.
            CommandError::new(e.kind(), command::clip_long(&e.to_string()))
        }
    }
}

impl From<dreamos_runtime::Error> for CommandError {
    fn from(e: dreamos_runtime::Error) -> Self {
        SwarmError::from(e).into()
    }
}

/// A task manager's refusal as a command's error; a store failing underneath is internal (logged with an id).
fn task_error(e: dreamos_agents::tasks::ManagerError) -> CommandError {
    if e.kind() == "internal" {
        let id = ulid::Ulid::new();
        tracing::error!(error_id = %id, error = %e, "internal error");
        return CommandError::new(
            "internal",
            format!("internal error (id {id}); the log has the details"),
        );
    }
    CommandError::new(e.kind(), command::clip_long(&e.to_string()))
}

/// The answer to one command.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The command's name (`send`), or what was typed as a name when it is unknown.
    pub command: String,
    pub result: Result<Reply, CommandError>,
}

/// Told the id of a message that `/send --wait` is about to wait for, as soon as it is accepted.
pub type WaitObserver = std::sync::Arc<dyn Fn(dreamos_agents::message::MessageId) + Send + Sync>;

/// One person's session on one frontend.
#[derive(Clone)]
pub struct Session {
    swarm: Swarm,
    principal: Principal,
    frontend: &'static str,
    /// Who the audit log names: the console user, or a Discord user as `name (id)`.
    who: String,
    wait_observer: Option<WaitObserver>,
    /// The conversation `/ask` carries: the Discord channel (or thread), or this console session.
    conversation: String,
}

impl Session {
    pub fn new(swarm: Swarm, principal: Principal, frontend: &'static str) -> Session {
        let conversation = match crate::discord::outbox::parse_principal(&principal.name) {
            Some((_, channel)) => format!("discord:{channel}"),
            None => format!("{frontend}:{}:{}", principal.name, Millis::now().0),
        };
        Session {
            who: principal.name.clone(),
            swarm,
            principal,
            frontend,
            wait_observer: None,
            conversation,
        }
    }

    /// The same session, telling `observer` which message a `/send --wait` waits for (the Discord frontend shows
    /// that reply in the interaction instead of posting it again).
    pub fn with_wait_observer(mut self, observer: WaitObserver) -> Session {
        self.wait_observer = Some(observer);
        self
    }

    /// The same session, audited as `who`.
    pub fn with_who(mut self, who: String) -> Session {
        self.who = who;
        self
    }

    pub fn frontend(&self) -> &'static str {
        self.frontend
    }

    pub fn swarm(&self) -> &Swarm {
        &self.swarm
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Parses and runs a console line. A line that does not parse is audited as typed (clipped).
    pub async fn run(&self, line: &str) -> Answer {
        match command::parse(line, self.swarm.config()) {
            Ok(invocation) => self.execute(invocation).await,
            Err(err) => {
                let answer = Answer {
                    command: typed_name(line),
                    result: Err(err.into()),
                };
                self.audit(&command::clip(line.trim()), &answer);
                answer
            }
        }
    }

    /// Runs an invocation from any frontend: role check, execution, and the audit entry with the command's
    /// canonical text.
    pub async fn execute(&self, invocation: Invocation) -> Answer {
        let canonical = invocation.canonical();
        let answer = match Command::from_invocation(&invocation) {
            Ok(command) => self.execute_command(command).await,
            Err(err) => Answer {
                command: invocation.name().to_string(),
                result: Err(err.into()),
            },
        };
        self.audit(&canonical, &answer);
        answer
    }

    /// Answers an invocation with an error without running it (a frontend refused it), and audits that.
    pub fn refuse(&self, invocation: &Invocation, kind: &str, message: String) -> Answer {
        let answer = Answer {
            command: invocation.name().to_string(),
            result: Err(CommandError::new(kind, message)),
        };
        self.audit(&invocation.canonical(), &answer);
        answer
    }

    async fn execute_command(&self, command: Command) -> Answer {
        let name = command.name().to_string();
        let result = if self.principal.role < command.role() {
            Err(CommandError::new(
                "forbidden",
                format!(
                    "/{name} needs the {} role; you are {}",
                    command.role(),
                    self.principal.role
                ),
            ))
        } else {
            self.dispatch(command).await
        };
        Answer {
            command: name,
            result,
        }
    }

    fn audit(&self, line: &str, answer: &Answer) {
        let outcome = match &answer.result {
            Ok(_) => AuditOutcome::Ok,
            Err(e) => AuditOutcome::Error {
                kind: e.kind.clone(),
                message: e.message.clone(),
            },
        };
        let entry = AuditEntry {
            at: Millis::now(),
            who: self.who.clone(),
            role: self.principal.role,
            frontend: self.frontend.to_string(),
            command: line.to_string(),
            outcome,
        };
        if let Err(err) = self.swarm.record_audit(&entry) {
            tracing::error!(error = %err, "could not write the audit log");
        }
    }

    async fn dispatch(&self, command: Command) -> Result<Reply, CommandError> {
        match command {
            Command::Help { topic } => self.help(topic.as_deref()).map(Reply::Help),
            Command::Status => Ok(Reply::Status(self.swarm.status())),
            Command::Agents => Ok(Reply::Agents(AgentsReply {
                agents: self.swarm.agents(),
            })),
            Command::Agent {
                action,
                name,
                skills,
                groups,
            } => self.agent(action, &name, skills, groups).await,
            Command::Send {
                to,
                text,
                priority,
                kind,
                wait,
            } => self.send(&to, &text, priority, kind, wait).await,
            Command::Broadcast {
                text,
                group,
                priority,
            } => self.broadcast(&text, group, priority).await,
            Command::History(args) => self.history(args),
            Command::DeadLetters { limit, before } => self.dead_letters(limit, before),
            Command::Index { path, name, wait } => self.index(&path, name, wait).await,
            Command::Search(request) => {
                let hits = self.swarm.code().search(request).await?;
                Ok(Reply::Search(SearchReply { hits }))
            }
            Command::Symbol {
                name,
                kind,
                repo,
                limit,
            } => {
                let hits = self
                    .swarm
                    .code()
                    .symbol(&name, kind.as_deref(), repo, limit)
                    .await?;
                Ok(Reply::Symbol(SymbolReply { symbols: hits }))
            }
            Command::Outline { file, repo } => {
                let (repo, path, definitions) = self.swarm.code().outline(repo, &file).await?;
                Ok(Reply::Outline(OutlineReply {
                    repo,
                    path,
                    definitions,
                }))
            }
            Command::Deps { file, repo, depth } => {
                let deps = self
                    .swarm
                    .code()
                    .deps(repo, &file, depth.unwrap_or(1))
                    .await?;
                Ok(Reply::Deps(deps))
            }
            Command::Refs {
                name,
                kind,
                repo,
                limit,
            } => Ok(Reply::Refs(
                self.swarm
                    .code()
                    .refs(&name, kind.as_deref(), repo, limit)
                    .await?,
            )),
            Command::Impact {
                target,
                repo,
                depth,
                limit,
            } => Ok(Reply::Impact(
                self.swarm
                    .code()
                    .impact(&target, repo, depth.unwrap_or(2), limit)
                    .await?,
            )),
            Command::Repos => Ok(Reply::Repos(ReposReply {
                repos: self.swarm.code().repos().await?,
            })),
            Command::Task(task) => self.task(task).await,
            Command::Remember(args) => self.remember(args).await,
            Command::Recall(args) => self.recall(args).await,
            Command::Journal {
                agent,
                kind,
                limit,
                before,
            } => self.journal(agent, kind, limit, before),
            Command::Ask {
                question,
                model,
                agent,
            } => self.ask(question, model, agent).await,
            Command::Usage {
                person,
                agent,
                since,
            } => {
                if let Some(agent) = &agent {
                    self.swarm.agent(agent)?;
                }
                let since = parse_time_opt("since", since.as_deref())?;
                let totals = self.swarm.usage(
                    &self.principal,
                    &dreamos_agents::llm::UsageFilter {
                        person: person.clone(),
                        agent: agent.clone(),
                        since,
                    },
                )?;
                Ok(Reply::Usage(UsageReply {
                    person,
                    agent,
                    since: since.map(Millis::rfc3339),
                    totals,
                    llm_unavailable: self.swarm.llm().err().map(str::to_string),
                }))
            }
            Command::Forget(id) => {
                let id = entry_id(&id)?;
                let entry = self.swarm.forget(&self.principal, id).await?;
                Ok(Reply::Entry(EntryReply {
                    action: "forget",
                    entry: EntryView::new(&entry),
                }))
            }
        }
    }

    /// `/ask`: an `ask` task (the tool loop of `dreamos_agents::llm::ask`, recorded step by step) for this person
    /// and conversation, answered as `--agent` when one is named. On Discord the answer is the task, whose
    /// message then shows the answer streaming in as progress and the answer when it is done; elsewhere the
    /// command waits for the task and answers with the answer.
    async fn ask(
        &self,
        question: String,
        model: Option<String>,
        agent: Option<String>,
    ) -> Result<Reply, CommandError> {
        use dreamos_runtime::task::{Origin, TaskSpec};
        self.principal
            .require_operator("asking a model")
            .map_err(CommandError::from)?;
        if let Some(agent) = &agent {
            self.swarm.agent(agent)?;
        }
        if let Some(model) = &model {
            dreamos_agents::llm::skill::parse_tag(model)
                .map_err(|m| CommandError::new("invalid_argument", m))?;
        }
        if question.trim().is_empty() {
            return Err(CommandError::new(
                "invalid_argument",
                "the question is empty: /ask QUESTION".to_string(),
            ));
        }
        // Said at once, before a task is made for nothing.
        self.swarm
            .llm()
            .map_err(|why| CommandError::new("llm_not_configured", why.to_string()))?;
        let discord = self.frontend == "discord";
        let args = serde_json::json!({
            "question": question,
            "model": model,
            "agent": agent,
            "person": format!("{}:{}", self.frontend, self.principal.name),
            "frontend": self.frontend,
            "conversation": self.conversation,
            "stream": discord,
        });
        let spec = TaskSpec {
            title: command::clip(&format!("ask {question}")),
            ..TaskSpec::new(
                "ask",
                args,
                self.swarm.config().tasks.max_attempts,
                Origin::new(&self.principal.name, self.frontend),
            )
        };
        // Subscribed before the task exists, so that its end cannot slip past.
        let events = (!discord).then(|| self.swarm.subscribe());
        let task = self.swarm.tasks().create(spec).await.map_err(task_error)?;
        let Some(events) = events else {
            return Ok(Reply::Task(TaskReply {
                action: "ask",
                task,
            }));
        };
        let task = self.wait_final(task, events).await?;
        if task.status != dreamos_runtime::task::TaskStatus::Done {
            let error = task.error.as_deref().unwrap_or("no reason given");
            // The skill's error starts with its kind when it has one (`budget_exceeded: ...`).
            let (kind, message) = match error.split_once(": ") {
                Some((kind, rest))
                    if !kind.is_empty()
                        && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                {
                    (kind.to_string(), rest.to_string())
                }
                _ => ("task_failed".to_string(), error.to_string()),
            };
            return Err(CommandError::new(
                &kind,
                format!("task {} (ask) {}: {message}", task.id, task.status.as_str()),
            ));
        }
        serde_json::from_value(task.result.clone().unwrap_or_default())
            .map(Reply::Ask)
            .map_err(|e| {
                CommandError::new(
                    "internal",
                    format!("task {} ended without an answer: {e}", task.id),
                )
            })
    }

    /// Waits until `task` is final, reading the swarm's events (subscribed before the task was made).
    async fn wait_final(
        &self,
        mut task: dreamos_runtime::task::Task,
        mut events: dreamos_agents::events::EventReceiver,
    ) -> Result<dreamos_runtime::task::Task, CommandError> {
        let tasks = self.swarm.tasks();
        while !task.status.is_final() {
            match events.recv().await {
                Ok(SwarmEvent::Task(t)) if t.id == task.id => task = (*t).clone(),
                Ok(_) => {}
                // Fell behind: read the task itself.
                Err(RecvError::Lagged(_)) => task = tasks.get(task.id).await.map_err(task_error)?,
                Err(RecvError::Closed) => {
                    return Err(CommandError::new(
                        "shutting_down",
                        format!(
                        "the swarm stopped before task {} finished; it resumes at the next start",
                        task.id
                    ),
                    ))
                }
            }
        }
        Ok(task)
    }

    /// `/remember`: every part is checked before anything is written; the answer comes once it is durable.
    async fn remember(&self, args: RememberArgs) -> Result<Reply, CommandError> {
        use dreamos_runtime::memory::{Author, FileLink, Links};
        let invalid = |m: String| CommandError::new("invalid_argument", m);
        let kind = entry_kind(args.kind.as_deref())?.unwrap_or(EntryKind::Note);
        let mut links = Links::default();
        for task in &args.tasks {
            links.tasks.push(task.parse().map_err(invalid)?);
        }
        for agent in &args.agents {
            self.swarm.agent(agent)?;
            links.agents.push(agent.clone());
        }
        for file in &args.files {
            links.files.push(file.parse::<FileLink>().map_err(invalid)?);
        }
        for message in &args.messages {
            links.messages.push(message_id(message)?);
        }
        let name = self.who.split(" (").next().unwrap_or(&self.who).to_string();
        let entry = dreamos_agents::memory::NewEntry {
            author: Author::Person {
                frontend: self.frontend.to_string(),
                user: self.principal.name.clone(),
                name,
            },
            kind,
            text: args.text,
            tags: args.tags,
            links,
        };
        let entry = self.swarm.remember(&self.principal, entry).await?;
        Ok(Reply::Entry(EntryReply {
            action: "remember",
            entry: EntryView::new(&entry),
        }))
    }

    async fn recall(&self, args: RecallArgs) -> Result<Reply, CommandError> {
        use dreamos_agents::memory::{index::Filters, RecallQuery};
        let limit = match args.limit {
            Some(n) => self.page_limit(Some(n))?,
            None => 10,
        };
        let tags = dreamos_runtime::memory::check_tags(&args.tags, usize::MAX)
            .map_err(|m| CommandError::new("invalid_argument", m))?;
        let filters = Filters {
            author: args.author,
            agent: args.agent,
            kind: entry_kind(args.kind.as_deref())?.map(|k| k.as_str().to_string()),
            tags,
            since: parse_time_opt("since", args.since.as_deref())?,
            until: parse_time_opt("until", args.until.as_deref())?,
            task: args.task,
            message: args
                .message
                .as_deref()
                .map(|m| message_id(m).map(|m| m.to_string()))
                .transpose()?,
        };
        let found = self
            .swarm
            .memory()
            .recall(RecallQuery {
                words: args.query,
                filters,
                limit,
            })
            .await?;
        Ok(Reply::Recall(RecallReply {
            matched: found.matched,
            took_ms: found.took_ms,
            ranked_by: found.ranked_by,
            hits: found
                .hits
                .iter()
                .map(|h| RecallHit {
                    entry: EntryView::new(&h.entry),
                    score: h.score,
                    snippet: h.snippet.clone(),
                })
                .collect(),
        }))
    }

    fn journal(
        &self,
        agent: Option<String>,
        kind: Option<String>,
        limit: Option<usize>,
        before: Option<String>,
    ) -> Result<Reply, CommandError> {
        let limit = match limit {
            Some(n) => self.page_limit(Some(n))?,
            None => 20,
        };
        let page = self
            .swarm
            .memory()
            .journal(&dreamos_agents::memory::JournalQuery {
                agent,
                kind: entry_kind(kind.as_deref())?,
                before: before.as_deref().map(entry_id).transpose()?,
                limit,
            })?;
        Ok(Reply::Journal(JournalReply {
            entries: page.entries.iter().map(EntryView::new).collect(),
            next_before: page.next_before.map(|id| id.to_string()),
        }))
    }

    /// `/task ...`: everything goes through the swarm's task manager, which answers once changes are durable.
    async fn task(&self, command: TaskCommand) -> Result<Reply, CommandError> {
        use dreamos_agents::tasks::Control;
        use dreamos_runtime::task::{Origin, TaskId, TaskSpec};
        let tasks = self.swarm.tasks();
        let reply = |action: &'static str, task| Ok(Reply::Task(TaskReply { action, task }));
        if !matches!(command, TaskCommand::List { .. } | TaskCommand::Show(_)) {
            self.principal
                .require_operator("creating and controlling tasks")?;
        }
        let control = |id: u64, control: Control| async move {
            tasks.control(TaskId(id), control).await.map_err(task_error)
        };
        match command {
            TaskCommand::Create {
                skill,
                args,
                priority,
                after,
                title,
                timeout,
                max_attempts,
                approve,
            } => {
                // A scan task indexes: the same role as /index.
                if skill == "scan" {
                    self.principal
                        .require_captain("creating a scan task (indexing a repository)")?;
                }
                let args_value = match args.as_deref().map(str::trim) {
                    None | Some("") => serde_json::json!({}),
                    Some(text) if text.starts_with('{') => {
                        serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
                            CommandError::new(
                                "invalid_argument",
                                format!("ARGS starts like a JSON object but is not one ({e}); give a JSON object, or plain text"),
                            )
                        })?
                    }
                    Some(text) => serde_json::json!({ "text": text }),
                };
                let max = self.swarm.config().messages.max_body_bytes;
                let size = args_value.to_string().len();
                if size > max {
                    return Err(CommandError::new(
                        "body_too_large",
                        format!(
                            "ARGS is {size} bytes; the most is {max} ([messages] max_body_bytes)"
                        ),
                    ));
                }
                let mut ids = Vec::new();
                for text in &after {
                    ids.push(text.parse::<TaskId>().map_err(|e| {
                        CommandError::new("invalid_argument", format!("--after: {e}"))
                    })?);
                }
                let timeout_ms = match timeout {
                    None => None,
                    Some(text) => {
                        let d = humantime::parse_duration(text.trim()).map_err(|e| {
                            CommandError::new(
                                "invalid_argument",
                                format!("--timeout `{}` is not a duration ({e}); write e.g. 30s, 10m or 2h", command::clip(&text)),
                            )
                        })?;
                        if d.is_zero() {
                            return Err(CommandError::new(
                                "invalid_argument",
                                "--timeout must be longer than 0",
                            ));
                        }
                        Some(d.as_millis().min(u128::from(u64::MAX)) as u64)
                    }
                };
                let title = title.unwrap_or_else(|| match args.as_deref().map(str::trim) {
                    None | Some("") => skill.clone(),
                    Some(text) => format!("{skill} {}", command::clip(text)),
                });
                let spec = TaskSpec {
                    title: command::clip(&title),
                    skill,
                    args: args_value,
                    priority,
                    after: ids,
                    timeout_ms,
                    max_attempts: max_attempts.unwrap_or(self.swarm.config().tasks.max_attempts),
                    approve,
                    origin: Origin {
                        by: self.principal.name.clone(),
                        frontend: self.frontend.to_string(),
                    },
                };
                reply("create", tasks.create(spec).await.map_err(task_error)?)
            }
            TaskCommand::List {
                status,
                agent,
                limit,
            } => {
                let limit = self.page_limit(limit)?;
                let mut all = tasks.list().await.map_err(task_error)?;
                all.retain(|t| {
                    status.as_deref().is_none_or(|s| t.status.as_str() == s)
                        && agent
                            .as_deref()
                            .is_none_or(|a| t.agent.as_deref() == Some(a))
                });
                all.reverse();
                let matched = all.len();
                all.truncate(limit);
                Ok(Reply::Tasks(TasksReply {
                    tasks: all,
                    matched,
                }))
            }
            TaskCommand::Show(id) => {
                reply("show", tasks.get(TaskId(id)).await.map_err(task_error)?)
            }
            TaskCommand::Pause(id) => reply("pause", control(id, Control::Pause).await?),
            TaskCommand::Resume(id) => reply("resume", control(id, Control::Resume).await?),
            TaskCommand::Cancel(id) => reply("cancel", control(id, Control::Cancel).await?),
            TaskCommand::Retry(id) => reply("retry", control(id, Control::Retry).await?),
            TaskCommand::Approve(id) => {
                self.principal.require_captain("approving tasks")?;
                let by = self.principal.name.clone();
                reply("approve", control(id, Control::Approve { by }).await?)
            }
            TaskCommand::Reject(id) => {
                self.principal.require_captain("rejecting tasks")?;
                let by = self.principal.name.clone();
                reply("reject", control(id, Control::Reject { by }).await?)
            }
        }
    }

    /// `/index`: a `scan` task. The path rule is checked first, so that a path outside the roots is refused at
    /// once and nothing is stored; then the task is created and its id answered, or with `--wait` its report once
    /// it is done.
    async fn index(
        &self,
        path: &str,
        name: Option<String>,
        wait: bool,
    ) -> Result<Reply, CommandError> {
        use dreamos_runtime::task::{Origin, TaskSpec};
        let root = self.swarm.code().check_root(path)?;
        dreamos_scanner::walk::check_root(&root).map_err(SwarmError::from)?;
        let mut args = serde_json::json!({ "text": path });
        if let Some(name) = &name {
            args["name"] = serde_json::json!(name);
        }
        let spec = TaskSpec {
            title: command::clip(&format!("index {path}")),
            ..TaskSpec::new(
                "scan",
                args,
                self.swarm.config().tasks.max_attempts,
                Origin::new(&self.principal.name, self.frontend),
            )
        };
        // Subscribed before the task exists, so that its end cannot slip past.
        let events = wait.then(|| self.swarm.subscribe());
        let task = self.swarm.tasks().create(spec).await.map_err(task_error)?;
        let Some(events) = events else {
            return Ok(Reply::Task(TaskReply {
                action: "index",
                task,
            }));
        };
        let task = self.wait_final(task, events).await?;
        let result = task.result.clone().unwrap_or_default();
        if task.status != dreamos_runtime::task::TaskStatus::Done {
            return Err(CommandError::new(
                "task_failed",
                format!(
                    "task {} (index {path}) {}: {}",
                    task.id,
                    task.status.as_str(),
                    task.error.as_deref().unwrap_or("no reason given")
                ),
            ));
        }
        serde_json::from_value(result["report"].clone())
            .map(Reply::Index)
            .map_err(|e| {
                CommandError::new(
                    "internal",
                    format!("task {} ended without an index report: {e}", task.id),
                )
            })
    }

    async fn agent(
        &self,
        action: AgentAction,
        name: &str,
        skills: Option<Vec<String>>,
        groups: Option<Vec<String>>,
    ) -> Result<Reply, CommandError> {
        let who = &self.principal;
        let snapshot = match action {
            AgentAction::Spawn => self.swarm.spawn_agent(who, name, skills, groups).await?,
            AgentAction::Stop => self.swarm.stop_agent(who, name).await?,
            AgentAction::Restart => self.swarm.restart_agent(who, name).await?,
            AgentAction::Purge => {
                let (agent, purged) = self.swarm.purge_agent(who, name).await?;
                return Ok(Reply::Agent(AgentReply {
                    action: action.as_str(),
                    agent,
                    order: None,
                    purged: Some(purged),
                }));
            }
            AgentAction::Pause | AgentAction::Resume => {
                let verb = if action == AgentAction::Pause {
                    ControlVerb::Pause
                } else {
                    ControlVerb::Resume
                };
                let current = self.swarm.agent(name)?;
                // A stopped or failed agent takes no orders: the order would wait in its queue until some later
                // start. Say so at once, as /agent stop does.
                if !current.status.is_live() {
                    return Err(SwarmError::AgentState {
                        name: name.to_string(),
                        status: current.status.as_str().to_string(),
                        hint: "it is not running; /agent spawn or /agent restart starts it (paused or not as it was)",
                    }
                    .into());
                }
                let to = Address::Agent(
                    AgentName::new(name).map_err(|m| CommandError::new("invalid_argument", m))?,
                );
                // The verb travels as an order; wait (bounded) for the agent's acknowledgement so that the answer
                // shows the agent already paused or resumed.
                let mut events = self.swarm.subscribe();
                let sent = self.swarm.captain_phone(who)?.control(to, verb).await?;
                let timeout = self.swarm.config().messages.wait_timeout;
                let acknowledged = wait_reply(&mut events, sent.id, timeout).await.is_some();
                return Ok(Reply::Agent(AgentReply {
                    action: action.as_str(),
                    agent: self.swarm.agent(name)?,
                    order: Some(OrderAck {
                        id: sent.id,
                        seq: sent.seq,
                        acknowledged,
                    }),
                    purged: None,
                }));
            }
        };
        Ok(Reply::Agent(AgentReply {
            action: action.as_str(),
            agent: snapshot,
            order: None,
            purged: None,
        }))
    }

    async fn send(
        &self,
        to: &str,
        text: &str,
        priority: Priority,
        kind: Option<String>,
        wait: bool,
    ) -> Result<Reply, CommandError> {
        let to: Address = to
            .parse()
            .map_err(|m: String| CommandError::new("invalid_argument", m))?;
        if matches!(to, Address::All | Address::User(_) | Address::System) {
            return Err(CommandError::new(
                "invalid_argument",
                format!("/send goes to an agent or a group:NAME, not {to}; use /broadcast to order everyone"),
            ));
        }
        if let Address::Agent(name) = &to {
            // Checked here too so that an unknown agent is named before anything else is wrong.
            self.swarm.agent(name.as_str())?;
        }
        let kind = kind.unwrap_or_else(|| self.swarm.config().messages.default_kind.clone());
        // Asking an agent to index is indexing: the same role as /index.
        if kind == "scan" {
            self.principal
                .require_captain("sending a scan order (indexing a repository)")?;
        }
        // Subscribe before sending, so that a fast reply cannot slip past; and tell the observer which message is
        // waited for before it can be answered, so that its reply is never also shown as an event.
        let mut events = wait.then(|| self.swarm.subscribe());
        let envelope = dreamos_agents::message::Envelope::new(
            Address::System,
            to,
            kind.as_str(),
            Body::text(text),
        )
        .with_priority(priority);
        if wait {
            if let Some(observer) = &self.wait_observer {
                observer(envelope.id);
            }
        }
        let sent = self
            .swarm
            .cell_phone(&self.principal)
            .send_envelope(envelope)
            .await?;
        let mut data = SendReply {
            id: sent.id,
            seq: sent.seq,
            to: sent.to.to_string(),
            recipients: sent.recipients.iter().map(|a| a.to_string()).collect(),
            kind,
            priority: priority.as_str(),
            accepted_at: sent.accepted_at.rfc3339(),
            reply: None,
            note: None,
        };
        if let Some(events) = events.as_mut() {
            let timeout = self.swarm.config().messages.wait_timeout;
            match wait_reply(events, sent.id, timeout).await {
                Some(reply) => data.reply = Some(Some(MessageView::new(&reply, &[]))),
                None => {
                    data.reply = Some(None);
                    data.note = Some(format!(
                        "no reply within {}; it will show as an event when it comes",
                        humantime::format_duration(timeout)
                    ));
                }
            }
        }
        Ok(Reply::Send(data))
    }

    async fn broadcast(
        &self,
        text: &str,
        group: Option<String>,
        priority: Priority,
    ) -> Result<Reply, CommandError> {
        let to = match group {
            Some(group) => format!("group:{group}")
                .parse()
                .map_err(|m: String| CommandError::new("invalid_argument", m))?,
            None => Address::All,
        };
        let sent = self
            .swarm
            .captain_phone(&self.principal)?
            .broadcast(to, text, priority)
            .await?;
        Ok(Reply::Broadcast(BroadcastReply {
            id: sent.id,
            seq: sent.seq,
            to: sent.to.to_string(),
            recipients: sent.recipients.iter().map(|a| a.to_string()).collect(),
            priority: priority.as_str(),
            accepted_at: sent.accepted_at.rfc3339(),
        }))
    }

    fn history(&self, args: HistoryArgs) -> Result<Reply, CommandError> {
        let limit = self.page_limit(args.limit)?;
        let agent = match args.agent {
            Some(name) => {
                self.swarm.agent(&name)?;
                Some(AgentName::new(&name).map_err(|m| CommandError::new("invalid_argument", m))?)
            }
            None => None,
        };
        let query = HistoryQuery {
            agent,
            channel: args.channel,
            kind: args.kind,
            since: parse_time_opt("since", args.since.as_deref())?,
            until: parse_time_opt("until", args.until.as_deref())?,
            text: args.text,
            before: args.before.map(Seq),
            limit,
        };
        let page = self.swarm.history(&query)?;
        Ok(Reply::History(HistoryReply {
            messages: page.entries.iter().map(MessageView::of_entry).collect(),
            next_before: page.next_before,
        }))
    }

    /// A page size for /history and /deadletters: 50 unless given, at most `messages.max_page`.
    fn page_limit(&self, limit: Option<usize>) -> Result<usize, CommandError> {
        let max = self.swarm.config().messages.max_page;
        match limit.unwrap_or(50) {
            n if n >= 1 && n <= max => Ok(n),
            _ => Err(CommandError::new(
                "invalid_argument",
                format!("--limit must be between 1 and {max}"),
            )),
        }
    }

    fn dead_letters(
        &self,
        limit: Option<usize>,
        before: Option<u64>,
    ) -> Result<Reply, CommandError> {
        let limit = self.page_limit(limit)?;
        let letters = self.swarm.dead_letters(limit, before.map(Seq))?;
        Ok(Reply::DeadLetters(DeadLettersReply {
            dead_letters: letters.iter().map(DeadLetterView::new).collect(),
        }))
    }

    /// `/help`, or `/help COMMAND` with each option explained and, for `/send`, the kinds the agents take.
    fn help(&self, topic: Option<&str>) -> Result<HelpReply, CommandError> {
        let entry = |c: &command::CommandSpec| HelpEntry {
            name: c.name.to_string(),
            usage: c.usage(),
            summary: c.summary.to_string(),
            role: c.role.as_str(),
        };
        let Some(name) = topic else {
            return Ok(HelpReply {
                commands: COMMANDS.iter().map(entry).collect(),
                details: Vec::new(),
            });
        };
        let name = name.trim_start_matches('/');
        let Some(spec) = command::spec(name) else {
            return Err(CommandError::new(
                "unknown_command",
                format!("no command /{}; /help lists them", command::clip(name)),
            ));
        };
        let config = self.swarm.config();
        let mut details = vec![spec.help.to_string()];
        let describe =
            |details: &mut Vec<String>, prefix: &str, options: &[command::OptionSpec]| {
                for option in options {
                    let label = match option.takes {
                        command::Takes::Named if option.kind == command::OptionKind::Flag => {
                            format!("--{}", option.name)
                        }
                        command::Takes::Named => format!("--{} {}", option.name, option.shape()),
                        _ => option.name.to_ascii_uppercase(),
                    };
                    let mut line = format!("{prefix}{label:<28} {}", option.description);
                    if let Some(default) = option.default {
                        line.push_str(&format!(" (default: {})", default.describe(config)));
                    }
                    if let command::OptionKind::Integer { min, max } = option.kind {
                        line.push_str(&format!(" [{min}-{}]", max.value(config)));
                    }
                    details.push(line);
                }
            };
        describe(&mut details, "  ", spec.options);
        for sub in spec.subcommands {
            details.push(format!("{}: {}", sub.usage(spec.name), sub.summary));
            describe(&mut details, "    ", sub.options);
        }
        if spec.name == "send" {
            details.push("Kinds (each is a skill of the same name):".to_string());
            for name in self.swarm.skills().names() {
                let summary = self.swarm.skills().get(&name).map_or("", |s| s.summary());
                details.push(format!("  {name:<12} {summary}"));
            }
        }
        Ok(HelpReply {
            commands: vec![entry(spec)],
            details,
        })
    }
}

/// `RFC 3339` (`2026-11-22T10:00:00Z`) or a duration ago (`90s`, `10m`, `2h`, `1d`).
fn entry_id(text: &str) -> Result<dreamos_runtime::memory::EntryId, CommandError> {
    text.parse()
        .map_err(|m| CommandError::new("invalid_argument", m))
}

fn entry_kind(text: Option<&str>) -> Result<Option<EntryKind>, CommandError> {
    text.map(|k| k.parse())
        .transpose()
        .map_err(|m| CommandError::new("invalid_argument", m))
}

fn message_id(text: &str) -> Result<dreamos_agents::message::MessageId, CommandError> {
    ulid::Ulid::from_string(text.trim())
        .map(dreamos_agents::message::MessageId)
        .map_err(|_| {
            CommandError::new(
                "invalid_argument",
                format!(
                    "`{}` is not a message id; ids are 26-character ULIDs (/history shows them)",
                    command::clip(text)
                ),
            )
        })
}

/// `--since` or `--until`, when given.
fn parse_time_opt(option: &str, text: Option<&str>) -> Result<Option<Millis>, CommandError> {
    text.map(|t| parse_time(option, t)).transpose()
}

fn parse_time(option: &str, text: &str) -> Result<Millis, CommandError> {
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(Millis::now().saturating_sub(ago));
    }
    match humantime::parse_rfc3339_weak(text) {
        Ok(time) => Ok(Millis(
            time.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64,
        )),
        Err(_) => Err(CommandError::new(
            "invalid_argument",
            format!("--{option} `{text}` is neither a time (2026-11-22T10:00:00Z) nor a duration ago (10m, 2h)"),
        )),
    }
}

async fn wait_reply(
    events: &mut EventReceiver,
    id: dreamos_agents::message::MessageId,
    timeout: Duration,
) -> Option<std::sync::Arc<StoredMessage>> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(SwarmEvent::Message(m)) if m.envelope.reply_to == Some(id) => return Some(m),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.ok().flatten()
}

/// The name a line tried to run, for answers to lines that did not parse.
fn typed_name(line: &str) -> String {
    line.trim()
        .strip_prefix('/')
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}
