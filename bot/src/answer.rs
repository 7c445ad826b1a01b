//! Answers as typed values: one struct per command's result, which each frontend renders its own way
//! ([`crate::render`]: console text, JSON lines; [`crate::discord`]: Discord messages).
//!
//! Their JSON (serde) is the `data` of a `--json` answer, field for field what scripts have read since the console
//! first answered in JSON; the structs only make it a type.

use dreamos_agents::{
    message::{MessageId, Seq},
    stats::AgentSnapshot,
    SwarmStatus,
};
use dreamos_runtime::log::{DeadLetter, HistoryEntry, Receipt, StoredMessage};
use dreamos_scanner::{
    model::Definition, Deps, Impact, IndexReport, Refs, RepoInfo, SearchHit, SymbolHit,
};
use serde::Serialize;

/// What a command produced.
// One value per command, built once and moved to a renderer: the size of its largest variant costs nothing
// worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Help(HelpReply),
    Status(SwarmStatus),
    Agents(AgentsReply),
    Agent(AgentReply),
    Send(SendReply),
    Broadcast(BroadcastReply),
    History(HistoryReply),
    DeadLetters(DeadLettersReply),
    Index(IndexReport),
    Search(SearchReply),
    Symbol(SymbolReply),
    Outline(OutlineReply),
    Deps(Deps),
    Refs(Refs),
    Impact(Impact),
    Repos(ReposReply),
    Task(TaskReply),
    Tasks(TasksReply),
    Entry(EntryReply),
    Recall(RecallReply),
    Journal(JournalReply),
    Usage(UsageReply),
    Ask(dreamos_agents::llm::ask::AskAnswer),
}

/// A memory entry as answers show it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: String,
    /// When it was written (RFC 3339).
    pub at: String,
    /// Who wrote it, for people: `swarm`, `agent-2`, `console:console`.
    pub author: String,
    pub kind: &'static str,
    pub text: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

