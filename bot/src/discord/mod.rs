//! The Discord frontend: every command of the table as a slash command, through serenity and poise.
//!
//! A tour:
//! - [`run`] (here): builds the HTTP client (pointed at `[discord] api_url` when set), the poise framework and the
//!   serenity client, starts the outbox and the log mirror, and serves until told to stop.
//! - [`commands`]: poise commands built from the table at run time, one entry point that turns an interaction's
//!   options into an [`crate::command::Invocation`] and runs it through a [`crate::session::Session`] (answered
//!   at once, or deferred and then edited), autocomplete, buttons, and the single `on_error`.
//! - [`tasks`]: task ids that autocomplete, and the Approve / Reject buttons of a task that waits for approval.
//! - [`follow`]: `/task` answers edited as their task moves (bounded, at most an edit a second per message).
//! - [`register`]: the registration payload and its fingerprint (registered only when it changed).
//! - [`roles`]: Discord roles as swarm roles. [`reply`]: answers and messages within Discord's limits.
//! - [`outbox`]: replies and notices owed to Discord, posted from the log by a durable cursor.
//! - [`mirror`]: the log mirror's sink. [`rest`]: our own posts, which wait out rate limits.
//!
//! Architecture invariant: the Discord frontend never calls an agent directly; it runs commands through the same
//! [`crate::session::Session`] as the console, and hears of the swarm through its events and its log.

pub mod commands;
pub mod follow;
pub mod mirror;
pub mod outbox;
pub mod register;
pub mod reply;
pub mod rest;
pub mod roles;
pub mod tasks;

use std::sync::Arc;

use anyhow::Context as _;
use dreamos_agents::Swarm;
use dreamos_runtime::{frontend::FrontendState, telemetry::LogMirror};
use poise::serenity_prelude as serenity;

/// The environment variable holding the bot's token (the name serenity's and poise's examples use).
pub const TOKEN_VAR: &str = "DISCORD_TOKEN";

/// A secret read from the environment. It prints as `[redacted]`, so that no `{:?}` or `{}` can leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The token itself, for the Authorization header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The token, when `DISCORD_TOKEN` is set (and not empty).
pub fn token_from_env() -> Option<Secret> {
    std::env::var(TOKEN_VAR)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .map(|t| Secret::new(t.trim().to_string()))
}

/// What every interaction handler reaches: poise's user data.
pub struct Data {
    pub swarm: Swarm,
    pub rest: Arc<Rest>,
    pub inline: Arc<outbox::Inline>,
    pub state: FrontendState,
    /// Follows `/task` answers and edits them as their task moves.
    pub follower: follow::Follower,
    /// The bot's application id, from READY.
    pub application: u64,
}

pub use rest::Rest;

/// Errors of our poise commands. Every one is answered to the person by [`commands::on_error`].
pub type Error = anyhow::Error;

/// Connects to Discord and serves until `stop` resolves; then disconnects cleanly.
pub async fn run(
    swarm: Swarm,
    token: Secret,
    mirror: LogMirror,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = swarm.config().discord.clone();
    let state =
        FrontendState::open(swarm.store()).context("opening the Discord frontend's state")?;
    let rest =
        Arc::new(Rest::new(&config.api_url, &token).context("building the Discord REST client")?);
    let mut builder = serenity::HttpBuilder::new(token.expose());
    if !config.api_url.is_empty() {
        // serenity honours a proxy only with its own rate limiter off; our posts then pace themselves (rest.rs).
        builder = builder
            .proxy(config.api_url.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    let http = builder.build();

    let inline = Arc::new(outbox::Inline::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let setup_data = (
        swarm.clone(),
        rest.clone(),
        inline.clone(),
        state.clone(),
        stop_rx.clone(),
    );
    let framework = poise::Framework::<Data, Error>::builder()
        .options(poise::FrameworkOptions {
            commands: commands::build(),
            on_error: commands::on_error,
            event_handler: commands::event_handler,
            ..Default::default()
        })
        // No owners lookup (GET /oauth2/applications/@me): roles come from the configuration only.
        .initialize_owners(false)
        .setup(move |ctx, ready, _framework| {
            Box::pin(async move {
                let (swarm, rest, inline, state, stop) = setup_data;
                let application = ready.application.id.get();
                let (follower, _following) =
                    follow::Follower::spawn(ctx.http.clone(), swarm.clone(), stop);
                // Setup must not fail: poise would then leave every later interaction waiting forever.
                if let Err(err) = commands::register(ctx, &swarm, &state).await {
                    tracing::error!(error = %err, "registering the slash commands failed; the ones registered before stay");
                }
                tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
                Ok(Data {
                    swarm,
                    rest,
                    inline,
                    state,
                    follower,
                    application,
                })
            })
        })
        .build();

    let mut client = serenity::ClientBuilder::new_with_http(http, serenity::GatewayIntents::GUILDS)
        .framework(framework)
        .await
        .context("connecting to Discord")?;
    if !config.api_url.is_empty() {
        // serenity falls back to Discord's own gateway when GET /gateway fails: with a base URL set, that would
        // reach the real Discord. Refuse instead.
        let url = client.ws_url.lock().await.clone();
        if url.contains("discord.gg") {
            anyhow::bail!(
                "the Discord API at {} did not answer GET /api/v10/gateway; not falling back to Discord's gateway",
                config.api_url
            );
        }
    }

    let outbox = outbox::Outbox {
        swarm: swarm.clone(),
        rest: rest.clone(),
        state: state.clone(),
        events_channel: config.events_channel_id.map(|id| id.0),
        inline,
    };
    let mut outbox_stop = stop_rx.clone();
    let outbox_task = tokio::spawn(outbox.run(async move {
        let _ = outbox_stop.changed().await;
    }));
    let mirror_tasks = mirror::spawn(
        &mirror,
        rest,
        mirror::MirrorOptions {
            routes: config.log_routes.clone(),
            secrets: vec![token.expose().to_string()],
            pace: mirror::PACE,
        },
        stop_rx,
    );

    let shards = client.shard_manager.clone();
    let mut serving = tokio::spawn(async move { client.start().await });
    let result = tokio::select! {
        ended = &mut serving => match ended {
            Ok(Ok(())) => Err(anyhow::anyhow!("the Discord connection ended")),
            Ok(Err(err)) => Err(anyhow::Error::new(err).context("the Discord connection failed")),
            Err(err) => Err(anyhow::anyhow!("the Discord client stopped: {err}")),
        },
        _ = stop => Ok(()),
    };
    let _ = stop_tx.send(true);
    shards.shutdown_all().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), serving).await;
    let _ = outbox_task.await;
    for task in mirror_tasks {
        let _ = task.await;
    }
    result
}
