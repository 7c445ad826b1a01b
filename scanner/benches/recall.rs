//! Symbol recall against Universal Ctags, per language, on real source corpora found on this machine, and
//! the speed of our extraction beside ctags' own (the baseline, measured in the same run).
//!
//! Run with `cargo bench -p dreamos-scanner --bench recall`. Options (after `--`):
//! `--misses [N]` prints N (default 20) definitions ctags found that we did not, and N we found that ctags
//! did not, per language; `--lang NAME` runs one language. It needs `ctags` (Universal Ctags) on the PATH and
//! installs nothing itself, except corpora: the npm packages of the JavaScript and TypeScript corpora are
//! `npm install`ed into the target directory once when npm is present, and the JDK's `src.zip` is unpacked there
//! once.
//!
//! Matching is on (path, name, line) over the kinds both tools call function, method, class, struct, enum,
//! interface/trait (plus Rust impl blocks and C/C++ unions); see `comparable_ctags_kind` for the exact map.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dreamos_scanner::extract::Extractor;
use dreamos_scanner::model::{Lang, SymbolKind};
use dreamos_scanner::walk::{walk, WalkOptions};
use rayon::prelude::*;

/// At most this many files per corpus, picked evenly across the sorted list so every package is represented.
const MAX_FILES: usize = 2_000;
/// At most this many bytes per corpus, so the whole run takes minutes.
const MAX_BYTES: u64 = 30 * 1024 * 1024;
/// The walker's default limit: bigger files are not indexed, so they are not compared either.
const MAX_FILE_SIZE: u64 = 1024 * 1024;

struct Corpus {
    lang: Lang,
    /// The `--language-force` name for ctags.
    ctags_lang: &'static str,
    /// Where the files come from, for the report.
    source: String,
    files: Vec<PathBuf>,
}

struct Options {
    misses: usize,
    only: Option<Lang>,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        misses: 0,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--misses" => {
                opts.misses = 20;
                if let Some(n) = args.get(i + 1).and_then(|a| a.parse().ok()) {
                    opts.misses = n;
                    i += 1;
                }
            }
            "--lang" => {
                let name = args.get(i + 1).ok_or("--lang needs a language name")?;
                opts.only = Some(name.parse().map_err(|e| format!("{e}"))?);
                i += 1;
            }
            // Cargo passes `--bench` to harness-less benchmarks; other flags are not ours.
            _ => {}
        }
        i += 1;
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("recall: {e}");
            return ExitCode::from(2);
        }
    };
    match Command::new("ctags").arg("--version").output() {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains("Universal Ctags") => {
            let version = String::from_utf8_lossy(&out.stdout);
            println!("baseline: {}", version.lines().next().unwrap_or("").trim());
        }
        _ => {
            eprintln!(
                "recall: Universal Ctags is not installed (no `ctags` on the PATH, or not the Universal one).\n\
                 Install it with: apt-get install -y universal-ctags"
            );
            return ExitCode::from(2);
        }
    }
    let work = target_dir().join("recall-corpus");
    let corpora = find_corpora(&work, opts.only);
    println!(
        "\n| language | corpus | files | MB | ctags defs | ours | matched | recall | precision | ours in macro bodies | ours MB/s | ctags MB/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut details = Vec::new();
    let mut rust_files = Vec::new();
    for corpus in corpora {
        if corpus.files.is_empty() {
            println!(
                "| {} | {} | 0 | – | – | – | – | – | – | – | – |",
                corpus.lang, corpus.source
            );
            continue;
        }
        match compare(&corpus, opts.misses) {
            Ok((row, detail)) => {
                println!("{row}");
                details.push(detail);
                if corpus.lang == Lang::Rust {
                    rust_files = corpus.files.clone();
                }
            }
            Err(e) => println!("| {} | {} | error: {e} |", corpus.lang, corpus.source),
        }
        std::io::stdout().flush().ok();
    }
    for detail in details {
        if !detail.is_empty() {
            println!("\n{detail}");
        }
    }
    if !rust_files.is_empty() {
        if let Err(e) = throughput(&rust_files, &work) {
            println!("throughput: error: {e}");
        }
    }
    ExitCode::SUCCESS
}

