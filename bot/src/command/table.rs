//! The table: every command of Dream.OS, its options, roles and help, declared once.
//!
//! `/help` lists commands in this order. A new command starts here; the parser, completion, help, the Discord
//! registration and the conversion of Discord options follow from its entry, and its typed conversion lives in
//! [`super::Command::from_invocation`].

use dreamos_runtime::config::Role;

use super::spec::{
    Bound, CommandSpec, DefaultValue, OptionKind, OptionSpec, Source, SubcommandSpec, Takes,
};

const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
const CHANNELS: &[&str] = &["cell", "captain"];
/// The scanner's languages, as `lang:` and `--lang` take them.
pub const LANGS: &[&str] = &[
    "rust",
    "python",
    "javascript",
    "typescript",
    "tsx",
    "go",
    "java",
    "c",
    "cpp",
];
/// How a name is used, as `--kind` of `/refs` takes it.
pub const REF_KINDS: &[&str] = &["call", "type", "import"];
/// The scanner's kinds of definition, as `--kind` of `/symbol` takes them.
pub const SYMBOL_KINDS: &[&str] = &[
    "function",
    "method",
    "class",
    "struct",
    "enum",
    "interface",
    "type_alias",
    "constant",
    "variable",
    "macro",
    "module",
    "field",
    "enum_variant",
    "union",
    "namespace",
    "impl",
];

/// The largest integer every frontend can carry exactly (Discord's integers are doubles).
const MAX_EXACT: i64 = (1 << 53) - 1;

const fn named(
    name: &'static str,
    kind: OptionKind,
    description: &'static str,
    default: Option<DefaultValue>,
    autocomplete: Option<Source>,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        takes: Takes::Named,
        required: false,
        default,
        description,
        autocomplete,
    }
}

/// The tags `/ask --model` takes.
const MODEL_TAGS: &[&str] = &["fast", "balanced", "heavy", "code"];

const fn positional(
    name: &'static str,
    kind: OptionKind,
    takes: Takes,
    required: bool,
    description: &'static str,
    autocomplete: Option<Source>,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        takes,
        required,
        default: None,
        description,
        autocomplete,
    }
}

const AGENT_NAME: OptionSpec = positional(
    "name",
    OptionKind::Agent,
    Takes::Word,
    true,
    "the agent's name",
    Some(Source::Agents),
);

const PAGE_LIMIT: OptionSpec = page_limit("50");

/// `--limit`: at most `[messages] max_page`, `default` unless given.
const fn page_limit(default: &'static str) -> OptionSpec {
    named(
        "limit",
        OptionKind::Integer {
            min: 1,
            max: Bound::Setting("[messages] max_page", |c| c.messages.max_page as i64),
        },
        "how many to show at most",
        Some(DefaultValue::Literal(default)),
        None,
    )
}

const BEFORE: OptionSpec = named(
    "before",
    OptionKind::Integer {
        min: 1,
        max: Bound::Fixed(MAX_EXACT),
    },
    "only those with a sequence number below this (the previous page's next_before)",
    None,
    None,
);

const HIT_LIMIT: OptionSpec = named(
    "limit",
    OptionKind::Integer {
        min: 1,
        max: Bound::Setting("[scanner] max_limit", |c| c.scanner.max_limit as i64),
    },
    "how many hits at most",
    Some(DefaultValue::Setting("[scanner] default_limit", |c| {
        c.scanner.default_limit.to_string()
    })),
    None,
);

const REPO: OptionSpec = named(
    "repo",
    OptionKind::Repo,
    "only this indexed repository",
    None,
    Some(Source::Repos),
);

const FILE: OptionSpec = positional(
    "file",
    OptionKind::Path,
    Takes::Word,
    true,
    "a file on disk inside an indexed repository, or a path relative to its root",
    None,
);

