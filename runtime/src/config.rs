//! Layered, validated configuration: the embedded `config/default.toml`, then a file, then `DREAMOS_` variables.
//!
//! Every layer is parsed into a TOML table and merged key by key, remembering which layer set each key, so an
//! error can say where the bad value came from. The merged table is then deserialized into [`Config`] with
//! `deny_unknown_fields` everywhere: an unknown key is an error, never silently ignored.

use std::{collections::HashMap, fmt, path::Path, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The defaults, compiled into the binary. It lists every setting with a comment.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Prefix of environment variables that override settings: `DREAMOS_SECTION__KEY`.
pub const ENV_PREFIX: &str = "DREAMOS_";

/// The whole configuration tree. Each component receives its own section; there is no global config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub log: LogConfig,
    pub store: StoreConfig,
    pub messages: MessagesConfig,
    pub retention: RetentionConfig,
    pub scanner: ScannerConfig,
    pub supervisor: SupervisorConfig,
    pub shutdown: ShutdownConfig,
    pub tasks: TasksConfig,
    pub memory: MemoryConfig,
    pub discord: DiscordConfig,
    pub llm: LlmConfig,
    pub debug: DebugConfig,
    pub console: ConsoleConfig,
    pub agents: Vec<AgentConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: LogLevel,
    pub console_level: LogLevel,
    pub format: LogFormat,
    pub files: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub max_batch: usize,
    pub max_group_bytes: usize,
    pub max_queue_bytes: usize,
    pub sync: SyncMode,
}

/// What "accepted" means: see `[store] sync` in config/default.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fdatasync sled's files after each flush: survives a power cut.
    #[default]
    Full,
    /// sled's flush alone: survives `kill -9` of the process, not a power cut.
    Os,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Full => "full",
            SyncMode::Os => "os",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesConfig {
    pub max_body_bytes: usize,
    pub max_attempts: u32,
    pub default_kind: String,
    #[serde(with = "duration")]
    pub wait_timeout: Duration,
    pub max_page: usize,
    pub max_queued: usize,
    pub max_queued_orders: usize,
    #[serde(with = "duration")]
    pub accept_timeout: Duration,
    pub event_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub max_messages: u64,
    #[serde(with = "duration")]
    pub max_age: Duration,
    #[serde(with = "duration")]
    pub compact_every: Duration,
    pub dead_letters_max: u64,
    #[serde(with = "duration")]
    pub dead_letters_max_age: Duration,
    pub audit_max_entries: u64,
    #[serde(with = "duration")]
    pub audit_max_age: Duration,
    /// Finished tasks (done, failed, cancelled) kept, newest first ...
    pub tasks_max: u64,
    /// ... and none finished longer ago than this.
    #[serde(with = "duration")]
    pub tasks_max_age: Duration,
    /// Dreamscribe keeps at most this many entries, oldest forgotten first ...
    pub memory_max: u64,
    /// ... and none older than this.
    #[serde(with = "duration")]
    pub memory_max_age: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScannerConfig {
    pub allowed_roots: Vec<std::path::PathBuf>,
    pub max_file_bytes: u64,
    pub default_limit: usize,
    pub max_limit: usize,
    /// One search's time limit.
    #[serde(with = "duration")]
    pub query_timeout: Duration,
    /// The most bytes of file text one search may verify.
    pub query_max_scan_bytes: u64,
    /// The largest regular expression one search may run, in states (`a{1000}` is 1,000).
    pub query_max_regex_states: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    #[serde(with = "duration")]
    pub backoff_initial: Duration,
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    pub max_restarts: u32,
    #[serde(with = "duration")]
    pub restart_window: Duration,
}

/// The task manager.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TasksConfig {
    /// Tasks one agent runs side by side.
    pub per_agent: usize,
    /// A failed attempt waits between half and all of `backoff_initial · 2^(attempts−1)`, at most `backoff_max`.
    #[serde(with = "duration")]
    pub backoff_initial: Duration,
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    /// Attempts of a task created without `--max-attempts`.
    pub max_attempts: u32,
    /// Requests that may wait for the task manager; beyond it one is refused (`overloaded`).
    pub max_pending: usize,
}

