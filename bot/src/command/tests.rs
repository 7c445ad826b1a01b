//! Tests of the command table, the console parser and the canonical text.

use dreamos_agents::message::{Channel, Priority};
use dreamos_runtime::config::Config;

use super::*;

fn command(line: &str) -> Result<Command, ParseError> {
    let inv = parse(line, &Config::defaults())?;
    Command::from_invocation(&inv)
}

fn check(line: &str, expected: Result<Command, &str>) {
    match (command(line), expected) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
        (Err(got), Err(kind)) => assert_eq!(got.kind, kind, "{line}: {}", got.message),
        (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
    }
}

fn send(to: &str, text: &str, priority: Priority, kind: Option<&str>, wait: bool) -> Command {
    Command::Send {
        to: to.into(),
        text: text.into(),
        priority,
        kind: kind.map(Into::into),
        wait,
    }
}

#[test]
fn parses_commands() {
    check("/status", Ok(Command::Status));
    check("  /agents  ", Ok(Command::Agents));
    check(
        "/help send",
        Ok(Command::Help {
            topic: Some("send".into()),
        }),
    );
    check(
        "/send agent-2 hello world",
        Ok(send(
            "agent-2",
            "hello world",
            Priority::Normal,
            None,
            false,
        )),
    );
    check(
        "/send agent-2 hello --priority urgent --kind report --wait",
        Ok(send(
            "agent-2",
            "hello",
            Priority::Urgent,
            Some("report"),
            true,
        )),
    );
    check(
        "/send agent-1 \"use --force\" now",
        Ok(send(
            "agent-1",
            "use --force now",
            Priority::Normal,
            None,
            false,
        )),
    );
    check(
        "/send agent-1 -- --literal text",
        Ok(send(
            "agent-1",
            "--literal text",
            Priority::Normal,
            None,
            false,
        )),
    );
    check(
        "/broadcast all hands --group crew",
        Ok(Command::Broadcast {
            text: "all hands".into(),
            group: Some("crew".into()),
            priority: Priority::Urgent,
        }),
    );
    check(
        "/agent spawn agent-9 --skills ping,report --groups a",
        Ok(Command::Agent {
            action: AgentAction::Spawn,
            name: "agent-9".into(),
            skills: Some(vec!["ping".into(), "report".into()]),
            groups: Some(vec!["a".into()]),
        }),
    );
    check(
        "/history --agent agent-1 --channel captain --limit 5 --before=10",
        Ok(Command::History(HistoryArgs {
            agent: Some("agent-1".into()),
            channel: Some(Channel::Captain),
            limit: Some(5),
            before: Some(10),
            ..HistoryArgs::default()
        })),
    );
    check(
        "/deadletters",
        Ok(Command::DeadLetters {
            limit: None,
            before: None,
        }),
    );
    check(
        "/search fn \"exact phrase\" lang:rust --limit 3",
        Ok(Command::Search(dreamos_agents::code::SearchRequest {
            query: "fn \"exact phrase\" lang:rust".into(),
            limit: Some(3),
            ..Default::default()
        })),
    );
}

#[test]
fn rejects_bad_lines_with_a_kind() {
    check("/frobnicate", Err("unknown_command"));
    check("send agent-1 hi", Err("unknown_command"));
    check("/", Err("unknown_command"));
    check("/send", Err("missing_argument"));
    check("/send agent-1", Err("missing_argument"));
    check("/send agent-1 hi --priority asap", Err("invalid_argument"));
    check("/send agent-1 hi --priority", Err("missing_argument"));
    check("/send agent-1 hi --colour red", Err("unexpected_argument"));
    check("/send agent-1 hi --wait=yes", Err("unexpected_argument"));
    check("/send agent-1 hi --wait --wait", Err("invalid_argument"));
    check("/send agent-1 hi --kind Shout", Err("invalid_argument"));
    check("/status now", Err("unexpected_argument"));
    check("/agent explode agent-1", Err("invalid_argument"));
    check("/agent", Err("missing_argument"));
    check("/agent stop", Err("missing_argument"));
    check("/agent stop agent-1 agent-2", Err("unexpected_argument"));
    check(
        "/agent stop agent-1 --skills ping",
        Err("unexpected_argument"),
    );
    check("/history --limit lots", Err("invalid_argument"));
    check("/history --limit 0", Err("invalid_argument"));
    check(
        "/history --limit 99999999999999999999",
        Err("invalid_argument"),
    );
    check("/history --channel radio", Err("invalid_argument"));
    check("/send agent-1 \"unclosed", Err("invalid_argument"));
    check("/search", Err("missing_argument"));
    check("/search x --limit 5000", Err("invalid_argument"));
    check("/index", Err("missing_argument"));
    check("/outline a.rs b.rs", Err("unexpected_argument"));
    check("/deps a.rs --depth deep", Err("invalid_argument"));
    check("/deps a.rs --depth 0", Err("invalid_argument"));
    check("/deps a.rs --depth 1000000", Err("invalid_argument"));
    check("/symbol x --kind gadget", Err("invalid_argument"));
}

