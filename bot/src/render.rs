//! Turning answers and events into lines: one JSON object per line (`--json`), or text for people.
//!
//! The text forms are shared: the console prints them, and the Discord frontend puts them in code blocks.

use dreamos_agents::SwarmEvent;
use dreamos_scanner::{model::Definition, IndexReport, RepoInfo, SearchHit, SymbolHit};
use serde_json::{json, Value};

use crate::{
    answer::{MessageView, Reply},
    session::Answer,
};

/// `{"ok":true,"command":"send","data":{...}}` or `{"ok":false,"command":"send","error":{"kind":..,"message":..}}`.
pub fn answer_json(answer: &Answer) -> String {
    let value = match &answer.result {
        Ok(data) => json!({ "ok": true, "command": answer.command, "data": data }),
        Err(e) => json!({
            "ok": false,
            "command": answer.command,
            "error": { "kind": e.kind, "message": e.message },
        }),
    };
    value.to_string()
}

/// `{"event":"reply","data":{...}}`: no `ok` field, so scripts can tell events from answers.
pub fn event_json(event: &SwarmEvent) -> String {
    json!({ "event": event.name(), "data": event_data(event) }).to_string()
}

fn event_data(event: &SwarmEvent) -> Value {
    match event {
        SwarmEvent::Message(message) => json!(MessageView::new(message, &[])),
        SwarmEvent::Progress {
            agent,
            message,
            percent,
            note,
        } => json!({ "agent": agent, "message": message, "percent": percent, "note": note }),
        SwarmEvent::Task(task) => json!(task.as_ref()),
        SwarmEvent::AgentRestarted {
            agent,
            restarts,
            reason,
        } => json!({ "agent": agent, "restarts": restarts, "reason": reason }),
        SwarmEvent::Fatal { error } => json!({ "error": error }),
    }
}

/// An event for people.
pub fn event_text(event: &SwarmEvent) -> String {
    match event {
        SwarmEvent::Message(message) => {
            let env = &message.envelope;
            let text = env
                .body
                .text_field()
                .unwrap_or_else(|| env.body.as_json().to_string());
            format!(
                "[{}] {} → {}: {}",
                event.name(),
                env.from,
                env.to,
                one_line(&text)
            )
        }
        SwarmEvent::Progress {
            agent,
            percent,
            note,
            ..
        } => match percent {
            Some(p) => format!("[progress] {agent} {p}%: {note}"),
            None => format!("[progress] {agent}: {note}"),
        },
        SwarmEvent::Task(task) => format!("[task] {}", task_line(task)),
        SwarmEvent::AgentRestarted {
            agent,
            restarts,
            reason,
        } => format!("[agent restarted] {agent} (restart #{restarts}): {reason}"),
        SwarmEvent::Fatal { error } => format!("[fatal] the store failed: {error}"),
    }
}