/// Dreamscribe, the swarm's narrative memory.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The longest entry text, in bytes.
    pub max_text_bytes: usize,
    /// The most tags one entry may carry.
    pub max_tags: usize,
    /// Entries (and forgets) that may wait for the memory's writer; beyond it one is refused (`overloaded`).
    pub max_pending: usize,
    /// What the swarm journals on its own: any of `agents`, `broadcasts`, `dead_letters`, `indexing`, `tasks`.
    pub journal: Vec<JournalTopic>,
    /// How long a broadcast's acknowledgements are counted before its journal entry is written.
    #[serde(with = "duration")]
    pub broadcast_window: Duration,
    /// The search index is committed at most this often while entries keep coming (a recall first waits for what
    /// was acknowledged before it, so it never misses an entry).
    #[serde(with = "duration")]
    pub index_commit_every: Duration,
}

/// A kind of thing the swarm writes into its journal by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalTopic {
    /// An agent started, stopped, paused, resumed, restarted or was marked failed.
    Agents,
    /// A captain's broadcast and how many agents acknowledged it.
    Broadcasts,
    /// A message that went to dead letters, and why.
    DeadLetters,
    /// An indexing run's report.
    Indexing,
    /// A task created, done, failed or cancelled.
    Tasks,
    /// A question `/ask` answered: who asked, which agent and model answered, and the answer.
    Questions,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(with = "duration")]
    pub drain_timeout: Duration,
}

/// The Discord frontend. The token comes from the `DISCORD_TOKEN` environment variable, never from here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    pub api_url: String,
    pub guild_ids: Vec<DiscordId>,
    pub captain_role_ids: Vec<DiscordId>,
    pub operator_role_ids: Vec<DiscordId>,
    pub viewer_role_ids: Vec<DiscordId>,
    pub captain_user_ids: Vec<DiscordId>,
    pub everyone: EveryoneRole,
    #[serde(with = "optional_id")]
    pub events_channel_id: Option<DiscordId>,
    pub mirror_level: LogLevel,
    pub log_routes: Vec<LogRoute>,
    #[serde(with = "duration")]
    pub defer_after: Duration,
}

/// The LLM bridge: chat completions from any OpenAI-compatible server (llama.cpp's server, ollama, vLLM, OpenAI).
/// An empty `base_url` means no LLM. The API key comes from the environment variable `api_key_env` names, never
/// from here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub base_url: String,
    pub api_key_env: String,
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// The longest wait for the first byte of an answer, and between two chunks of a streamed one.
    #[serde(with = "duration")]
    pub read_timeout: Duration,
    /// The longest one call may take, retries included.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    pub max_attempts: u32,
    /// The longest wait before a retry (a 429's `Retry-After` beyond it fails the call instead).
    #[serde(with = "duration")]
    pub max_retry_wait: Duration,
    pub models: Vec<LlmModelConfig>,
    pub budgets: LlmBudgets,
}

/// One model the bridge may call, in order of preference within a tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmModelConfig {
    /// The model's name on its server.
    pub name: String,
    pub tags: Vec<ModelTag>,
    /// Its context window in tokens.
    pub context: u32,
    /// The most tokens one answer may have.
    #[serde(default = "default_max_output")]
    pub max_output: u32,
    /// Another server for this model (for example a remote one behind a local one); empty: `llm.base_url`.
    #[serde(default)]
    pub base_url: String,
    /// The variable holding that server's key; empty: `llm.api_key_env`.
    #[serde(default)]
    pub api_key_env: String,
}

fn default_max_output() -> u32 {
    512
}

/// What a model is for: the complexity classifier picks a tag, the pool a model that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelTag {
    Fast,
    Balanced,
    Heavy,
    Code,
    Embeddings,
}

