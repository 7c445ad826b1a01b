//! Tab completion of a console line, from the table: command names, subcommands, `--options` of the command
//! being typed, and values (choices, agents, groups, skills, repositories, commands, task ids).

use super::{
    spec::{CommandSpec, OptionKind, OptionSpec, Source, Takes},
    table::{spec, COMMANDS},
};

/// The swarm's names that completion offers, refreshed by the console after each command.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub agents: Vec<String>,
    pub groups: Vec<String>,
    pub skills: Vec<String>,
    pub repos: Vec<String>,
    /// Task ids, newest first, at most [`TASKS_OFFERED`].
    pub tasks: Vec<String>,
}

/// How many of the newest task ids completion offers: enough for the ones people work on, few enough to read.
pub const TASKS_OFFERED: usize = 100;

/// What completion offers of a running swarm: agents, groups, skills, indexed repositories and recent tasks.
pub async fn names_of(swarm: &dreamos_agents::Swarm) -> Names {
    let agents = swarm.agents();
    let mut groups: Vec<String> = agents.iter().flat_map(|a| a.groups.clone()).collect();
    groups.sort();
    groups.dedup();
    let repos = match swarm.code().repos().await {
        Ok(repos) => repos.into_iter().map(|r| r.name).collect(),
        Err(_) => Vec::new(),
    };
    // A manager that is busy or stopped offers no ids rather than delaying the prompt.
    let tasks = match swarm.tasks().list().await {
        Ok(tasks) => tasks
            .iter()
            .rev()
            .take(TASKS_OFFERED)
            .map(|t| t.id.to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    Names {
        agents: agents.into_iter().map(|a| a.name).collect(),
        groups,
        skills: swarm.skills().names(),
        repos,
        tasks,
    }
}

/// Candidates for the word that ends at the end of `line` (the text before the cursor): where the word starts,
/// and the words it could become.
pub fn complete(line: &str, names: &Names) -> (usize, Vec<String>) {
    let start = line.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let word = &line[start..];
    let before: Vec<&str> = line[..start].split_whitespace().collect();
    let candidates = match before.first() {
        None => COMMANDS.iter().map(|c| format!("/{}", c.name)).collect(),
        Some(first) => match first.strip_prefix('/').and_then(spec) {
            None => Vec::new(),
            Some(command) => for_command(command, &before[1..], word, names),
        },
    };
    let mut matching: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(word))
        .collect();
    matching.sort();
    matching.dedup();
    (start, matching)
}

fn for_command(command: &CommandSpec, typed: &[&str], word: &str, names: &Names) -> Vec<String> {
    let (options, typed): (&[OptionSpec], &[&str]) = if command.subcommands.is_empty() {
        (command.options, typed)
    } else {
        match typed.first().and_then(|s| command.subcommand(s)) {
            None if typed.is_empty() => {
                return command
                    .subcommands
                    .iter()
                    .map(|s| s.name.to_string())
                    .collect()
            }
            None => return Vec::new(),
            Some(sub) => (sub.options, &typed[1..]),
        }
    };
    if word.starts_with("--") {
        return options
            .iter()
            .filter(|o| o.takes == Takes::Named)
            .map(|o| format!("--{}", o.name))
            .collect();
    }
    // The value of a named option just typed.
    if let Some(previous) = typed.last().and_then(|w| w.strip_prefix("--")) {
        if let Some(option) = options
            .iter()
            .find(|o| o.name == previous && o.kind != OptionKind::Flag)
        {
            return candidates(option, names);
        }
    }
    // Otherwise the next positional: count the positional words typed so far.
    let mut positionals = 0;
    let mut skip = false;
    for word in typed {
        if skip {
            skip = false;
        } else if let Some(name) = word.strip_prefix("--") {
            skip = options
                .iter()
                .any(|o| o.name == name && o.kind != OptionKind::Flag);
        } else {
            positionals += 1;
        }
    }
    match options
        .iter()
        .filter(|o| o.takes != Takes::Named)
        .nth(positionals)
    {
        Some(option) => candidates(option, names),
        None => Vec::new(),
    }
}

/// The values an option could take: its choices, or what its autocomplete source names.
pub fn candidates(option: &OptionSpec, names: &Names) -> Vec<String> {
    if let OptionKind::Choice(words) = option.kind {
        return words.iter().map(|w| w.to_string()).collect();
    }
    match option.autocomplete {
        Some(Source::Agents) => names.agents.clone(),
        Some(Source::AgentsAndGroups) => names
            .agents
            .iter()
            .cloned()
            .chain(names.groups.iter().map(|g| format!("group:{g}")))
            .collect(),
        Some(Source::Skills) => names.skills.clone(),
        Some(Source::Repos) => names.repos.clone(),
        Some(Source::Commands) => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
        Some(Source::Tasks) => names.tasks.clone(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str, expected: &[&str]) {
        let names = Names {
            agents: vec!["agent-1".into(), "agent-2".into()],
            groups: vec!["crew".into()],
            skills: vec!["ping".into(), "search".into()],
            repos: vec!["tokio".into()],
            tasks: vec!["12".into(), "3".into(), "1".into()],
        };
        let (start, got) = complete(line, &names);
        assert_eq!(got, expected, "{line}");
        assert!(line[start..].chars().all(|c| !c.is_whitespace()));
    }

    #[test]
    fn completes_from_the_table() {
        check("/st", &["/status"]);
        check(
            "/agent ",
            &["pause", "purge", "restart", "resume", "spawn", "stop"],
        );
        check("/agent stop a", &["agent-1", "agent-2"]);
        check("/send ", &["agent-1", "agent-2", "group:crew"]);
        check("/send agent-1 hi --", &["--kind", "--priority", "--wait"]);
        check(
            "/send agent-1 hi --priority ",
            &["high", "low", "normal", "urgent"],
        );
        check("/send agent-1 hi --kind s", &["search"]);
        check("/search foo --", &["--lang", "--limit", "--path", "--repo"]);
        check("/search foo --repo ", &["tokio"]);
        check("/deps a.rs --", &["--depth", "--repo"]);
        check("/history --agent ", &["agent-1", "agent-2"]);
        check("/help s", &["search", "send", "status", "symbol"]);
        check("/task approve ", &["1", "12", "3"]);
        check("/task show 1", &["1", "12"]);
        check("/nothing ", &[]);
    }
}