/// The cargo target directory (where this benchmark binary lives), for cached corpora.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "target"))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir)
}

fn find_corpora(work: &Path, only: Option<Lang>) -> Vec<Corpus> {
    let wanted = |lang: Lang| only.is_none_or(|o| o == lang);
    let mut out = Vec::new();
    if wanted(Lang::Rust) {
        let home = std::env::var("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| home().join(".cargo"));
        let root = home.join("registry/src");
        out.push(corpus(Lang::Rust, "Rust", &root, &|p| ext_is(p, &["rs"])));
    }
    if wanted(Lang::Python) {
        let stdlib = Command::new("python3")
            .args([
                "-c",
                "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
            ])
            .output()
            .ok()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_default();
        out.push(corpus(Lang::Python, "Python", &stdlib, &|p| {
            ext_is(p, &["py"]) && !p.components().any(|c| c.as_os_str() == "site-packages")
        }));
    }
    if wanted(Lang::C) {
        // `.h` files of C++ libraries (LLVM, V8, ...) also live here; the C corpus is the ones without C++ syntax.
        out.push(corpus(Lang::C, "C", Path::new("/usr/include"), &|p| {
            ext_is(p, &["h"]) && !p.starts_with("/usr/include/c++") && !looks_like_cpp(p)
        }));
    }
    if wanted(Lang::Cpp) {
        // libstdc++ headers mostly have no extension (`vector`); the corpus is C++ by location.
        out.push(corpus(
            Lang::Cpp,
            "C++",
            Path::new("/usr/include/c++"),
            &|_| true,
        ));
    }
    if wanted(Lang::JavaScript) {
        let roots = ["/usr/lib/node_modules", "/usr/local/lib/node_modules"];
        let root = roots.iter().map(Path::new).find(|p| p.is_dir());
        out.push(corpus(
            Lang::JavaScript,
            "JavaScript",
            root.unwrap_or(Path::new(roots[0])),
            &|p| is_plain_javascript(p),
        ));
        // CommonJS as web frameworks write it: express@4 with its whole dependency tree (body-parser, send,
        // serve-static, finalhandler, qs, ...), plus resolve and minimist; qs, resolve and minimist ship their
        // tape tests, which are code in callbacks (`test('x', function (t) { function helper() {} })`).
        let cjs = npm_corpus(
            work,
            "javascript-cjs",
            &["express@4", "resolve@1", "minimist@1"],
            &["express/lib", "resolve/test", "minimist/test"],
        );
        out.push(corpus_in(
            Lang::JavaScript,
            "JavaScript",
            "CommonJS: express@4 and its dependencies, resolve, minimist (with tests)".to_string(),
            &[cjs],
            &|p| is_plain_javascript(p),
        ));
        // ES modules from packages that ship their unbundled sources; only the source folders, since their
        // `dist` folders are the same code bundled or minified.
        let esm = npm_corpus(
            work,
            "javascript-esm",
            &[
                "preact@10",
                "svelte@4",
                "execa@9",
                "chalk@5",
                "underscore@1",
                "moment@2",
            ],
            &[
                "preact/src",
                "svelte/src",
                "execa/lib",
                "chalk/source",
                "underscore/modules",
                "moment/src",
            ],
        );
        let esm_roots: Vec<PathBuf> = [
            "preact/src",
            "preact/hooks/src",
            "preact/compat/src",
            "preact/debug/src",
            "svelte/src",
            "execa/lib",
            "chalk/source",
            "underscore/modules",
            "moment/src",
        ]
        .iter()
        .map(|dir| esm.join(dir))
        .collect();
        out.push(corpus_in(
            Lang::JavaScript,
            "JavaScript",
            "ES modules: preact@10, svelte@4, execa@9, chalk@5, underscore@1, moment@2 sources"
                .to_string(),
            &esm_roots,
            &|p| is_plain_javascript(p),
        ));
    }
    if wanted(Lang::TypeScript) {
        let root = npm_corpus(
            work,
            "typescript",
            &["rxjs@7", "zod@3", "@tanstack/query-core@5", "mobx@6"],
            &["rxjs/src", "zod", "@tanstack/query-core/src", "mobx/src"],
        );
        out.push(corpus_in(
            Lang::TypeScript,
            "TypeScript",
            "rxjs@7, zod@3, @tanstack/query-core@5, mobx@6 (`npm install`ed by the bench)"
                .to_string(),
            &[root],
            &|p| ext_is(p, &["ts"]) && !p.to_string_lossy().ends_with(".d.ts"),
        ));
    }
    if wanted(Lang::Go) {
        let candidates = ["/usr/lib/go/src", "/usr/local/go/src", "/usr/share/go/src"];
        let mut roots: Vec<PathBuf> = candidates.iter().map(PathBuf::from).collect();
        // Debian's golang-1.NN-src puts the standard library under /usr/share/go-1.NN/src.
        for parent in ["/usr/lib", "/usr/share"] {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            let mut versioned: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("go-"))
                })
                .map(|p| p.join("src"))
                .collect();
            versioned.sort();
            roots.extend(versioned.into_iter().rev());
        }
        match roots.into_iter().find(|p| p.is_dir()) {
            Some(root) => out.push(corpus(Lang::Go, "Go", &root, &|p| ext_is(p, &["go"]))),
            None => {
                // No Go toolchain sources: whatever .go files the machine has (often a handful in /usr/share).
                out.push(corpus(Lang::Go, "Go", Path::new("/usr/share"), &|p| {
                    ext_is(p, &["go"])
                }));
            }
        }
    }
    if wanted(Lang::Java) {
        let root = java_corpus(work);
        out.push(corpus(Lang::Java, "Java", &root, &|p| ext_is(p, &["java"])));
    }
    out
}