impl EntryView {
    pub fn new(entry: &dreamos_runtime::memory::Entry) -> EntryView {
        EntryView {
            id: entry.id.to_string(),
            at: entry.at().rfc3339(),
            author: entry.author.to_string(),
            kind: entry.kind.as_str(),
            text: entry.text.clone(),
            tags: entry.tags.clone(),
            messages: entry.links.messages.iter().map(|m| m.to_string()).collect(),
            tasks: entry.links.tasks.iter().map(|t| t.0).collect(),
            agents: entry.links.agents.clone(),
            files: entry.links.files.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// `/remember` and `/forget`: the entry written (durable) or removed.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReply {
    /// `remember` or `forget`.
    pub action: &'static str,
    pub entry: EntryView,
}

/// `/recall`: the best entries first.
#[derive(Debug, Clone, Serialize)]
pub struct RecallReply {
    pub hits: Vec<RecallHit>,
    /// Entries that matched, of which `hits` are the best.
    pub matched: usize,
    pub took_ms: f64,
    /// `bm25`, or `bm25+embeddings` with an embeddings model configured.
    pub ranked_by: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecallHit {
    #[serde(flatten)]
    pub entry: EntryView,
    pub score: f32,
    /// The best fragment of the text, matched words marked `**like this**`.
    pub snippet: String,
}

/// `/usage`: the ledger's totals for the filter.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReply {
    pub person: Option<String>,
    pub agent: Option<String>,
    /// RFC 3339, when `--since` was given.
    pub since: Option<String>,
    #[serde(flatten)]
    pub totals: dreamos_agents::llm::Totals,
    /// Why no model can be called now (no `[llm]` server, a key variable not set), if so.
    pub llm_unavailable: Option<String>,
}

/// `/journal`: newest first.
#[derive(Debug, Clone, Serialize)]
pub struct JournalReply {
    pub entries: Vec<EntryView>,
    /// Pass as `--before` for the next page.
    pub next_before: Option<String>,
}

/// `/task create|show|pause|...`: the task as it now is (durable).
#[derive(Debug, Clone, Serialize)]
pub struct TaskReply {
    /// The subcommand: `create`, `show`, `pause`, ...
    pub action: &'static str,
    pub task: dreamos_runtime::task::Task,
}

/// `/task list`: newest first.
#[derive(Debug, Clone, Serialize)]
pub struct TasksReply {
    pub tasks: Vec<dreamos_runtime::task::Task>,
    /// How many tasks matched before `--limit`.
    pub matched: usize,
}

/// `/help`: the commands (one, when asked about one), with their options when explained.
#[derive(Debug, Clone, Serialize)]
pub struct HelpReply {
    pub commands: Vec<HelpEntry>,
    /// Set for `/help COMMAND`: the lines of its detailed help.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HelpEntry {
    pub name: String,
    pub usage: String,
    pub summary: String,
    pub role: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentsReply {
    pub agents: Vec<AgentSnapshot>,
}

/// `/agent ACTION NAME`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentReply {
    pub action: &'static str,
    pub agent: AgentSnapshot,
    /// For pause and resume: the order that carried the verb.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderAck>,
    /// For purge: how many waiting messages went to dead letters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderAck {
    pub id: MessageId,
    pub seq: Seq,
    pub acknowledged: bool,
}

/// `/send`: the acceptance, and with `--wait` the reply (null when none came in time, with a note).
#[derive(Debug, Clone, Serialize)]
pub struct SendReply {
    pub id: MessageId,
    pub seq: Seq,
    pub to: String,
    pub recipients: Vec<String>,
    pub kind: String,
    pub priority: &'static str,
    pub accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Option<MessageView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `/broadcast`: the order as accepted. The Discord frontend follows its acknowledgements live.
#[derive(Debug, Clone, Serialize)]
pub struct BroadcastReply {
    pub id: MessageId,
    pub seq: Seq,
    pub to: String,
    pub recipients: Vec<String>,
    pub priority: &'static str,
    pub accepted_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryReply {
    pub messages: Vec<MessageView>,
    pub next_before: Option<Seq>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLettersReply {
    pub dead_letters: Vec<DeadLetterView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterView {
    pub agent: String,
    pub attempts: u32,
    pub error: String,
    pub at: String,
    pub message: MessageView,
}

impl DeadLetterView {
    pub fn new(letter: &DeadLetter) -> DeadLetterView {
        DeadLetterView {
            agent: letter.agent.to_string(),
            attempts: letter.attempts,
            error: letter.error.clone(),
            at: letter.at.rfc3339(),
            message: MessageView::new(&letter.message, &[]),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchReply {
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SymbolReply {
    pub symbols: Vec<SymbolHit>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutlineReply {
    pub repo: String,
    pub path: String,
    pub definitions: Vec<Definition>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReposReply {
    pub repos: Vec<RepoInfo>,
}

/// A message as every answer and event shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: MessageId,
    pub seq: Seq,
    pub from: String,
    pub to: String,
    pub channel: &'static str,
    pub priority: &'static str,
    pub kind: String,
    pub body: serde_json::Value,
    pub reply_to: Option<MessageId>,
    pub created_at: String,
    pub accepted_at: String,
    /// Each recipient's state, for messages to agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<Receipt>>,
}

impl MessageView {
    pub fn new(message: &StoredMessage, receipts: &[Receipt]) -> MessageView {
        let env = &message.envelope;
        MessageView {
            id: env.id,
            seq: env.seq,
            from: env.from.to_string(),
            to: env.to.to_string(),
            channel: env.channel.as_str(),
            priority: env.priority.as_str(),
            kind: env.kind.to_string(),
            body: env.body.to_value(),
            reply_to: env.reply_to,
            created_at: env.created_at.rfc3339(),
            accepted_at: env.accepted_at.rfc3339(),
            recipients: (!receipts.is_empty() || !message.recipients.is_empty())
                .then(|| receipts.to_vec()),
        }
    }

    pub fn of_entry(entry: &HistoryEntry) -> MessageView {
        MessageView::new(&entry.message, &entry.receipts)
    }

    /// The body's `text`, or the whole body as JSON.
    pub fn text(&self) -> String {
        self.body["text"]
            .as_str()
            .map_or_else(|| self.body.to_string(), str::to_string)
    }
}