impl ModelTag {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelTag::Fast => "fast",
            ModelTag::Balanced => "balanced",
            ModelTag::Heavy => "heavy",
            ModelTag::Code => "code",
            ModelTag::Embeddings => "embeddings",
        }
    }
}

/// Token budgets, checked before a call is sent with the call's largest cost reserved. 0 means no limit.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LlmBudgets {
    /// Tokens (prompt and completion) one person may spend in a UTC day.
    pub person_daily: u64,
    /// Tokens one agent may spend in a UTC day.
    pub agent_daily: u64,
    /// Tokens the whole swarm may spend in a UTC day.
    pub daily: u64,
}

/// A Discord id (a snowflake), written in the configuration as an integer or a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiscordId(pub u64);

impl Serialize for DiscordId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DiscordId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<DiscordId, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let id = match Raw::deserialize(d)? {
            Raw::Number(n) => u64::try_from(n).ok(),
            Raw::Text(text) => text.trim().parse::<u64>().ok(),
        };
        match id {
            Some(id) if id > 0 => Ok(DiscordId(id)),
            _ => Err(serde::de::Error::custom(
                "a Discord id is a positive number, written as an integer or a string of digits",
            )),
        }
    }
}

/// `""` (or absent in a file) for none, else a [`DiscordId`].
mod optional_id {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::DiscordId;

    pub fn serialize<S: Serializer>(value: &Option<DiscordId>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(id) => s.collect_str(&id.0),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DiscordId>, D::Error> {
        let value = toml::Value::deserialize(d)?;
        if value.as_str().is_some_and(|s| s.trim().is_empty()) {
            return Ok(None);
        }
        DiscordId::deserialize(value)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// The role of a Discord member who has none of the configured roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EveryoneRole {
    /// Only `/help`.
    None,
    Viewer,
    Operator,
    Captain,
}

impl EveryoneRole {
    pub fn role(self) -> Option<Role> {
        match self {
            EveryoneRole::None => None,
            EveryoneRole::Viewer => Some(Role::Viewer),
            EveryoneRole::Operator => Some(Role::Operator),
            EveryoneRole::Captain => Some(Role::Captain),
        }
    }
}

/// Log lines at or above `level` whose target starts with `target` go to `channel_id`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogRoute {
    pub level: LogLevel,
    #[serde(default)]
    pub target: String,
    pub channel_id: DiscordId,
}

/// Switches for tests of the swarm itself; all off by default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    pub fault_skill: bool,
    /// Where the `steps` skill appends a line for each thing it does (empty: nowhere).
    pub journal: std::path::PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub role: Role,
    pub user: String,
    pub max_line_bytes: usize,
}

/// Who may do what. The captain alone may broadcast, spawn or stop agents, and index repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Captain,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Captain => "captain",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "captain" => Ok(Role::Captain),
            other => Err(format!(
                "unknown role `{other}`: use captain, operator or viewer"
            )),
        }
    }
}

/// One agent of the swarm, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    pub name: String,
    #[serde(default = "star")]
    pub skills: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "star")]
    pub subscribe: Vec<String>,
    /// The agent's persona for `/ask`: a system prompt put before the swarm's own rules. Empty for none.
    #[serde(default)]
    pub persona: String,
}

/// The longest persona an agent may have.
pub const MAX_PERSONA_BYTES: usize = 4096;

