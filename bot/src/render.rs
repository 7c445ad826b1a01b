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
    }
}

/// An answer for people.
pub fn answer_text(answer: &Answer) -> String {
    let data = match &answer.result {
        Err(e) => return format!("error ({}): {}", e.kind, e.message),
        Ok(data) => data,
    };
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
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
        _ => serde_json::to_string_pretty(data).unwrap_or_default(),
    }
}

fn agent_table(agents: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
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
