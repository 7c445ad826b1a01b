//! Turning answers and events into lines: one JSON object per line (`--json`), or text for people.

use dreamos_agents::SwarmEvent;
use serde_json::{json, Value};

use crate::session::{message_json, Answer};

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
        SwarmEvent::Message(message) => message_json(message, &[]),
        SwarmEvent::Progress {
            agent,
            message,
            percent,
            note,
        } => json!({ "agent": agent, "message": message, "percent": percent, "note": note }),
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
            format!("[{}] {} → {}: {text}", event.name(), env.from, env.to)
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
        SwarmEvent::AgentRestarted {
            agent,
            restarts,
            reason,
        } => format!("[agent restarted] {agent} (restart #{restarts}): {reason}"),
        SwarmEvent::Fatal { error } => format!("[fatal] the store failed: {error}"),
    }
}

/// An answer for people.
pub fn answer_text(answer: &Answer) -> String {
    let data = match &answer.result {
        Err(e) => return format!("error ({}): {}", e.kind, e.message),
        Ok(data) => data,
    };
    let s = str_of;
    match answer.command.as_str() {
        "help" => {
            let mut out = String::new();
            for c in data["commands"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:<60} {} ({}+)\n",
                    s(&c["usage"]),
                    s(&c["summary"]),
                    s(&c["role"])
                ));
            }
            out.push_str("The console also knows /quit. Ctrl-D ends the session.");
            out
        }
        "status" => {
            let m = &data["messages"];
            let mut out = format!(
                "up {}s since {}; messages: last seq {}, {} in history, {} unresolved, {} dead letters\n",
                s(&data["uptime_secs"]),
                s(&data["started_at"]),
                s(&m["last_seq"]),
                s(&m["retained"]),
                s(&m["unresolved"]),
                s(&m["dead_letters"]),
            );
            out.push_str(&agent_table(&data["agents"]));
            out
        }
        "agents" => agent_table(&data["agents"]),
        "agent" => {
            let a = &data["agent"];
            format!(
                "{} {}: now {}",
                s(&data["action"]),
                s(&a["name"]),
                s(&a["status"])
            )
        }
        "send" => {
            let mut out = format!(
                "accepted #{} ({}) for {}",
                s(&data["seq"]),
                s(&data["id"]),
                s(&data["to"])
            );
            match &data["reply"] {
                Value::Null if data.get("reply").is_some() => {
                    out.push_str(&format!("; {}", s(&data["note"])))
                }
                Value::Null => {}
                reply => out.push_str(&format!(
                    "\nreply from {}: {}",
                    s(&reply["from"]),
                    reply["body"]["text"]
                        .as_str()
                        .map_or_else(|| reply["body"].to_string(), str::to_string)
                )),
            }
            out
        }
        "broadcast" => {
            let recipients: Vec<String> = data["recipients"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            format!(
                "order #{} sent to {}: {}",
                s(&data["seq"]),
                recipients.len(),
                recipients.join(", ")
            )
        }
        "history" => {
            let mut lines: Vec<String> = data["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let receipts: Vec<String> = m["recipients"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| format!("{} {}", s(&r["agent"]), s(&r["status"])))
                        .collect();
                    let text = m["body"]["text"]
                        .as_str()
                        .map_or_else(|| m["body"].to_string(), str::to_string);
                    let mut line = format!(
                        "#{} {} {} → {} [{} {}] {}: {text}",
                        s(&m["seq"]),
                        s(&m["accepted_at"]),
                        s(&m["from"]),
                        s(&m["to"]),
                        s(&m["channel"]),
                        s(&m["priority"]),
                        s(&m["kind"]),
                    );
                    if !receipts.is_empty() {
                        line.push_str(&format!(" ({})", receipts.join(", ")));
                    }
                    line
                })
                .collect();
            if lines.is_empty() {
                lines.push("no messages match".to_string());
            }
            if let Some(next) = data["next_before"].as_u64() {
                lines.push(format!(
                    "more: /history --before {next} (with the same filters)"
                ));
            }
            lines.join("\n")
        }
        "deadletters" => {
            let lines: Vec<String> = data["dead_letters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "#{} for {} after {} attempts at {}: {}",
                        s(&d["message"]["seq"]),
                        s(&d["agent"]),
                        s(&d["attempts"]),
                        s(&d["at"]),
                        s(&d["error"]),
                    )
                })
                .collect();
            if lines.is_empty() {
                "no dead letters".to_string()
            } else {
                lines.join("\n")
            }
        }
        "index" => index_text(data),
        "search" => lines_or(data["hits"].as_array(), hit_text, "no matches"),
        "symbol" => lines_or(data["symbols"].as_array(), symbol_text, "no such symbol"),
        "outline" => lines_or(
            data["definitions"].as_array(),
            definition_text,
            "no definitions",
        ),
        "deps" => deps_text(data),
        "repos" => lines_or(
            data["repos"].as_array(),
            repo_text,
            "no repositories indexed",
        ),
        _ => serde_json::to_string_pretty(data).unwrap_or_default(),
    }
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn lines_or(items: Option<&Vec<Value>>, line: fn(&Value) -> String, empty: &str) -> String {
    let lines: Vec<String> = items.into_iter().flatten().map(line).collect();
    if lines.is_empty() {
        empty.to_string()
    } else {
        lines.join("\n")
    }
}