fn star() -> Vec<String> {
    vec!["*".to_string()]
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in defaults"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// Builds a [`Config`] from layers. Later layers override earlier ones key by key.
#[derive(Debug)]
pub struct ConfigLoader {
    /// The layers merged so far; `None` while there are only the embedded defaults, which are then deserialized
    /// straight from their text (a command-line tool starts without parsing them twice and merging them).
    merged: Option<toml::Table>,
    /// Which layer last set each dotted key (`log.level`, `agents`).
    origins: HashMap<String, Origin>,
}

impl ConfigLoader {
    /// Starts from the embedded defaults.
    pub fn new() -> ConfigLoader {
        ConfigLoader {
            merged: None,
            origins: HashMap::new(),
        }
    }

    /// Adds a TOML file. A missing file is an error: the caller decides whether a file is optional.
    pub fn file(mut self, path: &Path) -> Result<ConfigLoader> {
        let text = std::fs::read_to_string(path).map_err(|cause| Error::ConfigRead {
            path: path.to_path_buf(),
            cause,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::Config {
            origin: path.display().to_string(),
            message: format!("not valid TOML: {}", e.message()),
        })?;
        self.merge(table, &Origin::File(path.to_path_buf()));
        Ok(self)
    }

    /// Adds environment variables named `DREAMOS_SECTION__KEY`. Variables without `__` (such as
    /// `DREAMOS_DATA_DIR` or secrets) are not settings and are left to their readers.
    pub fn env<I>(mut self, vars: I) -> Result<ConfigLoader>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains("__"))
            .collect();
        // Sorted so that the outcome does not depend on the environment's order.
        vars.sort();
        for (name, raw) in vars {
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(|part| part.to_ascii_lowercase())
                .collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(Error::Config {
                    origin: format!("environment variable {name}"),
                    message: "expected DREAMOS_SECTION__KEY, with a non-empty section and key"
                        .to_string(),
                });
            }
            let mut table = toml::Table::new();
            let leaf = parse_env_value(&raw);
            insert_path(&mut table, &path, leaf);
            self.merge(table, &Origin::Env(name));
        }
        Ok(self)
    }

    /// Deserializes and validates the merged layers.
    pub fn build(self) -> Result<Config> {
        let config: Config = match &self.merged {
            None => serde_path_to_error::deserialize(
                toml::de::Deserializer::parse(DEFAULT_TOML).map_err(|e| {
                    Error::Internal(format!(
                        "the embedded config/default.toml is not valid TOML: {e}"
                    ))
                })?,
            ),
            Some(merged) => serde_path_to_error::deserialize(toml::Value::Table(merged.clone())),
        }
        .map_err(|err| {
            let key = err.path().to_string();
            Error::Config {
                origin: self.origin_of(&key),
                message: format!("`{key}`: {}", err.inner()),
            }
        })?;
        config.validate().map_err(|(key, message)| Error::Config {
            origin: self.origin_of(&key),
            message: format!("`{key}`: {message}"),
        })?;
        Ok(config)
    }

    fn merge(&mut self, layer: toml::Table, origin: &Origin) {
        let merged = match &mut self.merged {
            Some(merged) => merged,
            None => {
                let defaults: toml::Table = toml::from_str(DEFAULT_TOML)
                    .expect("the embedded config/default.toml is valid TOML");
                let mut merged = toml::Table::new();
                merge_table(
                    &mut merged,
                    defaults,
                    "",
                    &Origin::Default,
                    &mut self.origins,
                );
                self.merged.insert(merged)
            }
        };
        merge_table(merged, layer, "", origin, &mut self.origins);
    }

    /// Names the layer that set `key` (or the nearest enclosing table that one layer set whole).
    fn origin_of(&self, key: &str) -> String {
        // Array indices (`agents[1].name`) are set together with their array.
        let key = key.split('[').next().unwrap_or(key);
        let mut probe = key;
        loop {
            if let Some(origin) = self.origins.get(probe) {
                return origin.to_string();
            }
            match probe.rfind('.') {
                Some(dot) => probe = &probe[..dot],
                None => return Origin::Default.to_string(),
            }
        }
    }
}

impl Default for ConfigLoader {
    fn default() -> Self {
        ConfigLoader::new()
    }
}

impl Config {
    /// The defaults alone: what `dreamos run` uses with no file and no environment.
    pub fn defaults() -> Config {
        ConfigLoader::new()
            .build()
            .expect("the embedded defaults are a valid configuration")
    }

