//! The slash commands' registration payload, derived from the command table, and registration only when it
//! changed (Discord allows 200 command creations a day per guild).
//!
//! Option names are the console's, lower case; enums are choices; agent names, kinds and repositories
//! autocomplete; integer bounds come from the configuration (so `/history limit` stops at `[messages] max_page`).
//! Every command is guild-only. Discord wants required options before optional ones, so they are ordered so here;
//! options are matched by name, so the order changes nothing else.

use dreamos_runtime::{config::Config, frontend::FrontendState};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::command::{
    spec::{OptionKind, OptionSpec},
    COMMANDS,
};

const STRING: u8 = 3;
const INTEGER: u8 = 4;
const BOOLEAN: u8 = 5;
const SUB_COMMAND: u8 = 1;
/// `contexts: [0]`: usable in guilds only.
const GUILD: u8 = 0;

/// Every command of the table as Discord's bulk-overwrite payload.
pub fn payload(config: &Config) -> Value {
    Value::Array(
        COMMANDS
            .iter()
            .map(|command| {
                let options: Vec<Value> = if command.subcommands.is_empty() {
                    options(command.options, config)
                } else {
                    command
                        .subcommands
                        .iter()
                        .map(|sub| {
                            json!({
                                "type": SUB_COMMAND,
                                "name": sub.name,
                                "description": sub.summary,
                                "options": options(sub.options, config),
                            })
                        })
                        .collect()
                };
                json!({
                    "name": command.name,
                    "type": 1,
                    "description": command.summary,
                    "options": options,
                    "contexts": [GUILD],
                    "dm_permission": false,
                })
            })
            .collect(),
    )
}

fn options(options: &[OptionSpec], config: &Config) -> Vec<Value> {
    let mut out: Vec<(bool, Value)> = options
        .iter()
        .map(|option| (option.required, option_json(option, config)))
        .collect();
    // Stable: required first, then the declared order.
    out.sort_by_key(|(required, _)| !*required);
    out.into_iter().map(|(_, v)| v).collect()
}

fn option_json(option: &OptionSpec, config: &Config) -> Value {
    let mut value = json!({
        "name": option.name,
        "description": option.description,
        "required": option.required,
    });
    match option.kind {
        OptionKind::Flag => value["type"] = json!(BOOLEAN),
        OptionKind::Integer { min, max } => {
            value["type"] = json!(INTEGER);
            value["min_value"] = json!(min);
            value["max_value"] = json!(max.value(config));
            if option.autocomplete.is_some() {
                value["autocomplete"] = json!(true);
            }
        }
        OptionKind::Choice(words) => {
            value["type"] = json!(STRING);
            value["choices"] = words
                .iter()
                .map(|w| json!({ "name": w, "value": w }))
                .collect();
        }
        _ => {
            value["type"] = json!(STRING);
            if option.autocomplete.is_some() {
                value["autocomplete"] = json!(true);
            }
        }
    }
    value
}

/// The payload's fingerprint, stored per guild after a successful registration.
pub fn fingerprint(payload: &Value) -> String {
    let digest = Sha256::digest(payload.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key under which a guild's (or the global) registration is remembered.
pub fn state_key(guild: Option<u64>) -> String {
    match guild {
        Some(id) => format!("discord.commands.guild.{id}"),
        None => "discord.commands.global".to_string(),
    }
}

/// Whether the payload differs from the one last registered there.
pub fn needs_registering(state: &FrontendState, guild: Option<u64>, print: &str) -> bool {
    !matches!(state.text(&state_key(guild)), Ok(Some(stored)) if stored == print)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Discord's limits on the registration payload, checked on what we send.
    #[test]
    fn the_payload_fits_discords_limits() {
        let payload = payload(&Config::defaults());
        let commands = payload.as_array().expect("array");
        assert!(commands.len() <= 100);
        let name_ok = |n: &str| {
            (1..=32).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        fn options_of(v: &Value) -> Vec<&Value> {
            v["options"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default()
        }
        let mut total_chars = 0;
        for command in commands {
            let name = command["name"].as_str().expect("name");
            assert!(name_ok(name), "{name}");
            let description = command["description"].as_str().expect("description");
            assert!((1..=100).contains(&description.len()), "{name}");
            total_chars += name.len() + description.len();
            let options = options_of(command);
            assert!(options.len() <= 25, "{name}");
            let mut lists = vec![options];
            for option in options_of(command) {
                if option["type"] == SUB_COMMAND {
                    lists.push(options_of(option));
                }
            }
            for list in lists {
                assert!(list.len() <= 25, "{name}");
                let required: Vec<bool> = list
                    .iter()
                    .map(|o| o["required"].as_bool().unwrap_or(false))
                    .collect();
                assert!(
                    required.windows(2).all(|w| w[0] || !w[1]),
                    "{name}: required options come first: {required:?}"
                );
                for option in list {
                    let option_name = option["name"].as_str().expect("option name");
                    assert!(name_ok(option_name), "{name} {option_name}");
                    let text = option["description"].as_str().expect("description");
                    assert!((1..=100).contains(&text.len()), "{name} {option_name}");
                    total_chars += option_name.len() + text.len();
                    let choices = option["choices"].as_array().map_or(0, Vec::len);
                    assert!(choices <= 25, "{name} {option_name}");
                    assert!(
                        !(choices > 0 && option["autocomplete"] == true),
                        "{name} {option_name}: choices and autocomplete exclude each other"
                    );
                }
            }
        }
        // Discord's limit on the combined names, descriptions and values of one command is 4000 characters;
        // all of ours together stay well under it.
        assert!(total_chars < 4000 * commands.len());
    }

    #[test]
    fn the_payload_is_snapshotted() {
        insta::assert_json_snapshot!(payload(&Config::defaults()));
    }

    #[test]
    fn fingerprints_change_with_the_payload() {
        let config = Config::defaults();
        let a = fingerprint(&payload(&config));
        let mut other = config.clone();
        other.messages.max_page = 10;
        assert_ne!(a, fingerprint(&payload(&other)));
        assert_eq!(a, fingerprint(&payload(&config)));
    }
}
