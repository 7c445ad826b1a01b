//! The console line: words and quotes, then options and positionals as the table declares them.
//!
//! Quoting rules: spaces separate words; `'…'` and `"…"` group (a backslash escapes inside double quotes); a quoted
//! word is never an option; `--` makes every later word a positional. The word splitting is ours rather than a
//! shell-words crate because `/search` needs each word exactly as typed, quotes kept, for its own query language.

use dreamos_runtime::config::Config;

use super::{
    spec::{CommandSpec, OptionKind, OptionSpec, Takes},
    table::{spec, COMMANDS},
    Invocation, ParseError, Value,
};

/// A word of the line; quoted words are never options. `raw` is the word as typed, quotes included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    raw: String,
    quoted: bool,
}

/// Splits a line into words: spaces separate, '…' and "…" group (a backslash escapes inside double quotes).
fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut text = String::new();
        let mut raw = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            raw.push(c);
            if c != '"' && c != '\'' {
                text.push(c);
                continue;
            }
            quoted = true;
            let close = c;
            loop {
                let next = chars.next();
                if let Some(ch) = next {
                    raw.push(ch);
                }
                match next {
                    Some(ch) if ch == close => break,
                    Some('\\') if close == '"' => match chars.next() {
                        Some(escaped) => {
                            raw.push(escaped);
                            text.push(escaped)
                        }
                        None => break,
                    },
                    Some(ch) => text.push(ch),
                    None => {
                        return Err(ParseError::new(
                            "invalid_argument",
                            format!(
                                "unclosed {close} quote: close it, or escape it with a backslash"
                            ),
                        ))
                    }
                }
            }
        }
        tokens.push(Token { text, raw, quoted });
    }
}

/// Parses a console line such as `/send agent-2 hello --priority high` into an [`Invocation`], checking every
/// value against its declaration (integer bounds come from `config`).
pub fn parse(line: &str, config: &Config) -> Result<Invocation, ParseError> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('/') else {
        return Err(ParseError::new(
            "unknown_command",
            format!(
                "`{}` is not a command: commands start with '/', such as /send agent-1 hello; /help lists them",
                super::clip(line)
            ),
        ));
    };
    let mut tokens = tokenize(rest)?;
    if tokens.is_empty() {
        return Err(ParseError::new(
            "unknown_command",
            "a command name must follow '/'; /help lists them",
        ));
    }
    let name = tokens.remove(0).text;
    let Some(command) = spec(&name) else {
        let names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        return Err(ParseError::new(
            "unknown_command",
            format!(
                "unknown command /{}; the commands are /{}",
                super::clip(&name),
                names.join(", /")
            ),
        ));
    };
    let (sub, options, usage) = if command.subcommands.is_empty() {
        (None, command.options, command.usage())
    } else {
        let actions: Vec<&str> = command.subcommands.iter().map(|s| s.name).collect();
        let Some(first) = (!tokens.is_empty()).then(|| tokens.remove(0)) else {
            return Err(ParseError::new(
                "missing_argument",
                format!(
                    "/{} needs an action ({}); usage: {}",
                    command.name,
                    actions.join(", "),
                    command.usage()
                ),
            ));
        };
        let Some(sub) = command.subcommand(&first.text) else {
            return Err(ParseError::new(
                "invalid_argument",
                format!(
                    "unknown action `{}`: use {}",
                    super::clip(&first.text),
                    or_list(&actions)
                ),
            ));
        };
        (Some(sub), sub.options, sub.usage(command.name))
    };
    let values = bind(command, options, tokens, &usage, config)?;
    Ok(Invocation {
        command,
        sub,
        values,
    })
}

