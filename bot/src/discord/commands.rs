//! poise commands built from the command table at run time, and the one entry point that runs them all.
//!
//! Every slash command lands in [`slash_entry`]: the interaction's options become an
//! [`Invocation`](crate::command::Invocation) (checked exactly as a console line is), the member's Discord roles
//! become a swarm role, and a [`Session`] runs it, which also writes the audit entry. The answer goes back within
//! Discord's 3 seconds: at once when it is ready within `[discord] defer_after`, otherwise the interaction is
//! deferred, edited with progress while the command runs, and edited with the answer when it is done. A
//! `/broadcast` then keeps editing its answer as agents acknowledge the order, and a `/task` answer is followed
//! ([`super::follow`]) as its task moves. [`on_error`] is the single place
//! where a failure becomes a reply: the person is always answered, ephemerally.

use std::{
    collections::BTreeSet,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use dreamos_agents::{events::RecvError, Principal, SwarmEvent};
use dreamos_runtime::config::{Config, Role};
use poise::serenity_prelude as serenity;

use super::{follow, outbox, register, reply, roles, tasks, Data, Error};
use crate::{
    answer::Reply,
    command::{
        check_value, complete,
        spec::{OptionKind, Source},
        CommandSpec, Invocation, OptionSpec, ParseError, SubcommandSpec, Value, COMMANDS,
    },
    session::{Answer, Session},
};

type Ctx<'a> = poise::ApplicationContext<'a, Data, Error>;
type Command = poise::Command<Data, Error>;

/// Every command of the table as a poise command (subcommands as subcommands). Registration is ours
/// ([`register::payload`]); poise uses these to dispatch and to find an option's autocomplete.
pub fn build() -> Vec<Command> {
    COMMANDS
        .iter()
        .map(|spec| Command {
            name: spec.name.to_string(),
            qualified_name: spec.name.to_string(),
            identifying_name: spec.name.to_string(),
            source_code_name: spec.name.to_string(),
            description: Some(spec.summary.to_string()),
            // A parent needs an action too, or poise skips it; Discord never invokes the parent itself.
            slash_action: Some(slash_entry),
            guild_only: true,
            parameters: parameters(spec.options),
            subcommands: spec
                .subcommands
                .iter()
                .map(|sub| Command {
                    name: sub.name.to_string(),
                    qualified_name: format!("{} {}", spec.name, sub.name),
                    identifying_name: format!("{} {}", spec.name, sub.name),
                    source_code_name: sub.name.to_string(),
                    description: Some(sub.summary.to_string()),
                    slash_action: Some(slash_entry),
                    guild_only: true,
                    parameters: parameters(sub.options),
                    ..Default::default()
                })
                .collect(),
            subcommand_required: !spec.subcommands.is_empty(),
            ..Default::default()
        })
        .collect()
}

fn parameters(options: &[OptionSpec]) -> Vec<poise::CommandParameter<Data, Error>> {
    options
        .iter()
        .map(|option| poise::CommandParameter {
            name: option.name.to_string(),
            name_localizations: Default::default(),
            description: Some(option.description.to_string()),
            description_localizations: Default::default(),
            required: option.required,
            channel_types: None,
            choices: Vec::new(),
            type_setter: Some(match option.kind {
                OptionKind::Flag => |o| o.kind(serenity::CommandOptionType::Boolean),
                OptionKind::Integer { .. } => |o| o.kind(serenity::CommandOptionType::Integer),
                _ => |o| o.kind(serenity::CommandOptionType::String),
            }),
            autocomplete_callback: option.autocomplete.map(|_| {
                autocomplete
                    as for<'a> fn(
                        Ctx<'a>,
                        &'a str,
                    ) -> poise::BoxFuture<
                        'a,
                        Result<serenity::CreateAutocompleteResponse, poise::SlashArgError>,
                    >
            }),
            __non_exhaustive: (),
        })
        .collect()
}