/// Whether a header uses C++ syntax: a namespace, a template, a class body or an access specifier.
fn looks_like_cpp(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("namespace ")
            || line.starts_with("template")
            || line.starts_with("class ")
            || line.starts_with("public:")
            || line.starts_with("private:")
            || line.starts_with("protected:")
            || line.contains("extern \"C++\"")
    })
}

fn home() -> PathBuf {
    std::env::var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/root"))
}

fn ext_is(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// JavaScript that people wrote: `.js`, `.mjs` and `.cjs` files, not minified ones (named `.min.`, or with
/// lines of more than 250 bytes on average, such as the browserify bundle `qs/dist/qs.js`).
fn is_plain_javascript(path: &Path) -> bool {
    if !ext_is(path, &["js", "mjs", "cjs"]) || path.to_string_lossy().contains(".min.") {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
    bytes.len() / lines <= 250
}

/// A corpus of npm packages, `npm install`ed once into `<work>/<name>` when npm is present; `probes` are folders
/// (under `node_modules`) whose absence means the install has not happened yet. Returns the `node_modules` folder.
fn npm_corpus(work: &Path, name: &str, packages: &[&str], probes: &[&str]) -> PathBuf {
    let dir = work.join(name);
    let modules = dir.join("node_modules");
    if !probes.iter().all(|p| modules.join(p).is_dir()) {
        std::fs::create_dir_all(&dir).ok();
        eprintln!(
            "recall: installing the {name} corpus ({}) into {}",
            packages.join(", "),
            dir.display()
        );
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(&dir)
            .args(packages)
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("recall: npm install failed; the {name} row will be empty");
        }
    }
    modules
}

/// The Java corpus: the JDK's `src.zip` (module `java.base`), unpacked once into the target directory.
fn java_corpus(work: &Path) -> PathBuf {
    let dir = work.join("java");
    if dir.join("java.base").is_dir() {
        return dir;
    }
    let mut zips: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        for entry in entries.flatten() {
            zips.push(entry.path().join("lib/src.zip"));
            zips.push(entry.path().join("src.zip"));
        }
    }
    zips.sort();
    if let Some(zip) = zips
        .into_iter()
        .find(|z| std::fs::metadata(z).is_ok_and(|m| m.is_file()))
    {
        std::fs::create_dir_all(&dir).ok();
        eprintln!(
            "recall: unpacking java.base from {} into {}",
            zip.display(),
            dir.display()
        );
        let ok = Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&zip)
            .arg("java.base/*")
            .arg("-d")
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("recall: unzip failed; the Java row will be empty");
        }
    }
    dir
}