/// Text as it may reach a terminal: control characters (ESC, BEL, carriage returns, C1 controls, DEL) and the
/// bidirectional overrides that can make text read differently from what it is are shown escaped (`\x1b`,
/// `\u{202e}`). Newlines and tabs stay: they are the text's own layout.
pub fn printable(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A field that is one line by nature (a name, a path, a message's text in a one-line listing): its own line
/// breaks are shown as `\n` so that it cannot split or forge an output line.
pub fn one_line(text: &str) -> String {
    if text.contains(['\n', '\r']) {
        text.replace('\n', "\\n").replace('\r', "\\r")
    } else {
        text.to_string()
    }
}

fn past(action: &str) -> &str {
    match action {
        "create" => "created",
        "index" => "indexing as",
        "pause" => "paused",
        "resume" => "resumed",
        "cancel" => "cancelled",
        "retry" => "retried",
        "approve" => "approved",
        "reject" => "rejected",
        other => other,
    }
}

/// `task 17 [running on agent-1, 40%: 12 of 30 files] index the repo (scan, high)`.
pub fn task_line(task: &dreamos_runtime::task::Task) -> String {
    let mut state = task.status.as_str().to_string();
    if let Some(agent) = &task.agent {
        if task.status == dreamos_runtime::task::TaskStatus::Running {
            state.push_str(&format!(" on {agent}"));
        }
    }
    if let Some(p) = &task.progress {
        if !task.status.is_final() {
            state.push_str(&format!(", {}%: {}", p.percent, one_line(&p.line)));
        }
    }
    if let Some(error) = &task.error {
        if task.status.is_final() {
            state.push_str(&format!(": {}", one_line(error)));
        }
    }
    format!(
        "task {} [{state}] {} ({}, {})",
        task.id,
        one_line(&task.title),
        task.skill,
        task.priority.as_str()
    )
}

/// An `/ask` answer: the text, then which model answered, why, and how.
fn ask_text(answer: &dreamos_agents::llm::ask::AskAnswer) -> String {
    let mut lines = vec![answer.text.clone()];
    let mut about = format!(
        "— {} ({}: {}), {} step(s), {} + {} tokens",
        answer.model,
        answer.tag,
        answer.reason,
        answer.steps,
        answer.prompt_tokens,
        answer.completion_tokens
    );
    if !answer.tools.is_empty() {
        let tools: Vec<&str> = answer.tools.iter().map(|t| t.name.as_str()).collect();
        about.push_str(&format!("; tools: {}", tools.join(", ")));
    }
    if answer.reused_steps > 0 {
        about.push_str(&format!(
            "; {} step(s) recorded before a restart were not asked again",
            answer.reused_steps
        ));
    }
    if answer.history_turns > 0 {
        about.push_str(&format!(
            "; {} earlier turn(s) of this conversation",
            answer.history_turns
        ));
    }
    lines.push(about);
    for (model, error) in &answer.fell_back {
        lines.push(format!("  {model} failed first: {error}"));
    }
    if !answer.unverified.is_empty() {
        let unverified: Vec<String> = answer.unverified.iter().map(|c| c.to_string()).collect();
        lines.push(format!(
            "not found in the index, so not checked: {}",
            unverified.join(", ")
        ));
    }
    lines.join("\n")
}

/// An `ask` task as its message shows it while it moves: the question, then the answer streaming in (its
/// progress), then the answer.
fn ask_task(task: &dreamos_runtime::task::Task) -> String {
    use dreamos_runtime::task::TaskStatus;
    let question = task.args["question"].as_str().unwrap_or_default();
    let head = format!("task {} asks: {}", task.id, one_line(question));
    match task.status {
        TaskStatus::Done => {
            match task
                .result
                .clone()
                .map(serde_json::from_value::<dreamos_agents::llm::ask::AskAnswer>)
            {
                Some(Ok(answer)) => format!("{head}\n{}", ask_text(&answer)),
                _ => format!("{head}\n(done without an answer)"),
            }
        }
        status if status.is_final() => format!(
            "{head}\n{}: {}",
            status.as_str(),
            task.error.as_deref().unwrap_or("no reason given")
        ),
        status => match &task.progress {
            Some(p) => format!("{head}\n{}", p.line),
            None => format!("{head}\n({})", status.as_str()),
        },
    }
}

/// `/task show`: every field people ask about, one per line.
fn task_details(task: &dreamos_runtime::task::Task) -> String {
    let mut lines = vec![task_line(task)];
    lines.push(format!(
        "attempts {} of {}{}",
        task.attempts,
        task.max_attempts,
        task.timeout_ms
            .map(|ms| format!(", timeout {ms} ms"))
            .unwrap_or_default()
    ));
    if !task.after.is_empty() {
        let after: Vec<String> = task.after.iter().map(|t| t.to_string()).collect();
        lines.push(format!("after {}", after.join(", ")));
    }
    lines.push(format!(
        "created {} by {} ({})",
        task.created_at.rfc3339(),
        task.origin.by,
        task.origin.frontend
    ));
    lines.push(format!("args {}", one_line(&task.args.to_string())));
    if let Some(c) = &task.checkpoint {
        lines.push(format!("checkpoint {}", one_line(&c.to_string())));
    }
    if let Some(r) = &task.result {
        lines.push(format!("result {}", one_line(&r.to_string())));
    }
    if let Some(e) = &task.error {
        lines.push(format!("error {}", one_line(e)));
    }
    lines.join("\n")
}

/// An answer for people.
pub fn answer_text(answer: &Answer) -> String {
    match &answer.result {
        Err(e) => format!("error ({}): {}", e.kind, e.message),
        Ok(reply) => reply_text(reply),
    }
}

/// A command's result for people.
pub fn reply_text(reply: &Reply) -> String {
    match reply {
        Reply::Help(help) => {
            let mut out = String::new();
            for c in &help.commands {
                out.push_str(&format!("{:<60} {} ({}+)\n", c.usage, c.summary, c.role));
            }
            if help.details.is_empty() {
                out.push_str("The console also knows /quit. Ctrl-D ends the session.");
            } else {
                out.push_str(&help.details.join("\n"));
            }
            out
        }
        Reply::Status(status) => {
            let m = &status.messages;
            let mut out = format!(
                "up {}s since {}; messages: last seq {}, {} in history, {} unresolved, {} dead letters\n",
                status.uptime_secs, status.started_at, m.last_seq, m.retained, m.unresolved, m.dead_letters,
            );
            out.push_str(&agent_table(&status.agents));
            out
        }
        Reply::Agents(agents) => agent_table(&agents.agents),
        Reply::Agent(reply) => match reply.purged {
            Some(n) => format!(
                "purged {}: {n} waiting messages went to dead letters; it is {}",
                reply.agent.name,
                reply.agent.status.as_str()
            ),
            None => format!(
                "{} {}: now {}",
                reply.action,
                reply.agent.name,
                reply.agent.status.as_str()
            ),
        },
        Reply::Send(sent) => {
            let mut out = format!("accepted #{} ({}) for {}", sent.seq, sent.id, sent.to);
            match &sent.reply {
                Some(None) => out.push_str(&format!("; {}", sent.note.as_deref().unwrap_or(""))),
                None => {}
                Some(Some(reply)) => out.push_str(&format!(
                    "\nreply from {}: {}",
                    reply.from,
                    one_line(&reply.text())
                )),
            }
            out
        }
        Reply::Broadcast(order) => format!(
            "order #{} sent to {}: {}",
            order.seq,
            order.recipients.len(),
            order.recipients.join(", ")
        ),
        Reply::History(page) => {
            let mut lines: Vec<String> = page.messages.iter().map(message_line).collect();
            if lines.is_empty() {
                lines.push("no messages match".to_string());
            }
            if let Some(next) = page.next_before {
                lines.push(format!(
                    "more: /history --before {next} (with the same filters)"
                ));
            }
            lines.join("\n")
        }
        Reply::Entry(reply) => match reply.action {
            "forget" => format!(
                "forgot {} (a {} by {} from {})",
                reply.entry.id, reply.entry.kind, reply.entry.author, reply.entry.at
            ),
            _ => format!(
                "remembered {} ({}{})",
                reply.entry.id,
                reply.entry.kind,
                if reply.entry.tags.is_empty() {
                    String::new()
                } else {
                    format!("; tags: {}", reply.entry.tags.join(", "))
                }
            ),
        },
        Reply::Recall(found) => {
            let mut lines: Vec<String> = found
                .hits
                .iter()
                .map(|h| {
                    format!(
                        "{} {} {} by {}: {}{}",
                        h.entry.id,
                        h.entry.at,
                        h.entry.kind,
                        h.entry.author,
                        one_line(&h.snippet),
                        tags_suffix(&h.entry.tags)
                    )
                })
                .collect();
            if lines.is_empty() {
                lines.push("nothing in memory matches".to_string());
            } else if found.matched > found.hits.len() {
                lines.push(format!(
                    "{} of {} matches shown; --limit shows more",
                    found.hits.len(),
                    found.matched
                ));
            }
            lines.join("\n")
        }
        Reply::Ask(answer) => ask_text(answer),
        Reply::Usage(usage) => {
            let mut scope = Vec::new();
            if let Some(person) = &usage.person {
                scope.push(format!("for {person}"));
            }
            if let Some(agent) = &usage.agent {
                scope.push(format!("by {agent}"));
            }
            if let Some(since) = &usage.since {
                scope.push(format!("since {since}"));
            }
            let t = &usage.totals;
            let mut lines = vec![format!(
                "{} call(s){}{}: {} prompt + {} completion = {} tokens",
                t.calls,
                if t.failed > 0 {
                    format!(" ({} failed)", t.failed)
                } else {
                    String::new()
                },
                if scope.is_empty() {
                    String::new()
                } else {
                    format!(" {}", scope.join(" "))
                },
                t.prompt_tokens,
                t.completion_tokens,
                t.prompt_tokens + t.completion_tokens
            )];
            for (model, (calls, prompt, completion)) in &t.by_model {
                lines.push(format!(
                    "  {model}: {calls} call(s), {prompt} prompt + {completion} completion tokens"
                ));
            }
            if let Some(why) = &usage.llm_unavailable {
                lines.push(format!("no model can be called now: {why}"));
            }
            lines.join("\n")
        }
        Reply::Journal(page) => {
            let mut lines: Vec<String> = page
                .entries
                .iter()
                .map(|e| {
                    format!(
                        "{} {} {} by {}: {}{}",
                        e.id,
                        e.at,
                        e.kind,
                        e.author,
                        one_line(&e.text),
                        tags_suffix(&e.tags)
                    )
                })
                .collect();
            if lines.is_empty() {
                lines.push("the journal has no entries that match".to_string());
            }
            if let Some(next) = &page.next_before {
                lines.push(format!(
                    "more: /journal --before {next} (with the same filters)"
                ));
            }
            lines.join("\n")
        }
        Reply::Task(reply) if reply.task.skill == "ask" && reply.action != "show" => {
            ask_task(&reply.task)
        }
        Reply::Task(reply) => match reply.action {
            "show" => task_details(&reply.task),
            action => format!("{} {}", past(action), task_line(&reply.task)),
        },
        Reply::Tasks(list) => {
            let mut lines: Vec<String> = list.tasks.iter().map(task_line).collect();
            if lines.is_empty() {
                lines.push("no tasks match".to_string());
            } else if list.matched > list.tasks.len() {
                lines.push(format!(
                    "{} of {} shown; --limit shows more",
                    list.tasks.len(),
                    list.matched
                ));
            }
            lines.join("\n")
        }
        Reply::DeadLetters(letters) => {
            let lines: Vec<String> = letters
                .dead_letters
                .iter()
                .map(|d| {
                    format!(
                        "#{} for {} after {} attempts at {}: {}",
                        d.message.seq, d.agent, d.attempts, d.at, d.error
                    )
                })
                .collect();
            if lines.is_empty() {
                "no dead letters".to_string()
            } else {
                lines.join("\n")
            }
        }
        Reply::Index(report) => index_text(report),
        Reply::Search(search) => lines_or(&search.hits, hit_text, "no matches"),
        Reply::Symbol(symbols) => lines_or(&symbols.symbols, symbol_text, "no such symbol"),
        Reply::Outline(outline) => {
            lines_or(&outline.definitions, definition_text, "no definitions")
        }
        Reply::Deps(d) => {
            let mut lines = Vec::new();
            for (edges, label) in [(&d.imports, "imports"), (&d.importers, "imported_by")] {
                for edge in edges {
                    lines.push(format!(
                        "{label:<12} {} (depth {})",
                        one_line(&edge.path),
                        edge.depth
                    ));
                }
            }
            for module in &d.external {
                lines.push(format!("{:<12} {module}", "external"));
            }
            if lines.is_empty() {
                format!("{} has no imports and no importers", d.path)
            } else {
                lines.join("\n")
            }
        }
        Reply::Refs(r) => refs_text(r),
        Reply::Impact(i) => impact_text(i),
        Reply::Repos(repos) => lines_or(&repos.repos, repo_text, "no repositories indexed"),
    }
}

/// `/refs`: a count line, the definitions, then each use with its line marked, as `/search` shows hits.
pub fn refs_text(r: &dreamos_scanner::Refs) -> String {
    let mut out = format!(
        "{}: {} uses in {} files ({} calls, {} type uses, {} imports){}",
        one_line(&r.name),
        r.total,
        r.files,
        r.calls,
        r.types,
        r.imports,
        if (r.uses.len() as u64) < r.total {
            format!("; showing {}", r.uses.len())
        } else {
            String::new()
        }
    );
    for d in &r.definitions {
        out.push_str("\ndefined  ");
        out.push_str(&symbol_text(d));
    }
    for u in &r.uses {
        let within = match &u.within {
            Some(w) => format!("  in {} {}", name_of(&w.kind), one_line(&w.name)),
            None => "  (top level)".to_string(),
        };
        out.push_str(&format!(
            "\n{:<8} {}/{}:{}{within}",
            u.kind.name(),
            one_line(&u.repo),
            one_line(&u.path),
            u.line
        ));
        let first = u.line.saturating_sub(1).max(1);
        for (k, line) in u.snippet.lines().enumerate() {
            let number = first + k as u32;
            let mark = if number == u.line { '>' } else { ' ' };
            out.push_str(&format!("\n  {mark} {number:>5} {line}"));
        }
    }
    out
}

/// `/impact`: what was asked, the totals, then each file with its step, uses and the definitions in it.
pub fn impact_text(i: &dreamos_scanner::Impact) -> String {
    let what = match &i.target {
        dreamos_scanner::ImpactTarget::File { repo, path } => {
            format!("file {}/{}", one_line(repo), one_line(path))
        }
        dreamos_scanner::ImpactTarget::Symbol { name } => format!("symbol {}", one_line(name)),
    };
    let mut out = format!(
        "impact of {what}, {} steps: {} files, {} definitions, {} uses{}{}",
        i.depth,
        i.total_files,
        i.total_definitions,
        i.total_uses,
        if (i.files.len() as u64) < i.total_files {
            format!("; showing {} files", i.files.len())
        } else {
            String::new()
        },
        if i.truncated {
            "; stopped early at the bound on files read, so these are lower bounds"
        } else {
            ""
        }
    );
    if i.files.is_empty() {
        out.push_str("\nnothing depends on it");
    }
    for f in &i.files {
        out.push_str(&format!(
            "\nstep {} {}/{} ({} uses)",
            f.depth,
            one_line(&f.repo),
            one_line(&f.path),
            f.uses
        ));
        for d in &f.definitions {
            out.push_str(&format!(
                "\n    {:>5} {:<10} {} ({} uses, step {})",
                d.line,
                name_of(&d.kind),
                one_line(&d.name),
                d.uses,
                d.depth
            ));
        }
    }
    out
}

/// One history line: `#3 2026-… user:console → agent-1 [cell normal] ping: hello (agent-1 handled)`.
pub fn message_line(m: &MessageView) -> String {
    let mut line = format!(
        "#{} {} {} → {} [{} {}] {}: {}",
        m.seq,
        m.accepted_at,
        m.from,
        m.to,
        m.channel,
        m.priority,
        m.kind,
        one_line(&m.text())
    );
    let receipts: Vec<String> = m
        .recipients
        .iter()
        .flatten()
        .map(|r| {
            let status = serde_json::to_value(&r.status)
                .ok()
                .and_then(|v| v["status"].as_str().map(str::to_string))
                .unwrap_or_default();
            format!("{} {status}", r.agent)
        })
        .collect();
    if !receipts.is_empty() {
        line.push_str(&format!(" ({})", receipts.join(", ")));
    }
    line
}

fn lines_or<T>(items: &[T], line: fn(&T) -> String, empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.iter().map(line).collect::<Vec<_>>().join("\n")
    }
}

/// A scanner enum's name as it serializes: `function`, `type_alias`, `rust`.
pub fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The summary after indexing a repository.
pub fn index_text(r: &IndexReport) -> String {
    let skipped: Vec<String> = r
        .skipped
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    format!(
        "indexed {}: {} files, {} lines, {} symbols ({} added, {} changed, {} deleted, {} unchanged); skipped: {}; {:.2} s, {:.1} MB/s",
        r.repo,
        r.files,
        r.lines,
        r.symbols,
        r.added,
        r.changed,
        r.deleted,
        r.unchanged,
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        },
        r.seconds,
        r.mb_per_s,
    )
}