    /// The configuration as TOML, in the shape of config/default.toml.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self)
            .map_err(|e| Error::Internal(format!("cannot print the configuration: {e}")))
    }

    /// Checks what types alone cannot: ranges, names, uniqueness. Returns the offending key and why.
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        let positive = [
            ("store.max_batch", self.store.max_batch as u64),
            (
                "messages.max_body_bytes",
                self.messages.max_body_bytes as u64,
            ),
            (
                "messages.max_attempts",
                u64::from(self.messages.max_attempts),
            ),
            ("messages.max_page", self.messages.max_page as u64),
            ("messages.max_queued", self.messages.max_queued as u64),
            ("console.max_line_bytes", self.console.max_line_bytes as u64),
            (
                "messages.max_queued_orders",
                self.messages.max_queued_orders as u64,
            ),
            (
                "messages.event_buffer_bytes",
                self.messages.event_buffer_bytes as u64,
            ),
            ("retention.max_messages", self.retention.max_messages),
            (
                "retention.dead_letters_max",
                self.retention.dead_letters_max,
            ),
            (
                "retention.audit_max_entries",
                self.retention.audit_max_entries,
            ),
            ("retention.tasks_max", self.retention.tasks_max),
            (
                "supervisor.max_restarts",
                u64::from(self.supervisor.max_restarts),
            ),
            ("tasks.per_agent", self.tasks.per_agent as u64),
            ("tasks.max_attempts", u64::from(self.tasks.max_attempts)),
            ("tasks.max_pending", self.tasks.max_pending as u64),
            ("retention.memory_max", self.retention.memory_max),
            ("memory.max_pending", self.memory.max_pending as u64),
            ("memory.max_tags", self.memory.max_tags as u64),
            (
                "scanner.query_max_scan_bytes",
                self.scanner.query_max_scan_bytes,
            ),
            (
                "scanner.query_max_regex_states",
                self.scanner.query_max_regex_states,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err((key.to_string(), "must be at least 1".to_string()));
            }
        }
        // A group must hold at least one message of the largest size, and stay one modest write (its records are
        // decoded whole by history and recovery).
        let group_min = self.messages.max_body_bytes + crate::log::RECORD_OVERHEAD;
        let group_max = crate::store::SEGMENT_SIZE / 4 - 64 * 1024;
        if self.store.max_group_bytes < group_min || self.store.max_group_bytes > group_max {
            return Err((
                "store.max_group_bytes".to_string(),
                format!(
                    "must be between {group_min} (one message of messages.max_body_bytes) and {group_max} bytes"
                ),
            ));
        }
        if self.store.max_queue_bytes < self.store.max_group_bytes {
            return Err((
                "store.max_queue_bytes".to_string(),
                "must be at least store.max_group_bytes".to_string(),
            ));
        }
        // An entry must fit in one sled value that stays inline (see `store.max_group_bytes`).
        if self.memory.max_text_bytes == 0 || self.memory.max_text_bytes > 1024 * 1024 {
            return Err((
                "memory.max_text_bytes".to_string(),
                "must be between 1 and 1048576 bytes".to_string(),
            ));
        }
        if self.memory.index_commit_every.is_zero() {
            return Err((
                "memory.index_commit_every".to_string(),
                "must be longer than zero, such as \"250ms\"".to_string(),
            ));
        }
        if !self.discord.api_url.is_empty() {
            let url = &self.discord.api_url;
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains('?') {
                return Err((
                    "discord.api_url".to_string(),
                    format!("`{url}` is not a base URL such as http://127.0.0.1:8080 (or empty for Discord)"),
                ));
            }
        }
        self.validate_llm()?;
        if self.discord.defer_after >= Duration::from_millis(2500) {
            return Err((
                "discord.defer_after".to_string(),
                "must be under 2.5 s: Discord drops an interaction not answered within 3 s"
                    .to_string(),
            ));
        }
        if self.scanner.query_timeout < Duration::from_millis(1) {
            return Err((
                "scanner.query_timeout".to_string(),
                "must be at least 1ms (a search past it stops with a timeout error)".to_string(),
            ));
        }
        if self.scanner.default_limit > self.scanner.max_limit {
            return Err((
                "scanner.default_limit".to_string(),
                "must not exceed scanner.max_limit".to_string(),
            ));
        }
        if self.supervisor.backoff_initial > self.supervisor.backoff_max {
            return Err((
                "supervisor.backoff_initial".to_string(),
                "must not exceed supervisor.backoff_max".to_string(),
            ));
        }
        if let Err(why) = crate::message::check_kind(&self.messages.default_kind) {
            return Err(("messages.default_kind".to_string(), why));
        }
        if let Err(why) = crate::message::check_name(&self.console.user, "user") {
            return Err(("console.user".to_string(), why));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let key = format!("agents[{i}]");
            crate::message::check_agent_name(&agent.name).map_err(|why| (key.clone(), why))?;
            if !seen.insert(agent.name.as_str()) {
                return Err((key, format!("agent `{}` is configured twice", agent.name)));
            }
            for group in &agent.groups {
                crate::message::check_name(group, "group").map_err(|why| (key.clone(), why))?;
            }
            for kind in agent.subscribe.iter().filter(|k| k.as_str() != "*") {
                crate::message::check_kind(kind).map_err(|why| (key.clone(), why))?;
            }
            if agent.persona.len() > MAX_PERSONA_BYTES {
                return Err((
                    format!("{key}.persona"),
                    format!(
                        "the persona is {} bytes; keep it under {MAX_PERSONA_BYTES} (it is sent with every question)",
                        agent.persona.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_llm(&self) -> std::result::Result<(), (String, String)> {
        let llm = &self.llm;
        let url_ok = |url: &str| {
            (url.starts_with("http://") || url.starts_with("https://")) && !url.contains('?')
        };
        if !llm.base_url.is_empty() && !url_ok(&llm.base_url) {
            return Err((
                "llm.base_url".to_string(),
                format!(
                    "`{}` is not a base URL such as http://127.0.0.1:8080/v1 (or empty for no LLM)",
                    llm.base_url
                ),
            ));
        }
        let env_ok = |name: &str| {
            name.is_empty()
                || (name.len() <= 128
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !name.as_bytes()[0].is_ascii_digit())
        };
        if !env_ok(&llm.api_key_env) {
            return Err((
                "llm.api_key_env".to_string(),
                "must be the name of an environment variable (letters, digits, _), such as OPENAI_API_KEY; the key itself is never a setting".to_string(),
            ));
        }
        if llm.max_attempts == 0 || llm.max_attempts > 10 {
            return Err((
                "llm.max_attempts".to_string(),
                "must be between 1 and 10".to_string(),
            ));
        }
        for (key, value) in [
            ("llm.connect_timeout", llm.connect_timeout),
            ("llm.read_timeout", llm.read_timeout),
            ("llm.request_timeout", llm.request_timeout),
        ] {
            if value < Duration::from_millis(1) {
                return Err((key.to_string(), "must be at least 1ms".to_string()));
            }
        }
        if !llm.base_url.is_empty() && llm.models.is_empty() {
            return Err((
                "llm.models".to_string(),
                "llm.base_url is set but no model is configured: add [[llm.models]] with name, tags and context".to_string(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, model) in llm.models.iter().enumerate() {
            let key = format!("llm.models[{i}]");
            if model.name.trim().is_empty() || model.name.len() > 256 {
                return Err((key, "needs a name of 1 to 256 bytes".to_string()));
            }
            if !seen.insert(model.name.as_str()) {
                return Err((key, format!("model `{}` is configured twice", model.name)));
            }
            if model.tags.is_empty() {
                return Err((
                    key,
                    "needs at least one tag: fast, balanced, heavy, code or embeddings".to_string(),
                ));
            }
            if model.context < 256 {
                return Err((key, "context must be at least 256 tokens".to_string()));
            }
            if model.max_output == 0 || model.max_output >= model.context {
                return Err((
                    key,
                    format!(
                        "max_output must be between 1 and the context ({}) less one",
                        model.context
                    ),
                ));
            }
            if !model.base_url.is_empty() && !url_ok(&model.base_url) {
                return Err((key, format!("`{}` is not a base URL", model.base_url)));
            }
            if model.base_url.is_empty() && llm.base_url.is_empty() {
                return Err((
                    key,
                    "has no server: set llm.base_url or this model's base_url".to_string(),
                ));
            }
            if !env_ok(&model.api_key_env) {
                return Err((
                    key,
                    "api_key_env must be the name of an environment variable".to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// An environment value is read as a TOML value when it parses as one (`5`, `true`, `["a","b"]`), and as a
/// plain string otherwise (`debug`), so users need not quote strings in their shell.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut table) => table
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn insert_path(table: &mut toml::Table, path: &[String], leaf: toml::Value) {
    match path {
        [] => {}
        [last] => {
            table.insert(last.clone(), leaf);
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, leaf);
            }
        }
    }
}

fn merge_table(
    into: &mut toml::Table,
    layer: toml::Table,
    prefix: &str,
    origin: &Origin,
    origins: &mut HashMap<String, Origin>,
) {
    for (key, value) in layer {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => {
                merge_table(existing, incoming, &path, origin, origins);
            }
            (_, value) => {
                // A whole value (scalar, array, or a table where there was none) replaces what was there.
                origins.retain(|k, _| !(k == &path || k.starts_with(&format!("{path}."))));
                record_origins(&value, &path, origin, origins);
                into.insert(key, value);
            }
        }
    }
}

fn record_origins(
    value: &toml::Value,
    path: &str,
    origin: &Origin,
    origins: &mut HashMap<String, Origin>,
) {
    origins.insert(path.to_string(), origin.clone());
    if let toml::Value::Table(table) = value {
        for (key, inner) in table {
            record_origins(inner, &format!("{path}.{key}"), origin, origins);
        }
    }
}

/// Durations written as humantime strings: "250ms", "5s", "30d".
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write it like \"250ms\", \"5s\" or \"2h\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut loader = ConfigLoader::new();
        if let Some(text) = file {
            let path = dir.path().join("local.toml");
            std::fs::write(&path, text).expect("write config");
            loader = loader.file(&path)?;
        }
        loader.env(env(vars))?.build()
    }

    /// Loads and expects an error whose text contains every fragment.
    fn check_err(file: Option<&str>, vars: &[(&str, &str)], fragments: &[&str]) {
        let err = load(file, vars).expect_err("expected a configuration error");
        let text = err.to_string();
        for fragment in fragments {
            assert!(text.contains(fragment), "error `{text}` lacks `{fragment}`");
        }
    }

    #[test]
    fn the_defaults_read_alone_equal_the_defaults_merged_with_an_empty_layer() {
        let alone = ConfigLoader::new().build().expect("defaults");
        let merged = load(Some("# nothing here\n"), &[]).expect("merged");
        assert_eq!(
            alone.to_toml().expect("print"),
            merged.to_toml().expect("print")
        );
    }

    #[test]
    fn defaults_have_four_agents_with_every_skill() {
        let config = Config::defaults();
        let names: Vec<_> = config.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["agent-1", "agent-2", "agent-3", "agent-4"]);
        assert!(config.agents.iter().all(|a| a.skills == ["*"]));
        assert_eq!(config.console.role, Role::Captain);
        assert_eq!(config.messages.max_body_bytes, 65536);
        assert_eq!(
            config.store.sync,
            SyncMode::Full,
            "durable against a power cut by default"
        );
        assert!(
            !config.debug.fault_skill,
            "the fault skill is off by default"
        );
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file() {
        let config = load(
            Some("[messages]\nmax_attempts = 7\n[log]\nlevel = \"debug\"\n"),
            &[
                ("DREAMOS_LOG__LEVEL", "trace"),
                ("DREAMOS_DATA_DIR", "/ignored"),
            ],
        )
        .expect("valid");
        assert_eq!(config.messages.max_attempts, 7);
        assert_eq!(config.log.level, LogLevel::Trace);
        // Untouched keys of a touched section keep their defaults.
        assert_eq!(config.messages.max_body_bytes, 65536);
    }

    #[test]
    fn env_values_parse_as_toml_or_string() {
        let config = load(
            None,
            &[
                ("DREAMOS_MESSAGES__MAX_ATTEMPTS", "9"),
                ("DREAMOS_SUPERVISOR__BACKOFF_MAX", "3s"),
            ],
        )
        .expect("valid");
        assert_eq!(config.messages.max_attempts, 9);
        assert_eq!(config.supervisor.backoff_max, Duration::from_secs(3));
    }

    #[test]
    fn file_can_replace_the_agent_list() {
        let config = load(
            Some("[[agents]]\nname = \"solo\"\nskills = [\"ping\"]\n"),
            &[],
        )
        .expect("valid");
        assert_eq!(config.agents.len(), 1);
        assert_eq!(config.agents[0].subscribe, ["*"]);
    }

    #[test]
    fn errors_name_the_key_and_its_origin() {
        check_err(
            None,
            &[("DREAMOS_LOG__COLOUR", "red")],
            &["log.colour", "DREAMOS_LOG__COLOUR", "unknown field"],
        );
        check_err(
            Some("[log]\nfiles = \"yes\"\n"),
            &[],
            &["log.files", "local.toml", "expected a boolean"],
        );
        check_err(
            None,
            &[("DREAMOS_MESSAGES__MAX_ATTEMPTS", "lots")],
            &["messages.max_attempts", "DREAMOS_MESSAGES__MAX_ATTEMPTS"],
        );
        check_err(
            Some("[nonsense]\nx = 1\n"),
            &[],
            &["nonsense", "local.toml", "unknown field"],
        );
        check_err(
            Some("[retention]\nmax_age = \"soon\"\n"),
            &[],
            &["retention.max_age", "not a duration"],
        );
        check_err(
            None,
            &[("DREAMOS_MESSAGES__MAX_ATTEMPTS", "0")],
            &[
                "messages.max_attempts",
                "at least 1",
                "DREAMOS_MESSAGES__MAX_ATTEMPTS",
            ],
        );
        check_err(
            Some("[[agents]]\nname = \"a\"\n[[agents]]\nname = \"a\"\n"),
            &[],
            &["agents[1]", "configured twice", "local.toml"],
        );
        check_err(
            Some("[[agents]]\nname = \"Bad Name!\"\n"),
            &[],
            &["agents[0]", "Bad Name!"],
        );
        check_err(
            Some("this is = = not toml"),
            &[],
            &["local.toml", "not valid TOML"],
        );
        check_err(None, &[("DREAMOS___LEVEL", "x")], &["DREAMOS___LEVEL"]);
        check_err(
            None,
            &[("DREAMOS_STORE__SYNC", "sometimes")],
            &["store.sync", "DREAMOS_STORE__SYNC", "full", "os"],
        );
        check_err(
            Some("[store]\nmax_group_bytes = 4000000\n"),
            &[],
            &["store.max_group_bytes", "must be between", "local.toml"],
        );
        check_err(
            Some("[store]\nmax_queue_bytes = 1000\n"),
            &[],
            &["store.max_queue_bytes", "at least store.max_group_bytes"],
        );
        check_err(
            None,
            &[("DREAMOS_MESSAGES__MAX_QUEUED", "0")],
            &["messages.max_queued", "at least 1"],
        );
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = ConfigLoader::new()
            .file(Path::new("/nonexistent/dreamos.toml"))
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/dreamos.toml"));
    }
}