/// Collects the files under `root` that `keep` accepts, then picks at most [`MAX_FILES`] spread evenly over the
/// sorted list, within [`MAX_BYTES`].
fn corpus(
    lang: Lang,
    ctags_lang: &'static str,
    root: &Path,
    keep: &dyn Fn(&Path) -> bool,
) -> Corpus {
    corpus_in(
        lang,
        ctags_lang,
        root.display().to_string(),
        &[root.to_path_buf()],
        keep,
    )
}

/// [`corpus`] over several roots, described as `source` in the report.
fn corpus_in(
    lang: Lang,
    ctags_lang: &'static str,
    source: String,
    roots: &[PathBuf],
    keep: &dyn Fn(&Path) -> bool,
) -> Corpus {
    let mut all = Vec::new();
    let mut stack = roots.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && keep(&path) {
                if let Ok(meta) = entry.metadata() {
                    if meta.len() > 0 && meta.len() <= MAX_FILE_SIZE {
                        all.push((path, meta.len()));
                    }
                }
            }
        }
    }
    all.sort();
    let stride = all.len().div_ceil(MAX_FILES).max(1);
    let mut files = Vec::new();
    let mut bytes = 0;
    for (path, len) in all.into_iter().step_by(stride) {
        if bytes + len > MAX_BYTES {
            break;
        }
        bytes += len;
        files.push(path);
    }
    Corpus {
        lang,
        ctags_lang,
        source,
        files,
    }
}

/// The ctags kinds compared for a language, by ctags' long kind name.
fn comparable_ctags_kind(lang: Lang, kind: &str) -> bool {
    let kinds: &[&str] = match lang {
        Lang::Rust => &[
            "function",
            "method",
            "struct",
            "enum",
            "interface",
            "implementation",
        ],
        Lang::Python => &["class", "function", "member"],
        Lang::JavaScript => &[
            "function",
            "method",
            "class",
            "generator",
            "getter",
            "setter",
        ],
        Lang::TypeScript | Lang::Tsx => &[
            "function",
            "method",
            "class",
            "interface",
            "enum",
            "generator",
        ],
        Lang::Go => &["func", "struct", "interface", "methodSpec"],
        Lang::Java => &["class", "interface", "enum", "method", "annotation"],
        Lang::C => &["function", "struct", "enum", "union"],
        Lang::Cpp => &["function", "class", "struct", "enum", "union"],
    };
    kinds.contains(&kind)
}

/// Our kinds compared: the same families as [`comparable_ctags_kind`].
fn comparable_kind(lang: Lang, kind: SymbolKind) -> bool {
    match kind {
        SymbolKind::Function
        | SymbolKind::Method
        | SymbolKind::Class
        | SymbolKind::Struct
        | SymbolKind::Enum
        | SymbolKind::Interface => true,
        SymbolKind::Impl => lang == Lang::Rust,
        SymbolKind::Union => matches!(lang, Lang::C | Lang::Cpp),
        _ => false,
    }
}

type Key = (String, String, u32);