#[test]
fn errors_say_what_was_wrong_and_what_to_do() {
    let message = |line: &str| command(line).expect_err(line).message;
    assert!(message("/send agent-1 hi --priority asap").contains("low, normal, high or urgent"));
    assert!(message("/send agent-1").contains("needs a TEXT"));
    assert!(message("/send").contains("usage: /send AGENT TEXT"));
    assert!(message("/history --limit 0").contains("between 1 and 1000"));
    assert!(message("/send agent-1 hi --wait --wait").contains("--wait is given twice"));
    assert!(message("/agent explode x").contains("spawn, stop, restart, pause, resume or purge"));
    // An error repeats at most a few hundred characters of what was typed.
    let huge = format!("/{}", "x".repeat(10_000));
    assert!(message(&huge).len() < 600);
}

#[test]
fn every_command_parses_bare_or_asks_for_an_argument() {
    for spec in COMMANDS {
        if let Err(e) = command(&format!("/{}", spec.name)) {
            assert_eq!(e.kind, "missing_argument", "/{}: {}", spec.name, e.message);
        }
        assert!(spec.usage().starts_with(&format!("/{}", spec.name)));
    }
}

#[test]
fn usages_are_derived_from_the_declarations() {
    let usage = |name: &str| spec(name).expect("command").usage();
    assert_eq!(
        usage("send"),
        "/send AGENT TEXT [--priority low|normal|high|urgent] [--kind KIND] [--wait]"
    );
    assert_eq!(
        usage("agent"),
        "/agent spawn|stop|restart|pause|resume|purge NAME [--skills A,B] [--groups A,B]"
    );
    assert_eq!(usage("deps"), "/deps FILE [--repo REPO] [--depth N]");
    assert_eq!(
        usage("refs"),
        "/refs NAME [--kind call|type|import] [--repo REPO] [--limit N]"
    );
    assert_eq!(
        usage("impact"),
        "/impact TARGET [--repo REPO] [--depth N] [--limit N]"
    );
}

#[test]
fn the_canonical_text_reads_back_as_the_same_invocation() {
    let config = Config::defaults();
    for line in [
        "/send agent-1 hello world --priority high --wait",
        "/send agent-1 \"say \\\"hi\\\"\" --kind ping",
        "/agent spawn agent-9 --skills ping,report",
        "/history --since 10m --limit 5 --text \"two words\"",
        "/search foo \"exact phrase\" /re+gex/ --lang rust",
        "/send agent-1 -- --looks like an option",
        "/help",
    ] {
        let first = parse(line, &config).expect(line);
        let canonical = first.canonical();
        let again = parse(&canonical, &config).unwrap_or_else(|e| panic!("{canonical}: {e}"));
        assert_eq!(first, again, "{line} → {canonical}");
    }
    assert_eq!(
        parse("/send agent-1 hi  there   --wait", &config)
            .expect("parses")
            .canonical(),
        "/send agent-1 \"hi there\" --wait"
    );
}

#[test]
fn declarations_fit_every_frontend() {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    for command in COMMANDS {
        assert!(name_ok(command.name), "{}", command.name);
        assert!(
            (1..=100).contains(&command.summary.len()),
            "/{}",
            command.name
        );
        assert!(command.options.is_empty() || command.subcommands.is_empty());
        let mut lists: Vec<(&str, &[OptionSpec])> = vec![(command.name, command.options)];
        for sub in command.subcommands {
            assert!(name_ok(sub.name));
            assert!((1..=100).contains(&sub.summary.len()), "{}", sub.name);
            lists.push((sub.name, sub.options));
        }
        for (owner, options) in lists {
            assert!(options.len() <= 25, "{owner}");
            let mut names: Vec<&str> = options.iter().map(|o| o.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                options.len(),
                "{owner}: duplicate option names"
            );
            for option in options {
                assert!(name_ok(option.name), "{owner} {}", option.name);
                assert!(
                    (1..=100).contains(&option.description.len()),
                    "{owner} --{}",
                    option.name
                );
                if let OptionKind::Choice(words) = option.kind {
                    assert!(words.len() <= 25, "{owner} --{}", option.name);
                }
                assert!(
                    !(option.required && option.takes == Takes::Named),
                    "{owner} --{}: a named option is never required",
                    option.name
                );
            }
            // Positionals are bound in declared order, so a required one never follows an optional one.
            let positionals: Vec<bool> = options
                .iter()
                .filter(|o| o.takes != Takes::Named)
                .map(|o| o.required)
                .collect();
            assert!(
                positionals.windows(2).all(|w| w[0] || !w[1]),
                "{owner}: {positionals:?}"
            );
        }
    }
}