/// `a, b, c or d`.
pub(crate) fn or_list(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Assigns the words of a line to the declared options.
fn bind(
    command: &CommandSpec,
    options: &'static [OptionSpec],
    tokens: Vec<Token>,
    usage: &str,
    config: &Config,
) -> Result<Vec<(&'static OptionSpec, Value)>, ParseError> {
    let mut positionals: Vec<Token> = Vec::new();
    let mut named: Vec<(&'static OptionSpec, Value)> = Vec::new();
    let mut tokens = tokens.into_iter();
    let mut literal = false;
    while let Some(token) = tokens.next() {
        if literal || token.quoted || !token.text.starts_with("--") {
            positionals.push(token);
            continue;
        }
        if token.text == "--" {
            literal = true;
            continue;
        }
        let body = &token.text[2..];
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        let Some(option) = options
            .iter()
            .find(|o| o.name == name && o.takes == Takes::Named)
        else {
            return Err(ParseError::new(
                "unexpected_argument",
                format!(
                    "/{} has no option --{}; usage: {usage}",
                    command.name,
                    super::clip(name)
                ),
            ));
        };
        if named.iter().any(|(o, _)| o.name == option.name) {
            return Err(ParseError::new(
                "invalid_argument",
                format!(
                    "--{} is given twice; give it once. Usage: {usage}",
                    option.name
                ),
            ));
        }
        let value = if option.kind == OptionKind::Flag {
            if let Some(value) = inline {
                return Err(ParseError::new(
                    "unexpected_argument",
                    format!(
                        "--{} takes no value (got `{}`)",
                        option.name,
                        super::clip(&value)
                    ),
                ));
            }
            Value::Flag(true)
        } else {
            let text = match inline {
                Some(value) => value,
                None => match tokens.next() {
                    Some(next) => next.text,
                    None => {
                        return Err(ParseError::new(
                            "missing_argument",
                            format!("--{} needs a value; usage: {usage}", option.name),
                        ))
                    }
                },
            };
            super::check_value(option, text, config)?
        };
        named.push((option, value));
    }

    let mut values = Vec::new();
    let mut positionals = positionals.into_iter().peekable();
    for option in options.iter().filter(|o| o.takes != Takes::Named) {
        let text = match option.takes {
            Takes::Word => positionals.next().map(|t| t.text),
            Takes::Rest => {
                let words: Vec<String> = positionals.by_ref().map(|t| t.text).collect();
                (!words.is_empty()).then(|| words.join(" "))
            }
            Takes::RawRest => {
                let words: Vec<String> = positionals.by_ref().map(|t| t.raw).collect();
                (!words.is_empty()).then(|| words.join(" "))
            }
            Takes::Named => None,
        };
        match text {
            Some(text) => values.push((option, super::check_value(option, text, config)?)),
            None if option.required => {
                return Err(ParseError::new(
                    "missing_argument",
                    format!(
                        "/{} needs {}; usage: {usage}",
                        command.name,
                        article(&option.name.to_ascii_uppercase())
                    ),
                ))
            }
            None => {}
        }
    }
    if let Some(extra) = positionals.next() {
        return Err(ParseError::new(
            "unexpected_argument",
            format!(
                "unexpected `{}` for /{}; usage: {usage}",
                super::clip(&extra.text),
                command.name
            ),
        ));
    }
    // Declared order, positionals and named options alike: the canonical text follows it.
    values.extend(named);
    values.sort_by_key(|(option, _)| {
        options
            .iter()
            .position(|o| std::ptr::eq(o, *option))
            .unwrap_or(usize::MAX)
    });
    Ok(values)
}

/// `an AGENT`, `a TEXT`.
fn article(word: &str) -> String {
    match word.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => format!("an {word}"),
        _ => format!("a {word}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        let words: Vec<String> = tokenize(r#"a "b c" 'd "e"' "f\"g""#)
            .expect("tokens")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(words, ["a", "b c", "d \"e\"", "f\"g"]);
        let raw: Vec<String> = tokenize(r#"foo "exact phrase""#)
            .expect("tokens")
            .into_iter()
            .map(|t| t.raw)
            .collect();
        assert_eq!(raw, ["foo", "\"exact phrase\""]);
        assert!(tokenize("\"open").is_err());
    }
}