/// Registers the table's slash commands in every configured guild (or globally), unless the payload is the one
/// last registered there.
pub async fn register(
    ctx: &serenity::Context,
    swarm: &dreamos_agents::Swarm,
    state: &dreamos_runtime::frontend::FrontendState,
) -> anyhow::Result<()> {
    let payload = register::payload(swarm.config());
    let print = register::fingerprint(&payload);
    let guilds: Vec<Option<u64>> = if swarm.config().discord.guild_ids.is_empty() {
        vec![None]
    } else {
        swarm
            .config()
            .discord
            .guild_ids
            .iter()
            .map(|g| Some(g.0))
            .collect()
    };
    for guild in guilds {
        if !register::needs_registering(state, guild, &print) {
            tracing::info!(
                guild,
                "slash commands unchanged since the last registration"
            );
            continue;
        }
        match guild {
            Some(id) => {
                ctx.http
                    .create_guild_commands(serenity::GuildId::new(id), &payload)
                    .await?
            }
            None => ctx.http.create_global_commands(&payload).await?,
        };
        state.set_text(&register::state_key(guild), &print)?;
        swarm.request_flush();
        tracing::info!(
            guild,
            commands = COMMANDS.len(),
            "registered the slash commands"
        );
    }
    Ok(())
}

/// The command and subcommand an interaction is for.
fn locate(ctx: Ctx<'_>) -> Option<(&'static CommandSpec, Option<&'static SubcommandSpec>)> {
    match ctx.parent_commands.first() {
        Some(parent) => {
            let spec = crate::command::spec(&parent.name)?;
            Some((spec, Some(spec.subcommand(&ctx.command.name)?)))
        }
        None => Some((crate::command::spec(&ctx.command.name)?, None)),
    }
}

/// An interaction's options as an invocation, each value checked as the console checks it.
pub fn invocation(
    command: &'static CommandSpec,
    sub: Option<&'static SubcommandSpec>,
    args: &[serenity::ResolvedOption<'_>],
    config: &Config,
) -> Result<Invocation, ParseError> {
    let options: &'static [OptionSpec] = sub.map_or(command.options, |s| s.options);
    let mut values = Vec::new();
    for option in options {
        let Some(arg) = args.iter().find(|a| a.name == option.name) else {
            if option.required {
                return Err(ParseError::new(
                    "missing_argument",
                    format!("/{} needs `{}`", command.name, option.name),
                ));
            }
            continue;
        };
        let value = match &arg.value {
            serenity::ResolvedValue::String(text) => check_value(option, text.to_string(), config)?,
            serenity::ResolvedValue::Integer(n) => check_value(option, n.to_string(), config)?,
            serenity::ResolvedValue::Boolean(b) => Value::Flag(*b),
            serenity::ResolvedValue::Number(n) => check_value(option, n.to_string(), config)?,
            _ => {
                return Err(ParseError::new(
                    "invalid_argument",
                    format!("`{}` must be {}", option.name, expected(option)),
                ))
            }
        };
        values.push((option, value));
    }
    if let Some(extra) = args
        .iter()
        .find(|a| !options.iter().any(|o| o.name == a.name))
    {
        return Err(ParseError::new(
            "unexpected_argument",
            format!("/{} has no option `{}`", command.name, extra.name),
        ));
    }
    Ok(Invocation {
        command,
        sub,
        values,
    })
}

fn expected(option: &OptionSpec) -> &'static str {
    match option.kind {
        OptionKind::Flag => "true or false",
        OptionKind::Integer { .. } => "a whole number",
        _ => "text",
    }
}

/// Every slash command's action.
fn slash_entry(
    ctx: Ctx<'_>,
) -> poise::BoxFuture<'_, Result<(), poise::FrameworkError<'_, Data, Error>>> {
    Box::pin(async move {
        run(ctx)
            .await
            .map_err(|error| poise::FrameworkError::new_command(ctx.into(), error))
    })
}

