//! Tasks in Discord: task ids that autocomplete, and the Approve / Reject buttons of a task that waits.
//!
//! A button's custom id names its action and its task (`task.approve.17`), and a click asks the task manager for
//! the task's state, never the bot's memory, so buttons keep working after a restart. A click runs `/task approve`
//! or `/task reject` through a [`crate::session::Session`] like the slash command (same role check, same errors,
//! same audit entry): a captain's click updates the message in place (an UPDATE_MESSAGE response) to the task's
//! new state without buttons; anyone else, and a click on a task that is gone or no longer waits, is answered
//! with an ephemeral refusal, and nothing changes.

use dreamos_runtime::{
    config::Role,
    task::{Task, TaskId, TaskStatus},
};
use poise::serenity_prelude as serenity;

use super::{commands, follow::Follow, reply, roles, Data, Error};
use crate::{command, render, session::Answer};

/// Discord shows at most 25 autocomplete choices.
pub const CHOICES_MAX: usize = 25;
/// Discord's limit on a choice's name.
pub const CHOICE_NAME_MAX: usize = 100;

/// What a task button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonAction {
    Approve,
    Reject,
}

impl ButtonAction {
    /// The `/task` subcommand the click runs.
    pub fn subcommand(self) -> &'static str {
        match self {
            ButtonAction::Approve => "approve",
            ButtonAction::Reject => "reject",
        }
    }
}

/// `task.approve.17`.
pub fn custom_id(action: ButtonAction, id: TaskId) -> String {
    format!("task.{}.{id}", action.subcommand())
}

/// The action and task of one of our task buttons; `None` for any other custom id.
pub fn parse_custom_id(custom_id: &str) -> Option<(ButtonAction, TaskId)> {
    let rest = custom_id.strip_prefix("task.")?;
    let (action, id) = rest.split_once('.')?;
    let action = match action {
        "approve" => ButtonAction::Approve,
        "reject" => ButtonAction::Reject,
        _ => return None,
    };
    // Digits only: `+17` or ` 17` are not ids we made.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match id.parse::<u64>() {
        Ok(n) if n > 0 => Some((action, TaskId(n))),
        _ => None,
    }
}

/// The action row of a task that waits for approval.
pub fn buttons(id: TaskId) -> Vec<serenity::CreateActionRow> {
    vec![serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(custom_id(ButtonAction::Approve, id))
            .label("Approve")
            .style(serenity::ButtonStyle::Success),
        serenity::CreateButton::new(custom_id(ButtonAction::Reject, id))
            .label("Reject")
            .style(serenity::ButtonStyle::Danger),
    ])]
}

/// The components a message should carry: the buttons, or none (which removes any it had).
pub fn components(message: &reply::DiscordMessage) -> Vec<serenity::CreateActionRow> {
    message.approval.map(buttons).unwrap_or_default()
}

/// Whether a task is one the subcommand can act on: approve and reject take waiting tasks, retry failed or
/// cancelled ones, resume paused ones, pause and cancel unfinished ones; show (and anything else) takes any.
pub fn relevant(subcommand: &str, status: TaskStatus) -> bool {
    match subcommand {
        "approve" | "reject" => status == TaskStatus::WaitingApproval,
        "retry" => matches!(status, TaskStatus::Failed | TaskStatus::Cancelled),
        "resume" => status == TaskStatus::Paused,
        "pause" | "cancel" => !status.is_final(),
        _ => true,
    }
}

/// `17 · index repo [running]`, at most Discord's 100 characters.
pub fn choice_name(task: &Task) -> String {
    reply::clip(
        &format!(
            "{} · {} [{}]",
            task.id,
            render::one_line(&task.title),
            task.status.as_str()
        ),
        CHOICE_NAME_MAX,
    )
}

/// Autocomplete of a task id: `tasks` (oldest first, as the manager lists them) whose id or title starts with
/// what was typed, newest first, at most 25. The ones the subcommand can act on are offered; when none of them
/// match, every matching task is, so that a typed id still shows what it is.
pub fn choices(tasks: &[Task], subcommand: &str, partial: &str) -> Vec<(String, u64)> {
    let typed = partial.trim().trim_start_matches('#').to_lowercase();
    let matching: Vec<&Task> = tasks
        .iter()
        .rev()
        .filter(|t| {
            t.id.to_string().starts_with(&typed) || t.title.to_lowercase().starts_with(&typed)
        })
        .collect();
    let wanted: Vec<&Task> = matching
        .iter()
        .copied()
        .filter(|t| relevant(subcommand, t.status))
        .collect();
    let offered = if wanted.is_empty() { matching } else { wanted };
    offered
        .into_iter()
        .take(CHOICES_MAX)
        .map(|t| (choice_name(t), t.id.0))
        .collect()
}

/// Task id choices from the running swarm's task manager (none when it cannot answer).
pub async fn autocomplete(
    swarm: &dreamos_agents::Swarm,
    subcommand: &str,
    partial: &str,
) -> Vec<serenity::AutocompleteChoice> {
    let tasks = match swarm.tasks().list().await {
        Ok(tasks) => tasks,
        Err(err) => {
            tracing::debug!(error = %err, "no task ids to autocomplete");
            return Vec::new();
        }
    };
    choices(&tasks, subcommand, partial)
        .into_iter()
        .map(|(name, id)| serenity::AutocompleteChoice::new(name, id))
        .collect()
}