const SPAWN: &[OptionSpec] = &[
    positional(
        "name",
        OptionKind::Agent,
        Takes::Word,
        true,
        "the new agent's name (or a stopped one's)",
        None,
    ),
    named(
        "skills",
        OptionKind::List,
        "its skills, comma-separated (default: every skill)",
        None,
        Some(Source::Skills),
    ),
    named(
        "groups",
        OptionKind::List,
        "the groups it belongs to, comma-separated",
        None,
        None,
    ),
];

const ONE_AGENT: &[OptionSpec] = &[AGENT_NAME];

/// Every command, in the order `/help` lists them.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "help",
        summary: "list the commands, or explain one",
        help: "Without an argument, every command with what it does and the role it needs; with one, its options.",
        role: Role::Viewer,
        options: &[positional(
            "command",
            OptionKind::Command,
            Takes::Word,
            false,
            "the command to explain",
            Some(Source::Commands),
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "status",
        summary: "the swarm at a glance: agents, queues, counters, messages",
        help: "Each agent's status, queue, handled, failed and restart counts, and the message log's counters.",
        role: Role::Viewer,
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "agents",
        summary: "every agent with its status, skills and groups",
        help: "The agents of the swarm, configured or spawned, with their skills and groups.",
        role: Role::Viewer,
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "agent",
        summary: "start, stop, restart, pause, resume or purge an agent (--skills/--groups with spawn)",
        help: "Agent lifecycle. A stopped agent keeps its queue for when it is started again; a paused one takes \
               only captain orders until resumed.",
        role: Role::Captain,
        options: &[],
        subcommands: &[
            SubcommandSpec {
                name: "spawn",
                summary: "start a new agent, or a stopped or failed one again",
                options: SPAWN,
            },
            SubcommandSpec {
                name: "stop",
                summary: "stop an agent after its current message; its queue is kept",
                options: ONE_AGENT,
            },
            SubcommandSpec {
                name: "restart",
                summary: "stop (if running) and start an agent, clearing its failure count",
                options: ONE_AGENT,
            },
            SubcommandSpec {
                name: "pause",
                summary: "let an agent take only captain orders until resumed",
                options: ONE_AGENT,
            },
            SubcommandSpec {
                name: "resume",
                summary: "let a paused agent take its queue again",
                options: ONE_AGENT,
            },
            SubcommandSpec {
                name: "purge",
                summary: "move every message waiting for an agent to dead letters (not the one it is handling)",
                options: ONE_AGENT,
            },
        ],
    },
    CommandSpec {
        name: "send",
        summary: "send a message to an agent (or group:NAME); --wait also waits for the reply",
        help: "The message's kind picks the skill that handles it. The answer comes once the message is durable; \
               the reply shows as an event, or in the answer with --wait.",
        role: Role::Operator,
        options: &[
            positional(
                "agent",
                OptionKind::Agent,
                Takes::Word,
                true,
                "an agent, or group:NAME",
                Some(Source::AgentsAndGroups),
            ),
            positional(
                "text",
                OptionKind::Text,
                Takes::Rest,
                true,
                "what to send",
                None,
            ),
            named(
                "priority",
                OptionKind::Choice(PRIORITIES),
                "an agent takes the most urgent waiting message first",
                Some(DefaultValue::Literal("normal")),
                None,
            ),
            named(
                "kind",
                OptionKind::Kind,
                "the skill that handles it",
                Some(DefaultValue::Setting("[messages] default_kind", |c| {
                    c.messages.default_kind.clone()
                })),
                Some(Source::Skills),
            ),
            named(
                "wait",
                OptionKind::Flag,
                "also wait for the agent's reply",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "broadcast",
        summary: "order every agent (or one group) on the captain channel; urgent by default",
        help: "An order through CaptainPhone to every live agent, or to one group; each agent acknowledges it.",
        role: Role::Captain,
        options: &[
            positional(
                "text",
                OptionKind::Text,
                Takes::Rest,
                true,
                "the order",
                None,
            ),
            named(
                "group",
                OptionKind::Text,
                "only the agents of this group",
                None,
                None,
            ),
            named(
                "priority",
                OptionKind::Choice(PRIORITIES),
                "how urgent the order is",
                Some(DefaultValue::Literal("urgent")),
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "history",
        summary: "messages newest first; TIME is RFC 3339 or a duration ago (10m, 2h); page on with --before",
        help: "Every filter is optional and they combine. Each message shows each recipient's status: pending \
               (with attempts), handled or dead.",
        role: Role::Viewer,
        options: &[
            named(
                "agent",
                OptionKind::Agent,
                "messages from, to or delivered to this agent",
                None,
                Some(Source::Agents),
            ),
            named(
                "channel",
                OptionKind::Choice(CHANNELS),
                "cell (conversation) or captain (orders)",
                None,
                None,
            ),
            named(
                "kind",
                OptionKind::Kind,
                "only this kind",
                None,
                Some(Source::Skills),
            ),
            named(
                "since",
                OptionKind::Time,
                "accepted at or after (RFC 3339, or a duration ago: 10m, 2h)",
                None,
                None,
            ),
            named(
                "until",
                OptionKind::Time,
                "accepted before (RFC 3339, or a duration ago)",
                None,
                None,
            ),
            named(
                "text",
                OptionKind::Text,
                "bodies containing this text (any case)",
                None,
                None,
            ),
            PAGE_LIMIT,
            BEFORE,
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "index",
        summary: "index (incrementally) the repository at PATH, which must be under [scanner] allowed_roots",
        help: "Runs as a task: answers at once with the task's id (/task show follows it; --wait answers with the \
               report when it is done). Files that did not change since the last run are skipped, and so are those \
               an interrupted run had committed; every skipped file is counted with why.",
        role: Role::Captain,
        options: &[
            positional(
                "path",
                OptionKind::Path,
                Takes::Word,
                true,
                "the repository's root directory",
                None,
            ),
            named(
                "name",
                OptionKind::Text,
                "its name in the index (default: the directory's name)",
                None,
                None,
            ),
            named(
                "wait",
                OptionKind::Flag,
                "answer with the report once the task is done, not at once with the task",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "search",
        summary: "search indexed code: foo lang:rust path:src/*.rs repo:name sym:Foo \"exact phrase\" /regex/ case:yes",
        help: "Terms are ANDed; identifiers match whole or by their camelCase and snake_case parts; substrings and \
               regexes are verified against the real content.",
        role: Role::Viewer,
        options: &[
            positional(
                "query",
                OptionKind::Text,
                Takes::RawRest,
                true,
                "words, \"phrases\", /regexes/ and filters such as lang:rust",
                None,
            ),
            named(
                "lang",
                OptionKind::Choice(LANGS),
                "only this language",
                None,
                None,
            ),
            named(
                "path",
                OptionKind::Text,
                "only paths matching this glob (or containing this text)",
                None,
                None,
            ),
            REPO,
            HIT_LIMIT,
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "symbol",
        summary: "find definitions by name: exact, then prefix, then fuzzy",
        help: "Definitions extracted by tree-sitter, ranked exact name first.",
        role: Role::Viewer,
        options: &[
            positional(
                "name",
                OptionKind::Text,
                Takes::Word,
                true,
                "the symbol's name",
                None,
            ),
            named(
                "kind",
                OptionKind::Choice(SYMBOL_KINDS),
                "only definitions of this kind",
                None,
                None,
            ),
            REPO,
            HIT_LIMIT,
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "outline",
        summary: "the definitions of a file (a path on disk, or relative to its repository)",
        help: "Every definition of one file with its lines, kind, container and signature.",
        role: Role::Viewer,
        options: &[FILE, REPO],
        subcommands: &[],
    },
    CommandSpec {
        name: "deps",
        summary: "what a file imports and what imports it, N steps deep",
        help: "Imports resolved to files of the repository, and the files that import it, transitively.",
        role: Role::Viewer,
        options: &[
            FILE,
            REPO,
            named(
                "depth",
                OptionKind::Integer {
                    min: 1,
                    max: Bound::Fixed(32),
                },
                "how many steps of imports to follow",
                Some(DefaultValue::Literal("1")),
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "refs",
        summary: "where a name is used: calls, type uses and imports, definitions first",
        help: "Uses found by tree-sitter, by name as written (not resolved: x.parse() is a use of every parse), \
               each with the definition it sits in.",
        role: Role::Viewer,
        options: &[
            positional(
                "name",
                OptionKind::Text,
                Takes::Word,
                true,
                "the symbol's name, such as parse_query (case-sensitive)",
                None,
            ),
            named(
                "kind",
                OptionKind::Choice(REF_KINDS),
                "only uses of this kind",
                None,
                None,
            ),
            REPO,
            HIT_LIMIT,
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "impact",
        summary: "what may break if a file or a symbol changes: importers, and the definitions that use it",
        help: "A file: its importers, N steps out, with the uses of its names in the direct ones. A symbol: the \
               definitions that use it, then those that use them, N steps out. Grouped by file, with counts.",
        role: Role::Viewer,
        options: &[
            positional(
                "target",
                OptionKind::Text,
                Takes::Word,
                true,
                "a file (src/store.rs, or a path on disk) or a symbol name",
                None,
            ),
            REPO,
            named(
                "depth",
                OptionKind::Integer {
                    min: 1,
                    max: Bound::Fixed(dreamos_scanner::MAX_IMPACT_DEPTH as i64),
                },
                "how many steps of importers or users to follow",
                Some(DefaultValue::Literal("2")),
                None,
            ),
            HIT_LIMIT,
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "repos",
        summary: "the repositories in the code index",
        help: "Each indexed repository with its files, lines, symbols and root.",
        role: Role::Viewer,
        options: &[],
        subcommands: &[],
    },
    CommandSpec {
        name: "task",
        summary: "long work scheduled onto agents: create, list, show, pause, resume, cancel, retry, approve",
        help: "A task runs a skill on an agent that has it, highest priority first, with retries, a timeout, \
               dependencies and captain approval; it survives restarts and resumes from its latest checkpoint. \
               Viewers may list and show tasks; operators create and control them; captains approve or reject.",
        role: Role::Viewer,
        options: &[],
        subcommands: &[
            SubcommandSpec {
                name: "create",
                summary: "create a task: SKILL [ARGS]; answers with its id once it is durable",
                options: TASK_CREATE,
            },
            SubcommandSpec {
                name: "list",
                summary: "tasks, newest first",
                options: TASK_LIST,
            },
            SubcommandSpec {
                name: "show",
                summary: "one task in full: state, attempts, progress, checkpoint, result or error",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "pause",
                summary: "hold a task; a running one stops at its next check and keeps its checkpoint",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "resume",
                summary: "let a paused task go on",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "cancel",
                summary: "cancel a task that has not finished; tasks after it fail",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "retry",
                summary: "run a failed or cancelled task again from its first attempt",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "approve",
                summary: "let a task that waits for approval run (captain)",
                options: ONE_TASK,
            },
            SubcommandSpec {
                name: "reject",
                summary: "refuse a task that waits for approval: it is cancelled (captain)",
                options: ONE_TASK,
            },
        ],
    },
    CommandSpec {
        name: "remember",
        summary: "write TEXT into the swarm's memory (Dreamscribe): --kind decision --tags deploy,ci",
        help: "An entry is durable before the answer comes. Link it to what it tells about with --tasks, --agents, \
               --files (repo:path:line) and --messages; /recall finds it by its words, partial words and tags.",
        role: Role::Operator,
        options: &[
            positional(
                "text",
                OptionKind::Text,
                Takes::Rest,
                true,
                "what to remember: what happened, what was decided and why",
                None,
            ),
            named(
                "kind",
                OptionKind::Choice(ENTRY_KINDS),
                "event, decision, note, summary or fact",
                Some(DefaultValue::Literal("note")),
                None,
            ),
            named(
                "tags",
                OptionKind::List,
                "comma-separated tags: lowercase letters, digits, - _ . /",
                None,
                None,
            ),
            named(
                "tasks",
                OptionKind::List,
                "task ids it tells about, comma-separated",
                None,
                None,
            ),
            named(
                "agents",
                OptionKind::List,
                "agents it tells about, comma-separated",
                None,
                None,
            ),
            named(
                "files",
                OptionKind::List,
                "places in indexed code it tells about: repo:path:line, comma-separated",
                None,
                None,
            ),
            named(
                "messages",
                OptionKind::List,
                "message ids it tells about, comma-separated",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "recall",
        summary: "search the memory: best matches first (newest on ties), each with a snippet",
        help: "Words match as written and by their stems (deploys, deployed, deploying), and a word's beginning \
               finds longer words (migrat finds migration); tags and authors match too. Filters combine; TIME is \
               RFC 3339 or a duration ago (10m, 2h).",
        role: Role::Viewer,
        options: &[
            positional(
                "query",
                OptionKind::Text,
                Takes::Rest,
                true,
                "words to look for",
                None,
            ),
            ENTRY_AGENT,
            named(
                "author",
                OptionKind::Text,
                "entries by this author: swarm, an agent, console:console, discord:<user id>",
                None,
                None,
            ),
            ENTRY_KIND,
            named(
                "tags",
                OptionKind::List,
                "only entries with all these tags",
                None,
                None,
            ),
            named(
                "since",
                OptionKind::Time,
                "written at or after (RFC 3339, or a duration ago: 10m, 2h)",
                None,
                None,
            ),
            named(
                "until",
                OptionKind::Time,
                "written before (RFC 3339, or a duration ago)",
                None,
                None,
            ),
            named(
                "task",
                OptionKind::Integer {
                    min: 1,
                    max: Bound::Fixed(MAX_EXACT),
                },
                "only entries linked to this task",
                None,
                None,
            ),
            named(
                "message",
                OptionKind::Text,
                "only entries linked to this message id",
                None,
                None,
            ),
            page_limit("10"),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "journal",
        summary: "the memory newest first: what the swarm and its people wrote down; page on with --before",
        help: "Every entry: people's /remember, agents' notes and the swarm's own journal (agents started and \
               stopped, broadcasts, dead letters, indexing runs, tasks; [memory] journal says which).",
        role: Role::Viewer,
        options: &[
            ENTRY_AGENT,
            ENTRY_KIND,
            page_limit("20"),
            named(
                "before",
                OptionKind::Text,
                "only entries older than this id (the previous page's next_before)",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "ask",
        summary: "ask a model a question; it may look at the code index and the memory, and cites repo:path:line",
        help: "The model is chosen by the question (fast, balanced, heavy or code; --model names the tag) and falls \
               back to the next configured one when it fails. It may call tools (search_code, find_symbol, refs, \
               outline, deps, recall) for a few steps; every repo:path:line it cites is checked against the index. \
               Needs [llm] in the configuration; the tokens count against [llm.budgets].",
        role: Role::Operator,
        options: &[
            positional(
                "question",
                OptionKind::Text,
                Takes::Rest,
                true,
                "what to ask",
                None,
            ),
            named(
                "model",
                OptionKind::Choice(MODEL_TAGS),
                "the kind of model: fast, balanced, heavy or code (default: chosen by the question)",
                None,
                None,
            ),
            named(
                "agent",
                OptionKind::Agent,
                "the agent on whose behalf the model is asked (its budget counts the tokens)",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "usage",
        summary: "tokens spent on models: calls, prompt and completion tokens, per model (operator)",
        help: "Adds up the token ledger: one record per call to a model, with the tokens the server reported. \
               Budgets per person, per agent and per day are in [llm.budgets]; a call that could pass one is \
               refused before it is sent.",
        role: Role::Operator,
        options: &[
            named(
                "person",
                OptionKind::Text,
                "only calls made for this person: console:NAME or discord:USER_ID",
                None,
                None,
            ),
            named(
                "agent",
                OptionKind::Agent,
                "only calls made by this agent",
                None,
                None,
            ),
            named(
                "since",
                OptionKind::Time,
                "only calls since (RFC 3339, or a duration ago such as 1d)",
                None,
                None,
            ),
        ],
        subcommands: &[],
    },
    CommandSpec {
        name: "forget",
        summary: "remove a memory entry by its id, from sled and the search index (captain)",
        help: "The removal is itself journaled: who forgot which entry, never its text.",
        role: Role::Captain,
        options: &[positional(
            "id",
            OptionKind::Text,
            Takes::Word,
            true,
            "the entry's id (/journal and /recall show them)",
            None,
        )],
        subcommands: &[],
    },
    CommandSpec {
        name: "deadletters",
        summary: "messages that failed too often, newest first",
        help: "Messages given up on after [messages] max_attempts, with the agent, the attempts and the last error.",
        role: Role::Viewer,
        options: &[PAGE_LIMIT, BEFORE],
        subcommands: &[],
    },
];

const ENTRY_KINDS: &[&str] = &["event", "decision", "note", "summary", "fact"];

const ENTRY_AGENT: OptionSpec = named(
    "agent",
    OptionKind::Text,
    "entries by this agent or about it",
    None,
    Some(Source::Agents),
);

const ENTRY_KIND: OptionSpec = named(
    "kind",
    OptionKind::Choice(ENTRY_KINDS),
    "only this kind",
    None,
    None,
);

const TASK_STATUSES: &[&str] = &[
    "queued",
    "running",
    "waiting_approval",
    "paused",
    "done",
    "failed",
    "cancelled",
];

const TASK_ID: OptionSpec = positional(
    "id",
    OptionKind::Integer {
        min: 1,
        max: Bound::Fixed(MAX_EXACT),
    },
    Takes::Word,
    true,
    "the task's id (/task list shows them)",
    Some(Source::Tasks),
);

const ONE_TASK: &[OptionSpec] = &[TASK_ID];

const TASK_CREATE: &[OptionSpec] = &[
    positional(
        "skill",
        OptionKind::Kind,
        Takes::Word,
        true,
        "the skill that does the work",
        Some(Source::Skills),
    ),
    positional(
        "args",
        OptionKind::Text,
        Takes::RawRest,
        false,
        "the skill's input: a JSON object, or text (as /send's), taken as typed",
        None,
    ),
    named(
        "priority",
        OptionKind::Choice(PRIORITIES),
        "higher priorities start first; first created first within one",
        Some(DefaultValue::Literal("normal")),
        None,
    ),
    named(
        "after",
        OptionKind::List,
        "tasks (ids, comma-separated) that must be done before this one starts",
        None,
        None,
    ),
    named(
        "title",
        OptionKind::Text,
        "a name for people (default: the skill and its input)",
        None,
        None,
    ),
    named(
        "timeout",
        OptionKind::Text,
        "one attempt's time limit, such as 30s or 10m; a timeout counts as a failed attempt",
        None,
        None,
    ),
    named(
        "max-attempts",
        OptionKind::Integer {
            min: 1,
            max: Bound::Fixed(100),
        },
        "attempts before the task fails",
        Some(DefaultValue::Setting("[tasks] max_attempts", |c| {
            c.tasks.max_attempts.to_string()
        })),
        None,
    ),
    named(
        "approve",
        OptionKind::Flag,
        "wait for a captain's /task approve before it first runs",
        None,
        None,
    ),
];

const TASK_LIST: &[OptionSpec] = &[
    named(
        "status",
        OptionKind::Choice(TASK_STATUSES),
        "only tasks in this state",
        None,
        None,
    ),
    named(
        "agent",
        OptionKind::Agent,
        "only tasks this agent runs or ran",
        None,
        Some(Source::Agents),
    ),
    PAGE_LIMIT,
];

/// The command of that name.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}