async fn run(ctx: Ctx<'_>) -> anyhow::Result<()> {
    let received = tokio::time::Instant::now();
    let data = ctx.data;
    let swarm = &data.swarm;
    let config = swarm.config();
    let Some((command, sub)) = locate(ctx) else {
        anyhow::bail!(
            "/{} is not a command of this dreamos",
            ctx.command.qualified_name
        );
    };
    let interaction = ctx.interaction;
    let user = interaction.user.id.get();
    let role = member_role(data, user, interaction.member.as_deref());
    let session = session(
        data,
        user,
        interaction.channel_id.get(),
        &interaction.user.name,
        role,
    );
    // A broadcast's acknowledgements are followed from before it is sent, so that none slips past.
    let acks = (command.name == "broadcast").then(|| swarm.subscribe());

    let work = async {
        match invocation(command, sub, ctx.args, config) {
            Err(err) => Answer {
                command: command.name.to_string(),
                result: Err(err.into()),
            },
            Ok(inv) if role.is_none() && command.name != "help" => {
                let message = roles::needed(command.role, None);
                session.refuse(&inv, "forbidden", message)
            }
            Ok(inv) if role.is_some_and(|r| r < command.role) => {
                let message = roles::needed(command.role, role);
                session.refuse(&inv, "forbidden", message)
            }
            Ok(inv) => session.execute(inv).await,
        }
    };
    let answer = respond(ctx, command, work).await?;
    if let Ok(Reply::Send(sent)) = &answer.result {
        if let Some(reply) = &sent.reply {
            data.inline.done(sent.id, reply.is_some());
        }
    }
    if let Ok(Reply::Task(shown)) = &answer.result {
        // The answer keeps up with its task: progress, approval, the end.
        if !shown.task.status.is_final() {
            data.follower.follow(follow::Follow::new(
                interaction.token.clone(),
                shown.action,
                shown.task.clone(),
                received,
                false,
            ));
        }
    }
    if let (Some(events), Ok(Reply::Broadcast(order))) = (acks, &answer.result) {
        let http = ctx.serenity_context.http.clone();
        let interaction = interaction.clone();
        let order = order.clone();
        let timeout = config.messages.wait_timeout;
        tokio::spawn(follow_acks(http, interaction, order, events, timeout));
    }
    Ok(())
}

/// The swarm role of a Discord user, from their member roles in the guild (see [`roles::resolve`]).
pub(super) fn member_role(
    data: &Data,
    user: u64,
    member: Option<&serenity::Member>,
) -> Option<Role> {
    let member_roles: Vec<u64> =
        member.map_or_else(Vec::new, |m| m.roles.iter().map(|r| r.get()).collect());
    roles::resolve(&data.swarm.config().discord, user, &member_roles)
}

/// The session of a Discord member: the principal named for the user and channel (the name `/task approve`
/// records as the approver), the role as resolved from their Discord roles, audited as `name (id)`.
pub(super) fn session(
    data: &Data,
    user: u64,
    channel: u64,
    name: &str,
    role: Option<Role>,
) -> Session {
    let principal = Principal::new(
        &outbox::principal_name(user, channel),
        role.unwrap_or(Role::Viewer),
    );
    let inline = data.inline.clone();
    Session::new(data.swarm.clone(), principal, "discord")
        .with_who(format!("{name} ({user})"))
        .with_wait_observer(Arc::new(move |id| inline.waiting(id)))
}

/// Answers within Discord's 3 seconds: at once if the work is done within `defer_after`, else deferred, edited with
/// progress every few seconds, and edited with the answer.
async fn respond(
    ctx: Ctx<'_>,
    command: &CommandSpec,
    work: impl std::future::Future<Output = Answer>,
) -> anyhow::Result<Answer> {
    let http = &ctx.serenity_context.http;
    let interaction = ctx.interaction;
    let defer_after = ctx.data.swarm.config().discord.defer_after;
    let mut work = std::pin::pin!(work);
    let answer = match tokio::time::timeout(defer_after, &mut work).await {
        Ok(answer) => {
            let message = reply::answer(&answer);
            interaction
                .create_response(
                    http,
                    serenity::CreateInteractionResponse::Message(
                        message_builder(&message).components(tasks::components(&message)),
                    ),
                )
                .await?;
            ctx.has_sent_initial_response.store(true, Ordering::SeqCst);
            answer
        }
        Err(_) => {
            interaction
                .create_response(
                    http,
                    serenity::CreateInteractionResponse::Defer(
                        serenity::CreateInteractionResponseMessage::new(),
                    ),
                )
                .await?;
            ctx.has_sent_initial_response.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let answer = loop {
                tokio::select! {
                    answer = &mut work => break answer,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        let progress = format!(
                            "⏳ /{} is still running ({} s)",
                            command.name,
                            started.elapsed().as_secs()
                        );
                        let edit = serenity::EditInteractionResponse::new()
                            .content(progress)
                            .allowed_mentions(serenity::CreateAllowedMentions::new());
                        if let Err(err) = interaction.edit_response(http, edit).await {
                            tracing::debug!(error = %err, "could not show progress");
                        }
                    }
                }
            };
            let message = reply::answer(&answer);
            interaction
                .edit_response(
                    http,
                    edit_builder(&message).components(tasks::components(&message)),
                )
                .await?;
            answer
        }
    };
    Ok(answer)
}