/// A click on one of our task buttons.
pub async fn on_click(
    ctx: &serenity::Context,
    component: &serenity::ComponentInteraction,
    data: &Data,
    action: ButtonAction,
    id: TaskId,
) -> Result<(), Error> {
    let received = tokio::time::Instant::now();
    let swarm = &data.swarm;
    let config = swarm.config();
    let user = component.user.id.get();
    let role = commands::member_role(data, user, component.member.as_ref());
    let session = commands::session(
        data,
        user,
        component.channel_id.get(),
        &component.user.name,
        role,
    );
    let line = format!("/task {} {id}", action.subcommand());
    let answer = match command::parse(&line, config) {
        Err(err) => Answer {
            command: "task".to_string(),
            result: Err(err.into()),
        },
        // The buttons are the captain's, as `/task approve` and `/task reject` are.
        Ok(inv) if role.is_none_or(|r| r < Role::Captain) => {
            session.refuse(&inv, "forbidden", roles::needed(Role::Captain, role))
        }
        Ok(inv) => session.execute(inv).await,
    };
    let message = reply::answer(&answer);
    let response = match &answer.result {
        Ok(_) => serenity::CreateInteractionResponse::UpdateMessage(
            commands::message_builder(&message).components(components(&message)),
        ),
        Err(_) => serenity::CreateInteractionResponse::Message(commands::message_builder(&message)),
    };
    component.create_response(&ctx.http, response).await?;
    if let Ok(crate::answer::Reply::Task(shown)) = &answer.result {
        // The message now shows the task as the click left it; it goes on showing the task's progress, edited
        // through this click's token (fresh for 15 minutes), unless that message is followed already.
        data.follower.follow(Follow::new(
            component.token.clone(),
            "show",
            shown.task.clone(),
            received,
            true,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dreamos_runtime::{
        message::Millis,
        task::{Origin, TaskSpec},
    };

    use super::*;

    fn task(id: u64, title: &str, status: TaskStatus) -> Task {
        let mut task = Task::new(
            TaskId(id),
            TaskSpec {
                title: title.to_string(),
                ..TaskSpec::new(
                    "ping",
                    serde_json::json!({}),
                    1,
                    Origin::new("user:console", "console"),
                )
            },
            Millis(0),
        );
        task.status = status;
        task
    }

    #[test]
    fn custom_ids_round_trip_and_others_are_not_ours() {
        for action in [ButtonAction::Approve, ButtonAction::Reject] {
            let id = custom_id(action, TaskId(17));
            assert_eq!(parse_custom_id(&id), Some((action, TaskId(17))), "{id}");
        }
        assert_eq!(
            custom_id(ButtonAction::Approve, TaskId(17)),
            "task.approve.17"
        );
        for other in [
            "",
            "task.",
            "task.approve.",
            "task.approve.0",
            "task.approve.+17",
            "task.approve. 17",
            "task.approve.17.1",
            "task.pause.17",
            "task.approve.99999999999999999999999",
            "other.approve.17",
            "legacy-button",
        ] {
            assert_eq!(parse_custom_id(other), None, "{other}");
        }
    }

    #[test]
    fn choices_are_newest_first_by_id_or_title_prefix_and_prefer_what_the_subcommand_takes() {
        let tasks = vec![
            task(1, "index repo", TaskStatus::Done),
            task(2, "gated", TaskStatus::WaitingApproval),
            task(10, "index docs", TaskStatus::Running),
            task(12, "also gated", TaskStatus::WaitingApproval),
            task(13, "broken", TaskStatus::Failed),
        ];
        let ids = |sub: &str, partial: &str| -> Vec<u64> {
            choices(&tasks, sub, partial)
                .into_iter()
                .map(|(_, id)| id)
                .collect()
        };
        assert_eq!(ids("show", ""), [13, 12, 10, 2, 1]);
        assert_eq!(ids("show", "1"), [13, 12, 10, 1]);
        assert_eq!(ids("show", "#12"), [12]);
        assert_eq!(ids("show", "Index"), [10, 1]);
        assert_eq!(ids("approve", ""), [12, 2]);
        assert_eq!(ids("reject", "1"), [12]);
        assert_eq!(ids("retry", ""), [13]);
        assert_eq!(ids("pause", ""), [12, 10, 2]);
        // Nothing the subcommand takes matches: what matches is still shown.
        assert_eq!(ids("resume", "1"), [13, 12, 10, 1]);
        assert_eq!(ids("show", "nothing like it"), Vec::<u64>::new());
        let (name, _) = &choices(&tasks, "show", "10")[0];
        assert_eq!(name, "10 · index docs [running]");
    }

    #[test]
    fn choices_are_at_most_25_with_names_within_100_characters() {
        let long = "a very long title\nwith a line break ".repeat(10);
        let tasks: Vec<Task> = (1..=40)
            .map(|i| task(i, &long, TaskStatus::Queued))
            .collect();
        let offered = choices(&tasks, "cancel", "");
        assert_eq!(offered.len(), CHOICES_MAX);
        assert_eq!(offered[0].1, 40);
        for (name, _) in &offered {
            assert!(name.chars().count() <= CHOICE_NAME_MAX, "{name}");
            assert!(!name.contains('\n'), "{name}");
        }
    }
}
