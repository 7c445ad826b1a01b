//! The command line: `dreamos run [--console] [--json] [--data-dir DIR] [--config FILE] [--role ROLE]`,
//! `dreamos config` to print the effective configuration, and the scanner's tools (`index`, `search`, `symbol`,
//! `outline`, `deps`, `refs`, `impact`, `symbols`, `repos`, `watch`; see [`crate::code_cli`]).

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dreamos_agents::{Principal, SkillRegistry, Swarm};
use dreamos_runtime::{
    config::{ConfigLoader, Role},
    Config, Store,
};

use crate::{
    code_cli::{self, Tool},
    console, served,
    session::Session,
};

/// The local override file picked up when no `--config` is given.
const LOCAL_CONFIG: &str = "config/local.toml";

#[derive(Debug, Parser)]
#[command(
    name = "dreamos",
    version,
    about = "Dream.OS: a swarm of AI agents you steer from Discord or a local console"
)]
pub struct Cli {
    /// Where the store, logs and console history live (default: $DREAMOS_DATA_DIR, else ./data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,

    /// A TOML file overriding config/default.toml (default: config/local.toml when it exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the swarm with the console frontend.
    Run(RunArgs),
    /// Print the effective configuration (defaults, file and environment merged) as TOML.
    Config,
    /// Index a repository (incrementally) into <data-dir>/index.
    Index(code_cli::IndexArgs),
    /// The tools that only read the index.
    #[command(flatten)]
    Tool(Tool),
    /// Index a repository, then keep it fresh as files change (until Ctrl-C).
    Watch(code_cli::WatchArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run the console even when the Discord frontend runs and standard input is not a terminal.
    #[arg(long)]
    pub console: bool,

    /// Print each answer and event as one JSON object per line.
    #[arg(long)]
    pub json: bool,

    /// Role of the person at the console (captain, operator or viewer); default from [console] role.
    #[arg(long, value_parser = parse_role)]
    pub role: Option<Role>,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

/// Runs the command line; errors are printed with their whole chain and exit non-zero.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them.
        Err(err) if !err.use_stderr() => err.exit(),
        // A usage error repeats the argument it refuses: at most part of it.
        Err(err) => {
            let text = crate::command::clip_long(&err.to_string());
            let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("{text}\n"));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let _ = std::io::Write::write_all(&mut std::io::stderr(), error_line(&err).as_bytes());
            ExitCode::FAILURE
        }
    }
}

/// How a failed command reports: one line, each cause after the outermost ("error: opening ...: data directory
/// ... is in use"). An error that repeats an argument repeats at most part of it.
pub(crate) fn error_line(err: &anyhow::Error) -> String {
    format!(
        "error: {}\n",
        crate::command::clip_long(&format!("{err:#}"))
    )
}

/// `--data-dir`, else `DREAMOS_DATA_DIR` when it is set and not empty, else `./data`.
fn data_dir(given: Option<PathBuf>) -> PathBuf {
    given
        .or_else(|| {
            std::env::var_os("DREAMOS_DATA_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("./data"))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir(cli.data_dir);
    let config = || load_config(cli.config.as_deref());
    match cli.command {
        Command::Tool(tool) => return answer(tool, cli.config.as_deref(), &data_dir),
        Command::Config => {
            let text = config()?.to_toml().context("printing the configuration")?;
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
        }
        Command::Run(args) => run_swarm(&data_dir, config()?, args)?,
        Command::Index(args) => code_cli::index(&data_dir, &config()?, args)?,
        Command::Watch(args) => code_cli::watch(&data_dir, args)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a read-only tool: the swarm on this data directory answers when it runs, unless a configuration of the
/// tool's own was asked for (see `served`); otherwise the tool opens the index itself.
fn answer(tool: Tool, config: Option<&Path>, data_dir: &Path) -> anyhow::Result<ExitCode> {
    let via = served::Via::from_env()?;
    match (via, config.is_some()) {
        (served::Via::Swarm, true) => anyhow::bail!(
            "--config makes the tool answer itself, and DREAMOS_TOOLS=swarm forbids that; drop one of them"
        ),
        (served::Via::Here, _) | (_, true) => {}
        (served::Via::Auto | served::Via::Swarm, false) => {
            if let Some(code) = served::ask(data_dir, &tool, via)? {
                return Ok(code);
            }
        }
    }
    tool.run_here(data_dir, &load_config(config)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Defaults, then `--config` (or config/local.toml), then `DREAMOS_SECTION__KEY` variables.
pub fn load_config(file: Option<&Path>) -> anyhow::Result<Config> {
    let mut loader = ConfigLoader::new();
    match file {
        Some(path) => loader = loader.file(path)?,
        None if Path::new(LOCAL_CONFIG).is_file() => {
            loader = loader.file(Path::new(LOCAL_CONFIG))?
        }
        None => {}
    }
    Ok(loader.env(std::env::vars())?.build()?)
}

fn run_swarm(data_dir: &Path, config: Config, args: RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dreamos")
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async move {
        // The store first: a data directory held by another process should fail before anything else starts.
        let store = Store::open_with(data_dir, config.store.sync)?;
        let telemetry =
            dreamos_runtime::telemetry::init(&config.log, config.discord.mirror_level, data_dir)?;
        let token = crate::discord::token_from_env();
        // A service's stdin is /dev/null: with Discord, the console runs only on a terminal or when asked for.
        let console = token.is_none() || args.console || std::io::stdin().is_terminal();
        let principal = Principal::new(
            &config.console.user,
            args.role.unwrap_or(config.console.role),
        );
        let options = console::ConsoleOptions {
            json: args.json,
            drain_timeout: config.shutdown.drain_timeout,
            history_file: data_dir.join("console_history"),
            max_line_bytes: config.console.max_line_bytes,
        };
        let swarm = Swarm::start(config, store, SkillRegistry::builtin())
            .await
            .context("starting the swarm")?;
        // The read-only tools ask the swarm from now on; without the socket they open the index themselves.
        let tools = match served::Server::start(
            data_dir,
            swarm.code().code_index().clone(),
            std::sync::Arc::new(swarm.config().clone()),
        ) {
            Ok(server) => Some(server),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "the tools (dreamos search, ...) will open the index themselves");
                None
            }
        };
        let companion = token.map(|token| {
            let (swarm, mirror) = (swarm.clone(), telemetry.mirror.clone());
            console::Companion::spawn(move |mut stop| {
                crate::discord::run(swarm, token, mirror, async move {
                    let _ = stop.changed().await;
                })
            })
        });
        let result = console::run(
            Session::new(swarm, principal, "console"),
            options,
            companion,
            console,
        )
        .await;
        if let Some(tools) = tools {
            tools.stop();
        }
        result
    });
    // tokio reads stdin on a blocking thread that cannot be interrupted; after a signal it may still be waiting
    // for a line that will never come. Everything that matters is flushed by now, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
