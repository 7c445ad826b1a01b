//! The agents crate's one error type, split into what a user may see and what is internal.

/// Everything the swarm can refuse or fail at. [`Error::kind`] is a stable machine name for frontends;
/// [`Error::is_internal`] tells which texts must not be shown to users as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No agent of that name exists.
    #[error("unknown agent `{name}`: see /agents for the agents that exist")]
    UnknownAgent { name: String },

    /// No agent belongs to that group.
    #[error("unknown group `{name}`: no agent belongs to it")]
    UnknownGroup { name: String },

    /// The addressed agent has no skill for the message's kind.
    #[error("agent `{agent}` has no skill `{kind}`; its skills are: {skills}")]
    UnknownSkill {
        agent: String,
        kind: String,
        skills: String,
    },

    /// A broadcast or group message would reach nobody.
    #[error(
        "no agent in {to} takes messages of kind `{kind}` (check their skills and subscriptions)"
    )]
    NoRecipients { to: String, kind: String },

    /// A message body over the configured limit.
    #[error("message body is {size} bytes, over the limit of {max} bytes; send less or split it")]
    BodyTooLarge { size: usize, max: usize },

    /// An argument of the wrong form: the text says which and how to write it.
    #[error("{0}")]
    Invalid(String),

    /// The caller's role does not allow this.
    #[error("{action} needs the {needed} role; you are {role}")]
    Forbidden {
        action: String,
        needed: &'static str,
        role: String,
    },

    /// An agent of that name already exists (and is not stopped).
    #[error("agent `{name}` already exists and is {status}")]
    AgentExists { name: String, status: String },

    /// The agent is not in a state that allows this.
    #[error("agent `{name}` is {status}: {hint}")]
    AgentState {
        name: String,
        status: String,
        hint: &'static str,
    },

    /// An agent's queue is full; nothing was stored. `what` names the agent, the bound and what to do.
    #[error("overloaded: {what} Nothing was stored.")]
    Overloaded { what: String },

    /// The swarm is shutting down and accepts nothing new.
    #[error("the swarm is shutting down; nothing new is accepted")]
    ShuttingDown,

    /// Something did not answer in time.
    #[error("timed out after {millis} ms waiting for {what}")]
    Timeout { what: String, millis: u64 },

    /// A directory to index lies outside the configured allowed roots.
    #[error("`{path}` resolves to {resolved}, which is outside the directories dreamos may index ({roots}); add it to [scanner] allowed_roots in a --config file, or set DREAMOS_SCANNER__ALLOWED_ROOTS='[\"/path\"]'")]
    PathNotAllowed {
        path: String,
        resolved: String,
        roots: String,
    },

    /// The code scanner refused or failed.
    #[error(transparent)]
    Scanner(#[from] dreamos_scanner::Error),

    /// The store failed underneath.
    #[error(transparent)]
    Runtime(#[from] dreamos_runtime::Error),

    /// No memory entry has that id.
    #[error("no memory entry has id {id}; /journal and /recall show the ids that exist")]
    UnknownEntry { id: String },

    /// The memory's search index failed underneath (sled, which holds the entries, is unaffected).
    #[error("memory: {0}")]
    Memory(String),

    /// A call to a model failed or was refused (`kind` says how).
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),

    /// An actor could not be reached or failed to start.
    #[error("actor system error: {0}")]
    Actor(String),
}

impl Error {
    /// A stable, machine-readable name for the error, used by `--json` answers and Discord replies.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownAgent { .. } => "unknown_agent",
            Error::UnknownGroup { .. } => "unknown_group",
            Error::UnknownSkill { .. } => "unknown_skill",
            Error::NoRecipients { .. } => "no_recipients",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::Invalid(_) => "invalid_argument",
            Error::Forbidden { .. } => "forbidden",
            Error::AgentExists { .. } => "agent_exists",
            Error::AgentState { .. } => "agent_state",
            Error::Overloaded { .. } => "overloaded",
            Error::ShuttingDown => "shutting_down",
            Error::Timeout { .. } => "timeout",
            Error::PathNotAllowed { .. } => "path_not_allowed",
            Error::UnknownEntry { .. } => "unknown_entry",
            Error::Memory(_) => "internal",
            Error::Llm(e) => e.kind(),
            Error::Scanner(e) => scanner_kind(e),
            Error::Runtime(dreamos_runtime::Error::Closed) => "shutting_down",
            Error::Runtime(dreamos_runtime::Error::Overloaded { .. }) => "overloaded",
            Error::Runtime(dreamos_runtime::Error::StoreFailed(_)) => "store_failed",
            Error::Runtime(dreamos_runtime::Error::AcceptTimeout { .. }) => "timeout",
            Error::Runtime(_) | Error::Actor(_) => "internal",
        }
    }

    /// Internal errors are logged with an id; the user sees only "internal error (id …)".
    pub fn is_internal(&self) -> bool {
        self.kind() == "internal"
    }
}

/// Scanner errors a user caused get their own kind; the index failing underneath is internal.
fn scanner_kind(e: &dreamos_scanner::Error) -> &'static str {
    use dreamos_scanner::Error as S;
    match e {
        S::Query(_) => "invalid_query",
        S::TooExpensive(_) => "query_too_expensive",
        S::Timeout { .. } => "timeout",
        S::Cancelled => "cancelled",
        S::UnknownLanguage(_) | S::LanguageDisabled { .. } => "unknown_language",
        S::RepoName { .. } | S::BadPath { .. } => "invalid_argument",
        S::UnknownRepo(_) => "unknown_repo",
        S::UnknownFile(_) => "unknown_file",
        S::UnknownSymbol(_) => "unknown_symbol",
        S::WalkRoot { .. } | S::Io { .. } => "not_found",
        S::IndexLocked { .. } => "index_busy",
        _ => "internal",
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