/// A message as an interaction's response, without components (the caller adds them).
pub(super) fn message_builder(
    message: &reply::DiscordMessage,
) -> serenity::CreateInteractionResponseMessage {
    let mut builder = serenity::CreateInteractionResponseMessage::new()
        .content(message.content.clone())
        .ephemeral(message.ephemeral)
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    if let Some((name, text)) = &message.file {
        builder = builder.add_file(serenity::CreateAttachment::bytes(
            text.as_bytes().to_vec(),
            name.clone(),
        ));
    }
    builder
}

/// A message as an edit of an interaction's response, without components (the caller adds them).
pub(super) fn edit_builder(message: &reply::DiscordMessage) -> serenity::EditInteractionResponse {
    let mut builder = serenity::EditInteractionResponse::new()
        .content(message.content.clone())
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    if let Some((name, text)) = &message.file {
        builder = builder.new_attachment(serenity::CreateAttachment::bytes(
            text.as_bytes().to_vec(),
            name.clone(),
        ));
    }
    builder
}

/// Edits a broadcast's answer as agents acknowledge it: "3/4 agents acknowledged", then the final count and the
/// agents that did not answer within `[messages] wait_timeout`.
async fn follow_acks(
    http: Arc<serenity::Http>,
    interaction: serenity::CommandInteraction,
    order: crate::answer::BroadcastReply,
    mut events: dreamos_agents::events::EventReceiver,
    timeout: Duration,
) {
    let expected: BTreeSet<String> = order.recipients.iter().cloned().collect();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_edit = Instant::now();
    let status = |acked: &BTreeSet<String>, done: bool| {
        let mut text = format!(
            "order #{} to {}: {}/{} agents acknowledged",
            order.seq,
            order.to,
            acked.len(),
            expected.len()
        );
        if done && acked.len() < expected.len() {
            let missing: Vec<&str> = expected.difference(acked).map(String::as_str).collect();
            text.push_str(&format!(
                "; no answer within {} from {}",
                humantime::format_duration(timeout),
                missing.join(", ")
            ));
        }
        serenity::EditInteractionResponse::new()
            .content(text)
            .allowed_mentions(serenity::CreateAllowedMentions::new())
    };
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match event {
            Ok(SwarmEvent::Message(m)) if m.envelope.reply_to == Some(order.id) => {
                let from = m.envelope.from.to_string();
                if expected.contains(&from) && acked.insert(from) {
                    if acked.len() == expected.len() {
                        break;
                    }
                    // At most an edit a second: Discord rate-limits edits of one message.
                    if last_edit.elapsed() >= Duration::from_secs(1) {
                        let _ = interaction
                            .edit_response(&http, status(&acked, false))
                            .await;
                        last_edit = Instant::now();
                    }
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
    }
    if let Err(err) = interaction.edit_response(&http, status(&acked, true)).await {
        tracing::debug!(error = %err, "could not show a broadcast's acknowledgements");
    }
}

/// Autocomplete of agent names, kinds, repositories, commands and task ids.
fn autocomplete<'a>(
    ctx: Ctx<'a>,
    partial: &'a str,
) -> poise::BoxFuture<'a, Result<serenity::CreateAutocompleteResponse, poise::SlashArgError>> {
    Box::pin(async move {
        let choices = match locate(ctx) {
            Some((command, sub)) => {
                let options = sub.map_or(command.options, |s| s.options);
                let focused = ctx.args.iter().find_map(|a| match a.value {
                    serenity::ResolvedValue::Autocomplete { .. } => Some(a.name),
                    _ => None,
                });
                match focused.and_then(|name| options.iter().find(|o| o.name == name)) {
                    Some(option) if option.autocomplete == Some(Source::Tasks) => {
                        // Task titles are for those who may list tasks: a member with no swarm role sees none.
                        let interaction = ctx.interaction;
                        let user = interaction.user.id.get();
                        if member_role(ctx.data, user, interaction.member.as_deref()).is_none() {
                            Vec::new()
                        } else {
                            let subcommand = sub.map_or("", |s| s.name);
                            tasks::autocomplete(&ctx.data.swarm, subcommand, partial).await
                        }
                    }
                    Some(option) => {
                        let names = complete::names_of(&ctx.data.swarm).await;
                        let lower = partial.to_lowercase();
                        complete::candidates(option, &names)
                            .into_iter()
                            .filter(|c| c.to_lowercase().starts_with(&lower))
                            .take(25)
                            .map(|c| serenity::AutocompleteChoice::new(c.clone(), c))
                            .collect()
                    }
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        Ok(serenity::CreateAutocompleteResponse::new().set_choices(choices))
    })
}

/// Events poise does not dispatch: buttons. A task's Approve / Reject buttons run their command
/// ([`tasks::on_click`]); any other button is acknowledged as no longer active, so that Discord does not show
/// "This interaction failed".
pub fn event_handler<'a>(
    ctx: &'a serenity::Context,
    event: &'a serenity::FullEvent,
    _framework: poise::FrameworkContext<'a, Data, Error>,
    data: &'a Data,
) -> poise::BoxFuture<'a, Result<(), Error>> {
    Box::pin(async move {
        if let serenity::FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Component(component),
        } = event
        {
            if let Some((action, id)) = tasks::parse_custom_id(&component.data.custom_id) {
                return tasks::on_click(ctx, component, data, action, id).await;
            }
            let message = serenity::CreateInteractionResponseMessage::new()
                .content("This button is no longer active.")
                .ephemeral(true);
            component
                .create_response(
                    &ctx.http,
                    serenity::CreateInteractionResponse::Message(message),
                )
                .await?;
        }
        Ok(())
    })
}

