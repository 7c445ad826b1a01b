//! The shape of a command declaration: commands, subcommands and their options, each declared once.
//!
//! Everything a frontend needs is derived from these: the console-line parser, usage strings, `/help`, Tab
//! completion, the Discord registration payload, and the conversion of Discord options. A declaration says what an
//! option *is* (its [`OptionKind`]), how the console takes it ([`Takes`]), whether it is required, its default, a
//! description short enough for Discord (at most 100 characters), its choices, and where autocompletion comes from.

use dreamos_runtime::config::{Config, Role};

/// One command of the table.
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// One line, at most 100 characters: `/help`'s list and Discord's description.
    pub summary: &'static str,
    /// More for `/help NAME`: what it does, in a sentence or two.
    pub help: &'static str,
    /// The least role that may run it.
    pub role: Role,
    /// Options of a command without subcommands.
    pub options: &'static [OptionSpec],
    /// Subcommands (`/agent spawn|stop|...`); a command has options or subcommands, not both.
    pub subcommands: &'static [SubcommandSpec],
}

/// One subcommand, such as `spawn` of `/agent`.
#[derive(Debug)]
pub struct SubcommandSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
}

/// One option of a command or subcommand.
#[derive(Debug)]
pub struct OptionSpec {
    /// Lower case: the Discord option's name, the console's `--name`, and (upper-cased) the usage placeholder.
    pub name: &'static str,
    pub kind: OptionKind,
    pub takes: Takes,
    pub required: bool,
    pub default: Option<DefaultValue>,
    /// At most 100 characters.
    pub description: &'static str,
    pub autocomplete: Option<Source>,
}

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// Free text.
    Text,
    /// A whole number between the bounds (inclusive).
    Integer { min: i64, max: Bound },
    /// Yes or no; on the console a bare `--name`.
    Flag,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// RFC 3339, or a duration ago such as `10m` or `2h`.
    Time,
    /// A path on the machine dreamos runs on.
    Path,
    /// An agent's name (or `group:NAME` where the command allows it).
    Agent,
    /// A message kind, which picks the skill of the same name.
    Kind,
    /// Words separated by commas.
    List,
    /// A repository's name in the code index.
    Repo,
    /// A language of the scanner.
    Lang,
    /// A command's name.
    Command,
}

/// An integer bound: fixed, or read from the configuration (so Discord's registered limits follow it).
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    Fixed(i64),
    Setting(&'static str, fn(&Config) -> i64),
}

impl PartialEq for Bound {
    fn eq(&self, other: &Bound) -> bool {
        match (self, other) {
            (Bound::Fixed(a), Bound::Fixed(b)) => a == b,
            (Bound::Setting(a, _), Bound::Setting(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Bound {}

impl Bound {
    pub fn value(self, config: &Config) -> i64 {
        match self {
            Bound::Fixed(n) => n,
            Bound::Setting(_, read) => read(config),
        }
    }
}

/// An option's default when it is not given.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    /// A literal value, as the console would type it.
    Literal(&'static str),
    /// A setting of the configuration (its key, and how to read it).
    Setting(&'static str, fn(&Config) -> String),
}

impl DefaultValue {
    pub fn value(self, config: &Config) -> String {
        match self {
            DefaultValue::Literal(text) => text.to_string(),
            DefaultValue::Setting(_, read) => read(config),
        }
    }

    /// For `/help`: `normal`, or `20 ([scanner] default_limit)`.
    pub fn describe(self, config: &Config) -> String {
        match self {
            DefaultValue::Literal(text) => text.to_string(),
            DefaultValue::Setting(key, read) => format!("{} ({key})", read(config)),
        }
    }
}

/// How the console takes an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// `--name value` (or `--name=value`; a bare `--name` for flags).
    Named,
    /// The next word, in declared order.
    Word,
    /// Every remaining word, joined by spaces (quotes removed).
    Rest,
    /// Every remaining word exactly as typed, quotes kept: a query with its own syntax.
    RawRest,
}

/// Where autocompletion of an option's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Agents,
    /// Agents, then `group:NAME` for each group.
    AgentsAndGroups,
    Skills,
    Repos,
    Commands,
    /// Task ids, newest first (in Discord with their titles and states).
    Tasks,
}

impl CommandSpec {
    /// Every option of the command or of its subcommands.
    pub fn all_options(&self) -> impl Iterator<Item = &'static OptionSpec> {
        let own: &'static [OptionSpec] = self.options;
        own.iter()
            .chain(self.subcommands.iter().flat_map(|s| s.options.iter()))
    }

    pub fn subcommand(&self, name: &str) -> Option<&'static SubcommandSpec> {
        let subs: &'static [SubcommandSpec] = self.subcommands;
        subs.iter().find(|s| s.name == name)
    }

    /// `/send AGENT TEXT [--priority low|normal|high|urgent] [--kind KIND] [--wait]`.
    pub fn usage(&self) -> String {
        if self.subcommands.is_empty() {
            return format!("/{}{}", self.name, options_usage(self.options));
        }
        let names: Vec<&str> = self.subcommands.iter().map(|s| s.name).collect();
        // Subcommands share their positionals here (`/agent` ones all take NAME); named options are listed once.
        let mut seen = Vec::new();
        let mut options = Vec::new();
        for option in self.all_options() {
            if !seen.contains(&option.name) {
                seen.push(option.name);
                options.push(option);
            }
        }
        let mut usage = format!("/{} {}", self.name, names.join("|"));
        for option in options {
            usage.push_str(&option_usage(option));
        }
        usage
    }
}

impl SubcommandSpec {
    pub fn usage(&self, parent: &str) -> String {
        format!("/{parent} {}{}", self.name, options_usage(self.options))
    }
}

fn options_usage(options: &[OptionSpec]) -> String {
    options.iter().map(option_usage).collect()
}

fn option_usage(option: &OptionSpec) -> String {
    let text = match (option.takes, option.kind) {
        (Takes::Named, OptionKind::Flag) => format!("--{}", option.name),
        (Takes::Named, _) => format!("--{} {}", option.name, option.shape()),
        _ => option.name.to_ascii_uppercase(),
    };
    if option.required {
        format!(" {text}")
    } else {
        format!(" [{text}]")
    }
}

impl OptionSpec {
    /// How usage strings show the option's value: `low|normal|high|urgent`, `N`, `TIME`, `A,B`, or its name.
    pub fn shape(&self) -> String {
        match self.kind {
            OptionKind::Choice(words) => words.join("|"),
            OptionKind::Integer { .. } => "N".to_string(),
            OptionKind::Time => "TIME".to_string(),
            OptionKind::List => "A,B".to_string(),
            _ => self.name.to_ascii_uppercase(),
        }
    }
}