/// A name as compared: without whitespace (ctags writes `operator ==`, we write `operator==`) and without
/// the `#` of a JavaScript private member (ctags drops it, we keep it, since it is part of the name).
fn comparable_name(name: &str) -> String {
    name.trim_start_matches('#')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// One of our definitions, with the lines it may be matched on.
struct Ours {
    kind: SymbolKind,
    keys: [Key; 2],
}

/// One ctags tag.
struct Theirs {
    kind: String,
    key: Key,
    /// Whether it counts toward recall (a compared kind, a real name).
    compared: bool,
}

/// Compares one corpus. Recall: the compared ctags tags that we also report (any kind) at the same path, name and
/// line. Precision: our compared definitions that ctags also reports there, under any of its kinds (ctags calls
/// `const f = () => ...` a variable; that is still a real definition). A definition of ours may match on its first
/// line or on the line where its name appears, because ctags reports the name's line (`static int\nf(void)`).
fn compare(corpus: &Corpus, misses: usize) -> Result<(String, String), String> {
    // Our side first: read every file (the ones that are not UTF-8 are left out of both sides).
    let mut texts: Vec<(String, String)> = Vec::with_capacity(corpus.files.len());
    for path in &corpus.files {
        if let Ok(text) = std::fs::read_to_string(path) {
            texts.push((path.display().to_string(), text));
        }
    }
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    let mut extractor = Extractor::new();
    let mut ours: Vec<Ours> = Vec::new();
    let mut in_macros = 0usize;
    let mut elapsed = Duration::ZERO;
    for (path, text) in &texts {
        let start = Instant::now();
        let facts = extractor
            .extract(corpus.lang, text)
            .map_err(|e| format!("{path}: {e}"))?;
        elapsed += start.elapsed();
        let lines: Vec<&str> = text.lines().collect();
        for def in facts.definitions {
            if !comparable_kind(corpus.lang, def.kind) {
                continue;
            }
            let name_line = (def.line..=def.end_line)
                .find(|&l| {
                    lines
                        .get(l as usize - 1)
                        .is_some_and(|t| t.contains(def.name.as_str()))
                })
                .unwrap_or(def.line);
            let name = comparable_name(&def.name);
            if def.in_macro {
                // Inside a Rust item macro's body (`cfg_rt! { pub fn ... }`): ctags does not look there, so these
                // are counted apart, neither in our column nor against our precision.
                in_macros += 1;
                continue;
            }
            ours.push(Ours {
                kind: def.kind,
                keys: [
                    (path.clone(), name.clone(), def.line),
                    (path.clone(), name, name_line),
                ],
            });
        }
    }
    let sources: BTreeMap<&str, &str> = texts
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let line_text = |path: &str, line: u32| -> &str {
        sources
            .get(path)
            .and_then(|t| t.lines().nth(line.saturating_sub(1) as usize))
            .unwrap_or("")
    };

    // Then ctags, over exactly the same files.
    let list = std::env::temp_dir().join(format!("dreamos-recall-{}.list", corpus.lang));
    let mut listing = String::new();
    for (path, _) in &texts {
        listing.push_str(path);
        listing.push('\n');
    }
    std::fs::write(&list, listing).map_err(|e| format!("cannot write {}: {e}", list.display()))?;
    let start = Instant::now();
    let output = Command::new("ctags")
        .arg("--output-format=json")
        .arg("--fields=+nKzZ")
        .arg(format!("--language-force={}", corpus.ctags_lang))
        .args(["--sort=no", "-f", "-", "-L"])
        .arg(&list)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ctags: {e}"))?;
    let ctags_elapsed = start.elapsed();
    std::fs::remove_file(&list).ok();
    let mut theirs: Vec<Theirs> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(tag) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if tag["_type"] != "tag" {
            continue;
        }
        let (Some(name), Some(path), Some(line), Some(kind)) = (
            tag["name"].as_str(),
            tag["path"].as_str(),
            tag["line"].as_u64(),
            tag["kind"].as_str(),
        ) else {
            continue;
        };
        let line = line as u32;
        // ctags names anonymous structs `__anonXXXX` and anonymous JavaScript functions `AnonymousFunctionXXXX`:
        // there is nothing to match them with. Its JavaScript parser also calls a "class" both object literals
        // holding functions and whatever a `Foo.prototype.bar = ...` line assigns to; neither is a definition
        // there. A class is compared when its line has the word `class`, or when it is a constructor function
        // (`function View(name) {}`, which ctags calls a class when the file assigns `View.prototype`).
        let anonymous = name.starts_with("__anon")
            || name
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("AnonymousFunction"));
        let object_literal = matches!(corpus.lang, Lang::JavaScript | Lang::TypeScript)
            && kind == "class"
            && !has_word(line_text(path, line), "class")
            && !is_constructor_line(line_text(path, line), name);
        theirs.push(Theirs {
            compared: comparable_ctags_kind(corpus.lang, kind) && !anonymous && !object_literal,
            kind: kind.to_string(),
            key: (path.to_string(), comparable_name(name), line),
        });
    }

    let our_keys: HashSet<&Key> = ours.iter().flat_map(|o| o.keys.iter()).collect();
    let their_keys: HashSet<&Key> = theirs.iter().map(|t| &t.key).collect();
    let compared: Vec<&Theirs> = theirs.iter().filter(|t| t.compared).collect();
    let recalled = compared
        .iter()
        .filter(|t| our_keys.contains(&t.key))
        .count();
    let confirmed = ours
        .iter()
        .filter(|o| o.keys.iter().any(|k| their_keys.contains(k)))
        .count();
    let recall = 100.0 * recalled as f64 / compared.len().max(1) as f64;
    let precision = 100.0 * confirmed as f64 / ours.len().max(1) as f64;
    let mb = bytes as f64 / 1e6;
    let row = format!(
        "| {} | {} | {} | {:.1} | {} | {} | {} | {:.1} % | {:.1} % | {} | {:.2} | {:.2} |",
        corpus.lang,
        corpus.source,
        texts.len(),
        mb,
        compared.len(),
        ours.len(),
        recalled,
        recall,
        precision,
        in_macros,
        mb / elapsed.as_secs_f64().max(1e-9),
        mb / ctags_elapsed.as_secs_f64().max(1e-9),
    );

    let mut detail = String::new();
    if misses > 0 {
        let show = |key: &Key, kind: &str| -> String {
            let shown: String = line_text(&key.0, key.2).trim().chars().take(100).collect();
            format!("  {}:{} {} [{}]  {}\n", key.0, key.2, key.1, kind, shown)
        };
        let mut missed: Vec<&Theirs> = compared
            .iter()
            .copied()
            .filter(|t| !our_keys.contains(&t.key))
            .collect();
        missed.sort_by(|a, b| a.key.cmp(&b.key));
        let mut extra: Vec<&Ours> = ours
            .iter()
            .filter(|o| !o.keys.iter().any(|k| their_keys.contains(k)))
            .collect();
        extra.sort_by(|a, b| a.keys[0].cmp(&b.keys[0]));
        detail.push_str(&format!(
            "{}: {} found by ctags only (sample):\n",
            corpus.lang,
            missed.len()
        ));
        for t in spread(&missed, misses) {
            detail.push_str(&show(&t.key, &t.kind));
        }
        detail.push_str(&format!(
            "{}: {} found by us only (sample):\n",
            corpus.lang,
            extra.len()
        ));
        for o in spread(&extra, misses) {
            detail.push_str(&show(&o.keys[0], &format!("{:?}", o.kind)));
        }
    }
    Ok((row, detail))
}