/// The summary after indexing a repository.
pub fn index_text(r: &Value) -> String {
    let skipped: Vec<String> = r["skipped"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    format!(
        "indexed {}: {} files, {} lines, {} symbols ({} added, {} changed, {} deleted, {} unchanged); skipped: {}; {:.2} s, {:.1} MB/s",
        str_of(&r["repo"]),
        str_of(&r["files"]),
        str_of(&r["lines"]),
        str_of(&r["symbols"]),
        str_of(&r["added"]),
        str_of(&r["changed"]),
        str_of(&r["deleted"]),
        str_of(&r["unchanged"]),
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        },
        r["seconds"].as_f64().unwrap_or(0.0),
        r["mb_per_s"].as_f64().unwrap_or(0.0),
    )
}

/// A search hit, grep-like: `repo/path:line:` and the snippet indented below.
pub fn hit_text(h: &Value) -> String {
    let mut text = format!(
        "{}/{}:{}:",
        str_of(&h["repo"]),
        str_of(&h["path"]),
        str_of(&h["line"])
    );
    for line in h["snippet"].as_str().unwrap_or("").lines() {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

pub fn symbol_text(h: &Value) -> String {
    format!(
        "{:<10} {:<30} {}/{}:{}  {}",
        str_of(&h["kind"]),
        str_of(&h["name"]),
        str_of(&h["repo"]),
        str_of(&h["path"]),
        str_of(&h["line"]),
        h["signature"].as_str().unwrap_or("")
    )
}

pub fn definition_text(d: &Value) -> String {
    let name = match d["container"].as_str() {
        Some(container) => format!("{container}::{}", str_of(&d["name"])),
        None => str_of(&d["name"]),
    };
    format!(
        "{:>5}-{:<5} {:<10} {:<40} {}",
        str_of(&d["line"]),
        str_of(&d["end_line"]),
        str_of(&d["kind"]),
        name,
        d["signature"].as_str().unwrap_or("")
    )
}

pub fn deps_text(d: &Value) -> String {
    let mut lines = Vec::new();
    for (key, label) in [("imports", "imports"), ("importers", "imported_by")] {
        for edge in d[key].as_array().into_iter().flatten() {
            lines.push(format!(
                "{label:<12} {} (depth {})",
                str_of(&edge["path"]),
                str_of(&edge["depth"])
            ));
        }
    }
    for module in d["external"].as_array().into_iter().flatten() {
        lines.push(format!("{:<12} {}", "external", str_of(module)));
    }
    if lines.is_empty() {
        format!("{} has no imports and no importers", str_of(&d["path"]))
    } else {
        lines.join("\n")
    }
}

pub fn repo_text(r: &Value) -> String {
    format!(
        "{:<24} {:>7} files {:>9} lines {:>8} symbols  {}",
        str_of(&r["name"]),
        str_of(&r["files"]),
        str_of(&r["lines"]),
        str_of(&r["symbols"]),
        str_of(&r["root"])
    )
}

fn agent_table(agents: &Value) -> String {
    let s = str_of;
    let mut out = format!(
        "{:<12} {:<10} {:>5} {:>8} {:>6} {:>8}  {:<24} {}\n",
        "agent", "status", "queue", "handled", "failed", "restarts", "last seen", "skills"
    );
    for a in agents.as_array().into_iter().flatten() {
        let skills: Vec<String> = a["skills"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        out.push_str(&format!(
            "{:<12} {:<10} {:>5} {:>8} {:>6} {:>8}  {:<24} {}\n",
            s(&a["name"]),
            s(&a["status"]),
            s(&a["queue"]),
            s(&a["handled"]),
            s(&a["failed"]),
            s(&a["restarts"]),
            s(&a["last_seen"]),
            skills.join(","),
        ));
    }
    out.trim_end().to_string()
}