/// A search hit, grep-like: `repo/path:line:` and the snippet indented below.
pub fn hit_text(h: &SearchHit) -> String {
    let mut text = format!("{}/{}:{}:", one_line(&h.repo), one_line(&h.path), h.line);
    if h.matched == dreamos_scanner::LineMatch::Substring {
        text.push_str(" (substring)");
    }
    // The snippet is the line with one line of context each side: the matching line is marked `>`.
    let first = h.line.saturating_sub(1).max(1);
    for (k, line) in h.snippet.lines().enumerate() {
        let number = first + k as u32;
        let mark = if number == h.line { '>' } else { ' ' };
        text.push_str(&format!("\n  {mark} {number:>5} {line}"));
    }
    text
}

pub fn symbol_text(h: &SymbolHit) -> String {
    format!(
        "{:<10} {:<30} {}/{}:{}  {}",
        name_of(&h.kind),
        one_line(&h.name),
        one_line(&h.repo),
        one_line(&h.path),
        h.line,
        one_line(&h.signature)
    )
}

pub fn definition_text(d: &Definition) -> String {
    let name = match &d.container {
        Some(container) => format!("{container}::{}", d.name),
        None => d.name.clone(),
    };
    format!(
        "{:>5}-{:<5} {:<10} {:<40} {}",
        d.line,
        d.end_line,
        name_of(&d.kind),
        one_line(&name),
        one_line(&d.signature)
    )
}