/// Whether `word` occurs in `line` as a whole identifier (`class`, but not `superclass`).
fn has_word(line: &str, word: &str) -> bool {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .any(|w| w == word)
}

/// Whether a line defines `name` as a function: `function View(`, `View = function`, `View: function`.
fn is_constructor_line(line: &str, name: &str) -> bool {
    line.contains(&format!("function {name}("))
        || line.contains(&format!("function {name} ("))
        || line.contains(&format!("{name} = function"))
        || line.contains(&format!("{name}: function"))
}

/// Up to `n` items spread evenly over the list, so a sample is not all from one file.
fn spread<T>(items: &[T], n: usize) -> Vec<&T> {
    let stride = items.len().div_ceil(n.max(1)).max(1);
    items.iter().step_by(stride).take(n).collect()
}

/// Walk + extract throughput on a copy of the Rust corpus: the walker's own threads (one, then all cores), and
/// rayon over a list the walker collected first. The machine is shared, so each way runs three times,
/// interleaved, and the best run is reported.
fn throughput(files: &[PathBuf], work: &Path) -> Result<(), String> {
    let dir = work.join("throughput");
    std::fs::remove_dir_all(&dir).ok();
    for (i, path) in files.iter().enumerate() {
        let sub = dir.join(format!("{:02}", i % 64));
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        std::fs::copy(path, sub.join(format!("{i}.rs"))).map_err(|e| e.to_string())?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();
    let ways = [
        "walk() visiting, 1 thread",
        "walk() visiting, all cores",
        "walk() collects, then rayon extracts",
    ];
    let mut best = [f64::MAX; 3];
    let mut sizes = [(0u64, 0u64); 3];
    let mut definitions = 0usize;
    for _round in 0..3 {
        for (way, best) in best.iter_mut().enumerate() {
            let start = Instant::now();
            let defs = Mutex::new(0usize);
            let count = |file: &dreamos_scanner::walk::SourceFile| -> usize {
                file.lang
                    .and_then(|lang| dreamos_scanner::extract::extract(lang, &file.text).ok())
                    .map_or(0, |f| f.definitions.len())
            };
            let report = if way < 2 {
                let opts = WalkOptions {
                    threads: if way == 0 { 1 } else { 0 },
                    ..WalkOptions::default()
                };
                walk(&dir, &opts, |file| {
                    let n = count(&file);
                    *defs.lock().expect("no visitor panics holding the lock") += n;
                })
                .map_err(|e| e.to_string())?
            } else {
                let collected = Mutex::new(Vec::new());
                let report = walk(&dir, &WalkOptions::default(), |file| {
                    collected
                        .lock()
                        .expect("no visitor panics holding the lock")
                        .push(file)
                })
                .map_err(|e| e.to_string())?;
                let collected = collected
                    .into_inner()
                    .map_err(|_| "a visitor panicked".to_string())?;
                let n: usize = collected.par_iter().map(count).sum();
                *defs.lock().expect("no visitor panics holding the lock") += n;
                report
            };
            *best = best.min(start.elapsed().as_secs_f64());
            sizes[way] = (report.files, report.bytes);
            definitions = defs
                .into_inner()
                .map_err(|_| "a visitor panicked".to_string())?;
        }
    }
    println!(
        "\nWalk + extract throughput on the Rust sample ({} files copied to {}), {cores} cores, best of 3:",
        files.len(),
        dir.display()
    );
    println!("| how | files | MB | seconds | MB/s |");
    println!("|---|---:|---:|---:|---:|");
    for way in 0..3 {
        let mb = sizes[way].1 as f64 / 1e6;
        println!(
            "| {} | {} | {:.1} | {:.2} | {:.2} |",
            ways[way],
            sizes[way].0,
            mb,
            best[way],
            mb / best[way]
        );
    }
    println!(
        "({definitions} definitions per pass; load average before: {load_before}, after: {})",
        load_average()
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// The 1-minute load average, to read parallel figures by: on a machine whose cores are busy with other work,
/// more threads cannot go faster.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}