/// The one place where a failure becomes a reply: the person always hears, ephemerally. Internal errors are
/// logged with an id, and the reply shows only the id.
pub fn on_error(error: poise::FrameworkError<'_, Data, Error>) -> poise::BoxFuture<'_, ()> {
    Box::pin(async move {
        let text = match &error {
            poise::FrameworkError::Command { error, .. } => {
                let id = ulid::Ulid::new();
                tracing::error!(error_id = %id, error = %format!("{error:#}"), "a Discord command failed");
                format!("internal error (id {id}); the log has the details")
            }
            poise::FrameworkError::CommandPanic { .. } => {
                let id = ulid::Ulid::new();
                tracing::error!(error_id = %id, "a Discord command panicked");
                format!("internal error (id {id}); the log has the details")
            }
            poise::FrameworkError::CommandCheckFailed { .. }
            | poise::FrameworkError::MissingUserPermissions { .. } => {
                "you may not run this command here".to_string()
            }
            poise::FrameworkError::GuildOnly { .. } => {
                "Dream.OS commands work in its guild's channels, not in direct messages".to_string()
            }
            other => {
                tracing::warn!(error = %other, "a Discord interaction could not be handled");
                format!("that could not be run: {other}")
            }
        };
        if let Some(ctx) = error.ctx() {
            let reply = poise::CreateReply::default()
                .content(reply::clip(&text, reply::CONTENT_MAX))
                .ephemeral(true)
                .allowed_mentions(serenity::CreateAllowedMentions::new());
            if let Err(err) = ctx.send(reply).await {
                tracing::warn!(error = %err, "could not answer a failed interaction");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// serenity drops an event it cannot parse with only a DEBUG log, so every payload the fake sends must parse.
    #[test]
    fn every_fake_payload_deserializes_with_serenity() {
        use dreamos_tests::fake_discord as fake;
        for (what, payload) in fake::fixtures() {
            if let Err(err) = serde_json::from_value::<serenity::Interaction>(payload.clone()) {
                panic!("{what}: {err}\n{payload}");
            }
        }
        serde_json::from_value::<serenity::Ready>(fake::ready_payload(1)).expect("READY");
        let message = fake::message_payload(
            1,
            2,
            "x",
            &[("a.txt".to_string(), "text".to_string())],
            Some(&serde_json::json!("nonce")),
        );
        serde_json::from_value::<serenity::Message>(message).expect("a message");
    }

    /// A click and an autocomplete of an integer option parse as what they are, not only as some interaction.
    #[test]
    fn a_click_and_an_integer_autocomplete_parse_as_what_they_are() {
        use dreamos_tests::fake_discord as fake;
        let member = fake::Member::new(5, "alice", &[6001]);
        let payload = fake::component_payload(1, "t", &member, "task.reject.9", 2);
        let Ok(serenity::Interaction::Component(click)) = serde_json::from_value(payload) else {
            panic!("not a component interaction");
        };
        assert!(matches!(
            click.data.kind,
            serenity::ComponentInteractionDataKind::Button
        ));
        assert_eq!(
            tasks::parse_custom_id(&click.data.custom_id),
            Some((
                tasks::ButtonAction::Reject,
                dreamos_runtime::task::TaskId(9)
            ))
        );
        assert_eq!(click.user.id.get(), 5, "the user comes from the member");
        assert_eq!(click.member.as_ref().map(|m| m.roles.len()), Some(1));
        assert_eq!(click.attachment_size_limit, 26_214_400);

        let payload = fake::interaction_payload(
            2,
            "t",
            4,
            &member,
            "task",
            fake::sub("approve", fake::focused_integer("id", "1")),
        );
        let Ok(serenity::Interaction::Autocomplete(auto)) = serde_json::from_value(payload) else {
            panic!("not an autocomplete interaction");
        };
        let args = auto.data.options();
        let serenity::ResolvedValue::SubCommand(inner) = &args[0].value else {
            panic!("not a subcommand: {args:?}");
        };
        assert!(
            matches!(
                inner[0].value,
                serenity::ResolvedValue::Autocomplete {
                    kind: serenity::CommandOptionType::Integer,
                    value: "1"
                }
            ),
            "{inner:?}"
        );
    }

    #[test]
    fn interaction_options_become_the_same_invocation_as_a_console_line() {
        use dreamos_tests::fake_discord as fake;
        let config = Config::defaults();
        let check = |name: &str, options: serde_json::Value, line: &str| {
            let payload = fake::interaction_payload(
                1,
                "t",
                2,
                &fake::Member::new(5, "alice", &[]),
                name,
                options,
            );
            let serenity::Interaction::Command(interaction) =
                serde_json::from_value(payload).expect("interaction")
            else {
                panic!("not a command");
            };
            let mut args = interaction.data.options();
            let spec = crate::command::spec(name).expect("command");
            let sub = match args.first().map(|a| &a.value) {
                Some(serenity::ResolvedValue::SubCommand(inner)) => {
                    let sub = spec.subcommand(args[0].name);
                    args = inner.clone();
                    sub
                }
                _ => None,
            };
            let from_discord = invocation(spec, sub, &args, &config).expect("valid options");
            let from_console = crate::command::parse(line, &config).expect("valid line");
            assert_eq!(from_discord, from_console, "{line}");
            from_discord.canonical()
        };
        check(
            "send",
            fake::opts(&[
                ("agent", json!("agent-1")),
                ("text", json!("hello there")),
                ("priority", json!("high")),
                ("wait", json!(true)),
            ]),
            "/send agent-1 hello there --priority high --wait",
        );
        check(
            "history",
            fake::opts(&[("limit", json!(5)), ("kind", json!("ping"))]),
            "/history --kind ping --limit 5",
        );
        let canonical = check(
            "agent",
            fake::sub(
                "spawn",
                fake::opts(&[("name", json!("agent-9")), ("skills", json!("ping"))]),
            ),
            "/agent spawn agent-9 --skills ping",
        );
        assert_eq!(canonical, "/agent spawn agent-9 --skills ping");
        // Values are checked as the console checks them.
        let payload = fake::interaction_payload(
            1,
            "t",
            2,
            &fake::Member::new(5, "alice", &[]),
            "history",
            fake::opts(&[("limit", json!(0))]),
        );
        let serenity::Interaction::Command(interaction) =
            serde_json::from_value(payload).expect("interaction")
        else {
            panic!("not a command");
        };
        let spec = crate::command::spec("history").expect("history");
        let err = invocation(spec, None, &interaction.data.options(), &config)
            .expect_err("0 is out of range");
        assert_eq!(err.kind, "invalid_argument");
    }

    #[test]
    fn every_table_command_becomes_a_poise_command() {
        let commands = build();
        assert_eq!(commands.len(), COMMANDS.len());
        let agent = commands.iter().find(|c| c.name == "agent").expect("agent");
        let subs: Vec<&str> = agent.subcommands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            subs,
            ["spawn", "stop", "restart", "pause", "resume", "purge"]
        );
        let send = commands.iter().find(|c| c.name == "send").expect("send");
        let agent_option = &send.parameters[0];
        assert_eq!(agent_option.name, "agent");
        assert!(agent_option.autocomplete_callback.is_some());
        assert!(commands
            .iter()
            .all(|c| c.guild_only && c.slash_action.is_some()));
    }
}