pub fn repo_text(r: &RepoInfo) -> String {
    format!(
        "{:<24} {:>7} files {:>9} lines {:>8} symbols  {}",
        one_line(&r.name),
        r.files,
        r.lines,
        r.symbols,
        one_line(&r.root.display().to_string())
    )
}

fn agent_table(agents: &[dreamos_agents::AgentSnapshot]) -> String {
    let mut out = format!(
        "{:<12} {:<10} {:>5} {:>8} {:>6} {:>8}  {:<24} {:<12} {}\n",
        "agent",
        "status",
        "queue",
        "handled",
        "failed",
        "restarts",
        "last seen",
        "groups",
        "skills"
    );
    for a in agents {
        out.push_str(&format!(
            "{:<12} {:<10} {:>5} {:>8} {:>6} {:>8}  {:<24} {:<12} {}\n",
            a.name,
            a.status.as_str(),
            a.queue,
            a.handled,
            a.failed,
            a.restarts,
            a.last_seen.as_deref().unwrap_or("-"),
            if a.groups.is_empty() {
                "-".to_string()
            } else {
                a.groups.join(",")
            },
            a.skills.join(","),
        ));
    }
    out.trim_end().to_string()
}

/// ` [tag, tag]` after an entry's text, or nothing.
fn tags_suffix(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", tags.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_hit_marks_its_line_and_says_when_it_is_a_substring() {
        let hit = |line: u32, snippet: &str, matched| SearchHit {
            repo: "r".into(),
            path: "src/a.rs".into(),
            line,
            end_line: line,
            kind: None,
            name: None,
            lang: None,
            snippet: snippet.into(),
            score: 1.0,
            matched,
        };
        use dreamos_scanner::LineMatch;
        assert_eq!(
            hit_text(&hit(7, "before\nmatch\nafter", LineMatch::Identifier)),
            "r/src/a.rs:7:\n        6 before\n  >     7 match\n        8 after"
        );
        assert_eq!(
            hit_text(&hit(1, "match\nafter", LineMatch::Substring)),
            "r/src/a.rs:1: (substring)\n  >     1 match\n        2 after"
        );
    }

    #[test]
    fn nothing_reaches_a_terminal_raw() {
        assert_eq!(printable("plain\ttext\nnext"), "plain\ttext\nnext");
        assert_eq!(
            printable("\u{1b}[31mRED\u{1b}]0;TITLE\u{7}"),
            "\\x1b[31mRED\\x1b]0;TITLE\\x07"
        );
        assert_eq!(printable("a\rb\u{7f}\u{9b}"), "a\\x0db\\x7f\\x9b");
        assert_eq!(printable("abc\u{202e}cba"), "abc\\u{202e}cba");
        assert_eq!(one_line("src/evil\nfake.rs:1:"), "src/evil\\nfake.rs:1:");
    }
}
