//! The scanner's command-line tools: `dreamos index|search|symbol|outline|deps|refs|impact|symbols|repos|watch`.
//!
//! `index` and `watch` open the code index in `<data-dir>/index` directly, so they work beside a running `dreamos
//! run` when the swarm is not writing the index at the same moment. The tools that only read ([`Tool`]) are
//! answered by the swarm when one runs on the same data directory, from its open index (`crate::served`), and
//! open the index themselves otherwise; the output is the same.
//! `--json` prints one JSON object per hit per line; otherwise output is meant for people, grep-like.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use clap::Args;
use dreamos_scanner::{
    CodeIndex, Follow, ImpactOptions, IndexOptions, IndexProgress, RefsOptions, SearchOptions,
    SymbolOptions, WatchEvent,
};

use dreamos_runtime::Config;
use serde::{Deserialize, Serialize};

use crate::render;

/// The code index's directory inside a data directory (the swarm uses the same).
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(dreamos_agents::swarm::CODE_INDEX_DIR)
}

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The repository's root directory.
    pub path: PathBuf,
    /// Its name in the index (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Skip files larger than this many bytes (default: [scanner] max_file_bytes).
    #[arg(long)]
    pub max_file_bytes: Option<u64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SearchArgs {
    /// `foo lang:rust path:src/*.rs repo:name sym:Foo "exact phrase" /regex/ case:yes`
    pub query: String,
    #[arg(long)]
    pub lang: Option<String>,
    /// Only paths matching this glob (or containing this text).
    #[arg(long)]
    pub path: Option<String>,
    #[arg(long)]
    pub repo: Option<String>,
    /// Most hits (default: [scanner] default_limit; at most [scanner] max_limit).
    #[arg(long)]
    pub limit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct SymbolArgs {
    pub name: String,
    /// function, method, class, struct, enum, interface, type_alias, constant, macro, module, ...
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub repo: Option<String>,
    /// Most hits (default: [scanner] default_limit; at most [scanner] max_limit).
    #[arg(long)]
    pub limit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FileArgs {
    /// A file on disk inside an indexed repository, or a path relative to a repository's root.
    pub file: String,
    #[arg(long)]
    pub repo: Option<String>,
    /// For deps: follow imports this many steps (1 to 32; default 1).
    #[arg(long)]
    pub depth: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct RefsArgs {
    /// The symbol's name (case-sensitive), such as parse_query.
    pub name: String,
    /// Only uses of this kind: call, type or import.
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub repo: Option<String>,
    /// Most uses listed (default: [scanner] default_limit; at most [scanner] max_limit).
    #[arg(long)]
    pub limit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ImpactArgs {
    /// A file (a path on disk inside an indexed repository, or relative to its root) or a symbol name.
    pub target: String,
    #[arg(long)]
    pub repo: Option<String>,
    /// Follow importers or users this many steps (1 to 8; default 2).
    #[arg(long)]
    pub depth: Option<String>,
    /// Most files listed (default: [scanner] default_limit; at most [scanner] max_limit).
    #[arg(long)]
    pub limit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ListArgs {
    #[arg(long)]
    pub repo: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub path: PathBuf,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn open(data_dir: &Path) -> anyhow::Result<CodeIndex> {
    let dir = index_dir(data_dir);
    // A tool runs once: its own commits are all it must see, and watching for other processes' would start a
    // thread for nothing.
    let index = CodeIndex::open_following(&dir, data_dir, Follow::OwnCommits)
        .with_context(|| format!("opening the code index in {}", dir.display()))?;
    for (name, root) in index.stale_repos() {
        eprintln_quiet(&format!(
            "the code index was made by another version of dreamos and is empty now; index {name} again: dreamos index {} --name {name}",
            root.display()
        ));
    }
    Ok(index)
}

/// Where a tool's answer goes: this process's stdout and stderr, or frames to the process that asked the swarm
/// (`crate::served`). Lines to stdout stop quietly when the reader goes away (`dreamos symbols | head`). An answer
/// is buffered and goes out in a few large writes (one per line was a write system call per line, and a search
/// prints eighty); [`Out::live`] writes each line at once, for output that comes over time.
pub(crate) struct Out<'a> {
    stdout: std::io::BufWriter<Box<dyn Write + 'a>>,
    stderr: Box<dyn Write + 'a>,
    live: bool,
}

impl<'a> Out<'a> {
    /// An answer written to `stdout` and `stderr`.
    pub(crate) fn to(stdout: impl Write + 'a, stderr: impl Write + 'a) -> Out<'a> {
        Out {
            stdout: std::io::BufWriter::new(Box::new(stdout)),
            stderr: Box::new(stderr),
            live: false,
        }
    }

    /// An answer on this process's stdout and stderr.
    fn new() -> Out<'static> {
        Out::to(std::io::stdout().lock(), std::io::stderr())
    }

    /// Every line is written when it is given.
    fn live() -> Out<'static> {
        Out {
            live: true,
            ..Out::new()
        }
    }

    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        let written = writeln!(self.stdout, "{text}");
        let flushed = written.and_then(|()| {
            if self.live {
                self.stdout.flush()
            } else {
                Ok(())
            }
        });
        quiet_broken_pipe(flushed)
    }

    fn json<T: Serialize>(&mut self, value: &T) -> anyhow::Result<()> {
        self.line(&serde_json::to_string(value).context("encoding JSON")?)
    }

    /// A remark for the person rather than the answer ("no matches"), after what stdout holds so far.
    fn note(&mut self, text: &str) -> anyhow::Result<()> {
        quiet_broken_pipe(self.stdout.flush())?;
        let _ = writeln!(self.stderr, "{text}");
        Ok(())
    }

    /// Writes out what is buffered.
    pub(crate) fn done(mut self) -> anyhow::Result<()> {
        quiet_broken_pipe(self.stdout.flush())
    }
}

/// A reader that went away (a closed pipe) is not an error: the tool just stops writing.
fn quiet_broken_pipe(result: std::io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// A tool that only reads the index: run here on an index this process opens ([`Tool::run_here`]), or answered by
/// the swarm running on the same data directory (`crate::served`), with the same output either way.
#[derive(Debug, Clone, clap::Subcommand, Serialize, Deserialize)]
pub enum Tool {
    /// Search indexed code: `foo lang:rust path:src/*.rs repo:name sym:Foo "exact phrase" /regex/ case:yes`.
    Search(SearchArgs),
    /// Find definitions by name: exact, then prefix, then fuzzy.
    Symbol(SymbolArgs),
    /// The definitions of one file.
    Outline(FileArgs),
    /// What a file imports, and what imports it.
    Deps(FileArgs),
    /// Where a name is used (calls, type uses, imports), definitions first.
    Refs(RefsArgs),
    /// What may break if a file or a symbol changes: importers, and the definitions that use it.
    Impact(ImpactArgs),
    /// Every definition, one per line, like a tags file.
    Symbols(ListArgs),
    /// The indexed repositories.
    Repos(ListArgs),
}

impl Tool {
    /// Answers on `index`, writing to `out`; `cwd` is the directory that relative file arguments are relative to.
    pub(crate) fn run(
        self,
        index: &CodeIndex,
        config: &Config,
        cwd: &Path,
        out: &mut Out,
    ) -> anyhow::Result<()> {
        match self {
            Tool::Search(args) => search(index, config, args, out),
            Tool::Symbol(args) => symbol(index, config, args, out),
            Tool::Outline(args) => outline(index, cwd, args, out),
            Tool::Deps(args) => deps(index, config, cwd, args, out),
            Tool::Refs(args) => refs(index, config, args, out),
            Tool::Impact(args) => impact(index, config, cwd, args, out),
            Tool::Symbols(args) => symbols(index, args, out),
            Tool::Repos(args) => repos(index, args, out),
        }
    }

    /// Opens the index in `data_dir` and answers on this process's stdout.
    pub fn run_here(self, data_dir: &Path, config: &Config) -> anyhow::Result<()> {
        let index = open(data_dir)?;
        let mut out = Out::new();
        self.run(&index, config, Path::new("."), &mut out)?;
        out.done()
    }
}

/// A numeric option of a tool, checked and defaulted as the command table declares it for the console and
/// Discord: `/search --limit`, `/deps --depth` and the tools' `--limit` and `--depth` are the same option.
fn table_number(
    command: &str,
    option: &str,
    given: Option<String>,
    config: &Config,
) -> anyhow::Result<i64> {
    let spec = crate::command::spec(command)
        .and_then(|c| c.all_options().find(|o| o.name == option))
        .ok_or_else(|| anyhow::anyhow!("/{command} declares no --{option}"))?;
    let text = match given {
        Some(text) => text,
        None => spec
            .default
            .map(|d| d.value(config))
            .ok_or_else(|| anyhow::anyhow!("--{option} has no default"))?,
    };
    match crate::command::check_value(spec, text, config) {
        Ok(crate::command::Value::Integer(n)) => Ok(n),
        Ok(_) => Err(anyhow::anyhow!("--{option} is not a number")),
        Err(err) => Err(anyhow::anyhow!("{err}")),
    }
}

pub fn index(data_dir: &Path, config: &Config, args: IndexArgs) -> anyhow::Result<()> {
    let index = open(data_dir)?;
    let mut options = IndexOptions::default();
    options.walk.max_file_size = args.max_file_bytes.unwrap_or(config.scanner.max_file_bytes);
    let bar = (std::io::stderr().is_terminal() && !args.json).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let progress = |p: IndexProgress| {
        if let Some(bar) = &bar {
            bar.set_message(match p {
                IndexProgress::Files {
                    read,
                    indexed,
                    total,
                } => format!("read {read} of {total} files, {indexed} new or changed indexed"),
                IndexProgress::Committed { files } => format!("committed: {files} files"),
                IndexProgress::Committing => "committing".to_string(),
            });
        }
    };
    let report = index
        .index_repo(
            args.name.as_deref().unwrap_or(""),
            &args.path,
            &options,
            &progress,
        )
        .with_context(|| format!("indexing {}", args.path.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut out = Out::new();
    if args.json {
        out.json(&report)?;
    } else {
        out.line(&render::index_text(&report))?;
    }
    out.done()
}

fn search(
    index: &CodeIndex,
    config: &Config,
    args: SearchArgs,
    out: &mut Out,
) -> anyhow::Result<()> {
    let limit = table_number("search", "limit", args.limit, config)? as usize;
    let options = SearchOptions {
        limit,
        repo: args.repo,
        lang: args.lang.as_deref().map(str::parse).transpose()?,
        path: args.path,
        budget: dreamos_agents::code::budget(&config.scanner, Vec::new()),
    };
    let hits = index.search(&args.query, &options)?;
    for hit in &hits {
        if args.json {
            out.json(hit)?;
        } else {
            out.line(&render::hit_text(hit))?;
        }
    }
    if hits.is_empty() && !args.json {
        out.note("no matches")?;
    }
    Ok(())
}

fn symbol(
    index: &CodeIndex,
    config: &Config,
    args: SymbolArgs,
    out: &mut Out,
) -> anyhow::Result<()> {
    let limit = table_number("symbol", "limit", args.limit, config)? as usize;
    let options = SymbolOptions {
        kind: args
            .kind
            .as_deref()
            .map(|k| serde_json::from_value(serde_json::Value::String(k.to_string())))
            .transpose()
            .map_err(|_| anyhow::anyhow!("unknown --kind; use function, method, class, struct, enum, interface, type_alias, constant, macro, module, ..."))?,
        repo: args.repo,
        limit,
    };
    let hits = index.symbol(&args.name, &options)?;
    for hit in &hits {
        if args.json {
            out.json(hit)?;
        } else {
            out.line(&render::symbol_text(hit))?;
        }
    }
    if hits.is_empty() && !args.json {
        out.note("no such symbol")?;
    }
    Ok(())
}

fn outline(index: &CodeIndex, cwd: &Path, args: FileArgs, out: &mut Out) -> anyhow::Result<()> {
    let (repo, path) = index.locate_from(cwd, args.repo.as_deref(), &args.file);
    let definitions = index.outline(repo.as_deref(), &path)?;
    for d in &definitions {
        if args.json {
            out.json(d)?;
        } else {
            out.line(&render::definition_text(d))?;
        }
    }
    Ok(())
}

fn deps(
    index: &CodeIndex,
    config: &Config,
    cwd: &Path,
    args: FileArgs,
    out: &mut Out,
) -> anyhow::Result<()> {
    let depth = table_number("deps", "depth", args.depth, config)? as u32;
    let (repo, path) = index.locate_from(cwd, args.repo.as_deref(), &args.file);
    let deps = index.deps(repo.as_deref(), &path, depth)?;
    #[derive(Serialize)]
    struct Edge<'a> {
        repo: &'a str,
        path: &'a str,
        direction: &'static str,
        target: &'a str,
        depth: u32,
    }
    let edges = deps
        .imports
        .iter()
        .map(|e| ("imports", e.path.as_str(), e.depth))
        .chain(
            deps.importers
                .iter()
                .map(|e| ("imported_by", e.path.as_str(), e.depth)),
        )
        .chain(deps.external.iter().map(|m| ("external", m.as_str(), 1)));
    for (direction, target, depth) in edges {
        if args.json {
            out.json(&Edge {
                repo: &deps.repo,
                path: &deps.path,
                direction,
                target,
                depth,
            })?;
        } else {
            out.line(&format!("{direction:<12} {target} (depth {depth})"))?;
        }
    }
    Ok(())
}

fn refs(index: &CodeIndex, config: &Config, args: RefsArgs, out: &mut Out) -> anyhow::Result<()> {
    let limit = table_number("refs", "limit", args.limit, config)? as usize;
    let kind = args
        .kind
        .as_deref()
        .map(str::parse::<dreamos_scanner::model::RefKind>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
    let options = RefsOptions {
        repo: args.repo,
        kind,
        limit,
    };
    let refs = index.refs(&args.name, &options)?;
    if args.json {
        #[derive(Serialize)]
        struct Line<'a, T: Serialize> {
            role: &'static str,
            #[serde(flatten)]
            item: &'a T,
        }
        for d in &refs.definitions {
            out.json(&Line {
                role: "definition",
                item: d,
            })?;
        }
        for u in &refs.uses {
            out.json(&Line {
                role: "use",
                item: u,
            })?;
        }
    } else {
        out.line(&render::refs_text(&refs))?;
    }
    Ok(())
}

fn impact(
    index: &CodeIndex,
    config: &Config,
    cwd: &Path,
    args: ImpactArgs,
    out: &mut Out,
) -> anyhow::Result<()> {
    let depth = table_number("impact", "depth", args.depth, config)? as u32;
    let limit = table_number("impact", "limit", args.limit, config)? as usize;
    let (repo, target) = if args.target.contains('/') || args.target.contains('\\') {
        index.locate_from(cwd, args.repo.as_deref(), &args.target)
    } else {
        (args.repo, args.target)
    };
    let options = ImpactOptions { repo, depth, limit };
    let impact = index.impact(&target, &options)?;
    if args.json {
        for file in &impact.files {
            out.json(file)?;
        }
    } else {
        out.line(&render::impact_text(&impact))?;
    }
    Ok(())
}

fn symbols(index: &CodeIndex, args: ListArgs, out: &mut Out) -> anyhow::Result<()> {
    let mut failed = None;
    index.symbols(args.repo.as_deref(), &mut |entry| {
        if failed.is_some() {
            return;
        }
        let written = if args.json {
            out.json(&entry)
        } else {
            // Like a tags file: name, file, line, kind.
            out.line(&format!(
                "{}\t{}/{}\t{}\t{}",
                entry.definition.name,
                entry.repo,
                entry.path,
                entry.definition.line,
                render::name_of(&entry.definition.kind)
            ))
        };
        if let Err(err) = written {
            failed = Some(err);
        }
    })?;
    if let Some(err) = failed {
        return Err(err);
    }
    Ok(())
}

fn repos(index: &CodeIndex, args: ListArgs, out: &mut Out) -> anyhow::Result<()> {
    for repo in index.repos()? {
        if args.json {
            out.json(&repo)?;
        } else {
            out.line(&render::repo_text(&repo))?;
        }
    }
    Ok(())
}

/// Indexes PATH, then keeps it fresh until Ctrl-C, printing each update.
pub fn watch(data_dir: &Path, args: WatchArgs) -> anyhow::Result<()> {
    let index = open(data_dir)?;
    let report = index
        .index_repo(
            args.name.as_deref().unwrap_or(""),
            &args.path,
            &IndexOptions::default(),
            &|_| {},
        )
        .with_context(|| format!("indexing {}", args.path.display()))?;
    let json = args.json;
    // Watch first, report second: whoever reads the report may save a file at once, and that change must be seen.
    let (tx, rx) = std::sync::mpsc::channel::<WatchEvent>();
    let handle = index.watch(&report.repo, move |event| {
        let _ = tx.send(event);
    })?;
    let mut out = Out::new();
    if json {
        out.json(&report)?;
    } else {
        out.line(&render::index_text(&report))?;
        out.line("watching for changes; Ctrl-C stops")?;
    }
    out.done()?;
    let printer = std::thread::spawn(move || {
        let mut out = Out::live();
        for event in rx {
            let line = match (&event, json) {
                (WatchEvent::Updated(update), true) => {
                    serde_json::to_string(update).unwrap_or_default()
                }
                (WatchEvent::Error { message }, true) => {
                    serde_json::json!({ "error": message }).to_string()
                }
                (WatchEvent::Updated(u), false) => format!(
                    "updated {}: {} added, {} changed, {} deleted",
                    u.repo,
                    u.added.len(),
                    u.changed.len(),
                    u.deleted.len()
                ),
                (WatchEvent::Error { message }, false) => format!("error: {message}"),
            };
            if out.line(&line).is_err() {
                break;
            }
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    handle.stop();
    drop(index);
    let _ = printer.join();
    Ok(())
}

fn eprintln_quiet(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}
