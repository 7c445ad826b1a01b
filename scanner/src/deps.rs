//! Dependencies: resolving each import to a file of the same repository (or an external package), and the
//! dependency graph over those edges: imports, importers (transitively, with distances) and cycles.
//!
//! Resolution rules, per language (paths are repository-relative and `/`-separated):
//! - **Rust**: `mod foo;` is `foo.rs` or `foo/mod.rs` in the declaring module's directory. `crate::a::b`
//!   walks modules from the crate root (`src/lib.rs`, else `src/main.rs`, of the nearest `Cargo.toml`),
//!   `self::` from the file's module, `super::` from its parent; the deepest module file reached is the target,
//!   so `use crate::store::Log` points at `store.rs`. A first segment naming a crate of the repository (by its
//!   `[package] name`, `-` read as `_`) walks that crate; a local module in scope is tried next; anything else
//!   (`std`, `serde`) is external, named by its first segment.
//! - **Python**: absolute modules are looked up, longest prefix first, as `a/b.py`, `a/b.pyi` or
//!   `a/b/__init__.py` under the repository root, under each Python project root (a directory with
//!   `pyproject.toml`, `setup.py` or `setup.cfg`) and under their `src/`. Relative imports count dots up from
//!   the file's package. Unresolved absolute imports are external, named by their top-level package.
//! - **JavaScript/TypeScript**: relative specifiers (`./`, `../`) try the path itself, then the extensions
//!   `.ts .tsx .d.ts .js .jsx .mjs .cjs .mts .cts`, then `index.*` inside it; a `.js` specifier also finds the
//!   `.ts` source it is compiled from. Bare specifiers are external, named by their package (`@scope/name`).
//! - **Go**: an import under the module path of a `go.mod` is that package's directory, and resolves to
//!   **every non-test `.go` file in it**: Go imports packages, and a file is what the graph's users ask about
//!   ("who depends on store/log.go?"). Other import paths are external, named in full.
//! - **Java**: `a.b.C` is any file ending in `a/b/C.java`, whatever the source root (`src/main/java`, ...);
//!   static imports drop trailing members until a class file is found; `a.b.*` is every `.java` file of the
//!   matching directory. When several source roots match, the one closest to the importing file wins.
//!   Unresolved imports are external, named by their package (segments before the first capitalized one).
//! - **C/C++**: `#include "x.h"` is looked up next to the file, then anywhere in the repository by path
//!   suffix (the candidate sharing the longest directory prefix with the includer wins); `#include <x.h>`
//!   only by suffix. Unresolved includes are external, named as written.
//!
//! A local import that matches no file (a relative import of a missing file, `mod x;` without `x.rs`) yields no
//! target at all rather than a misleading external package.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::model::{Import, ImportKind, Lang};

/// Where an import leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A file of the same repository, by its repository-relative path.
    File(String),
    /// Something outside the repository: a crate, package or header, by the name the rules above give it.
    External(String),
}

impl Target {
    /// The file path or external name.
    pub fn name(&self) -> &str {
        match self {
            Target::File(path) | Target::External(path) => path,
        }
    }
}

impl From<&str> for Target {
    /// A bare string names a file of the repository.
    fn from(path: &str) -> Target {
        Target::File(path.to_string())
    }
}

impl From<String> for Target {
    fn from(path: String) -> Target {
        Target::File(path)
    }
}

/// A Rust crate of the repository: where its `Cargo.toml` is, its name, and its root files.
#[derive(Debug, Clone)]
struct Crate {
    dir: String,
    /// The package name with `-` turned into `_`, as `use` paths spell it.
    name: Option<String>,
    lib: Option<String>,
    main: Option<String>,
}

/// Resolves imports against the files of one repository. Build it once per index pass from every file path
/// (and the text of the `Cargo.toml` and `go.mod` files, see [`Resolver::is_manifest`]); it is read-only and
/// can be shared across threads afterwards.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    files: BTreeSet<String>,
    /// File name → paths ending in it, for suffix lookups (C includes, Java classes).
    by_name: HashMap<String, Vec<String>>,
    /// Directory → its files (not recursive), for Go packages and Java wildcards.
    by_dir: HashMap<String, Vec<String>>,
    crates: Vec<Crate>,
    /// `(directory of go.mod, module path)`.
    go_modules: Vec<(String, String)>,
    python_roots: Vec<String>,
}

impl Resolver {
    /// Whether the resolver needs this file's text (`Cargo.toml`, `go.mod`): pass those to [`Resolver::new`].
    pub fn is_manifest(rel_path: &str) -> bool {
        matches!(file_name(rel_path), "Cargo.toml" | "go.mod")
    }

    /// Builds a resolver from every file path of the repository and the text of its manifests
    /// (`(rel_path, text)` pairs for the paths [`Resolver::is_manifest`] accepts; others are ignored).
    pub fn new<F, S>(files: F, manifests: impl IntoIterator<Item = (String, String)>) -> Resolver
    where
        F: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let files: BTreeSet<String> = files.into_iter().map(Into::into).collect();
        let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
        let mut by_dir: HashMap<String, Vec<String>> = HashMap::new();
        let mut python_roots = BTreeSet::from([String::new()]);
        for path in &files {
            by_name
                .entry(file_name(path).to_string())
                .or_default()
                .push(path.clone());
            by_dir
                .entry(parent_dir(path).to_string())
                .or_default()
                .push(path.clone());
            if matches!(file_name(path), "pyproject.toml" | "setup.py" | "setup.cfg") {
                python_roots.insert(parent_dir(path).to_string());
            }
        }
        // A `src/` layout puts the packages one level down.
        let with_src: Vec<String> = python_roots
            .iter()
            .map(|root| join(root, "src"))
            .filter(|src| {
                by_dir
                    .keys()
                    .any(|d| d == src || d.starts_with(&format!("{src}/")))
            })
            .collect();
        python_roots.extend(with_src);

        let mut crates = Vec::new();
        let mut go_modules = Vec::new();
        for (path, text) in manifests {
            let dir = parent_dir(&path).to_string();
            match file_name(&path) {
                "Cargo.toml" => {
                    let lib = join(&dir, "src/lib.rs");
                    let main = join(&dir, "src/main.rs");
                    crates.push(Crate {
                        name: cargo_package_name(&text).map(|n| n.replace('-', "_")),
                        lib: files.contains(&lib).then_some(lib),
                        main: files.contains(&main).then_some(main),
                        dir,
                    });
                }
                "go.mod" => {
                    if let Some(module) = go_module_path(&text) {
                        go_modules.push((dir, module));
                    }
                }
                _ => {}
            }
        }
        // Deepest first, so the nearest manifest of a file is the first that contains it.
        crates.sort_by(|a, b| b.dir.len().cmp(&a.dir.len()).then(a.dir.cmp(&b.dir)));
        go_modules.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        for list in by_name.values_mut().chain(by_dir.values_mut()) {
            list.sort();
        }
        Resolver {
            files,
            by_name,
            by_dir,
            crates,
            go_modules,
            python_roots: python_roots.into_iter().collect(),
        }
    }

    /// Where one import of the file `from` (written in `lang`) leads. Usually one target; several for a Go
    /// package or a Java wildcard (one per file); none for a local import that matches no file.
    pub fn resolve(&self, from: &str, lang: Lang, import: &Import) -> Vec<Target> {
        match lang {
            Lang::Rust => self.resolve_rust(from, import).into_iter().collect(),
            Lang::Python => self.resolve_python(from, import).into_iter().collect(),
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => {
                self.resolve_js(from, &import.module).into_iter().collect()
            }
            Lang::Go => self.resolve_go(&import.module),
            Lang::Java => self.resolve_java(from, &import.module),
            Lang::C | Lang::Cpp => vec![self.resolve_include(from, import)],
        }
    }

    /// Every target of a file's imports, deduplicated and sorted: the file's edges in a [`DepGraph`].
    pub fn resolve_all(&self, from: &str, lang: Lang, imports: &[Import]) -> Vec<Target> {
        let mut targets: BTreeSet<Target> = BTreeSet::new();
        for import in imports {
            targets.extend(self.resolve(from, lang, import));
        }
        targets.into_iter().collect()
    }

    fn has(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    fn first_existing(&self, candidates: impl IntoIterator<Item = String>) -> Option<String> {
        candidates.into_iter().find(|c| self.has(c))
    }

    // ---- Rust ----

    fn crate_of(&self, file: &str) -> Option<&Crate> {
        self.crates.iter().find(|c| is_under(file, &c.dir))
    }

    /// The root file of a crate as seen from `file`: `main.rs` for the binary's own tree, else `lib.rs`.
    fn crate_root<'a>(&self, krate: &'a Crate, file: &str) -> Option<&'a str> {
        if krate.main.as_deref() == Some(file) || krate.lib.is_none() {
            krate.main.as_deref()
        } else {
            krate.lib.as_deref()
        }
    }

    /// The file that defines module directory `dir` (`src/a` → `src/a.rs` or `src/a/mod.rs`; the crate's
    /// source directory → its root file).
    fn rust_module_file(&self, dir: &str, root_file: &str) -> Option<String> {
        if dir == parent_dir(root_file) {
            return Some(root_file.to_string());
        }
        self.first_existing([format!("{dir}.rs"), join(dir, "mod.rs")])
    }

    /// Walks `segments` down from module `(file, dir)`; returns the deepest module file reached.
    fn rust_walk(&self, mut file: String, mut dir: String, segments: &[&str]) -> String {
        for segment in segments {
            if *segment == "*" || *segment == "self" {
                continue;
            }
            let child = join(&dir, segment);
            match self.first_existing([format!("{child}.rs"), join(&child, "mod.rs")]) {
                Some(found) => {
                    file = found;
                    dir = child;
                }
                None => break,
            }
        }
        file
    }

    fn resolve_rust(&self, from: &str, import: &Import) -> Option<Target> {
        let module_dir = rust_module_dir(from);
        if import.kind == ImportKind::Module {
            let child = join(&module_dir, &import.module);
            return self
                .first_existing([format!("{child}.rs"), join(&child, "mod.rs")])
                .map(Target::File);
        }
        let segments: Vec<&str> = import
            .module
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let (&first, rest) = segments.split_first()?;
        let krate = self.crate_of(from);
        match first {
            "crate" => {
                let root = self.crate_root(krate?, from)?;
                Some(Target::File(self.rust_walk(
                    root.to_string(),
                    parent_dir(root).to_string(),
                    rest,
                )))
            }
            "self" => Some(Target::File(self.rust_walk(
                from.to_string(),
                module_dir,
                rest,
            ))),
            "super" => {
                let root = krate.and_then(|k| self.crate_root(k, from));
                let mut dir = module_dir;
                let mut remaining = &segments[..];
                while let Some((&"super", tail)) = remaining.split_first() {
                    dir = parent_dir(&dir).to_string();
                    remaining = tail;
                }
                let file = match root {
                    Some(root) => self.rust_module_file(&dir, root)?,
                    None => self.first_existing([format!("{dir}.rs"), join(&dir, "mod.rs")])?,
                };
                Some(Target::File(self.rust_walk(file, dir, remaining)))
            }
            name => {
                if let Some(other) = self.crates.iter().find(|c| c.name.as_deref() == Some(name)) {
                    if let Some(lib) = other.lib.as_deref().or(other.main.as_deref()) {
                        return Some(Target::File(self.rust_walk(
                            lib.to_string(),
                            parent_dir(lib).to_string(),
                            rest,
                        )));
                    }
                }
                // A module declared in scope (`mod util; use util::x;`) shadows a crate of that name.
                let child = join(&module_dir, name);
                if let Some(found) =
                    self.first_existing([format!("{child}.rs"), join(&child, "mod.rs")])
                {
                    return Some(Target::File(self.rust_walk(found, child, rest)));
                }
                Some(Target::External(name.to_string()))
            }
        }
    }

    // ---- Python ----

    /// The module file for dotted path `base/a/b`, as a module or a package.
    fn python_module(&self, base: &str) -> Option<String> {
        self.first_existing([
            format!("{base}.py"),
            format!("{base}.pyi"),
            join(base, "__init__.py"),
            join(base, "__init__.pyi"),
        ])
    }

    fn resolve_python(&self, from: &str, import: &Import) -> Option<Target> {
        let module = import.module.as_str();
        if import.kind == ImportKind::Relative || module.starts_with('.') {
            let dots = module.len() - module.trim_start_matches('.').len();
            let mut base = parent_dir(from).to_string();
            for _ in 1..dots {
                if base.is_empty() {
                    return None;
                }
                base = parent_dir(&base).to_string();
            }
            let parts: Vec<&str> = module[dots..]
                .split('.')
                .filter(|s| !s.is_empty())
                .collect();
            for len in (0..=parts.len()).rev() {
                let path = parts[..len].iter().fold(base.clone(), |p, s| join(&p, s));
                let found = if len == 0 {
                    self.first_existing([join(&base, "__init__.py"), join(&base, "__init__.pyi")])
                } else {
                    self.python_module(&path)
                };
                if let Some(found) = found {
                    return Some(Target::File(found));
                }
            }
            return None;
        }
        let parts: Vec<&str> = module.split('.').filter(|s| !s.is_empty()).collect();
        for len in (1..=parts.len()).rev() {
            for root in &self.python_roots {
                let path = parts[..len].iter().fold(root.clone(), |p, s| join(&p, s));
                if let Some(found) = self.python_module(&path) {
                    return Some(Target::File(found));
                }
            }
        }
        parts
            .first()
            .map(|top| Target::External((*top).to_string()))
    }

    // ---- JavaScript / TypeScript ----

    fn resolve_js(&self, from: &str, spec: &str) -> Option<Target> {
        if !(spec.starts_with("./") || spec.starts_with("../") || spec == "." || spec == "..") {
            return Some(Target::External(js_package_name(spec)));
        }
        let base = normalize(&join(parent_dir(from), spec))?;
        const EXTENSIONS: [&str; 9] = [
            ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts",
        ];
        let mut candidates = vec![base.clone()];
        // TypeScript's ESM style imports the compiled name: `./util.js` means `./util.ts`.
        for (js, ts) in [
            (".js", [".ts", ".tsx"]),
            (".mjs", [".mts", ".mts"]),
            (".cjs", [".cts", ".cts"]),
        ] {
            if let Some(stem) = base.strip_suffix(js) {
                candidates.extend(ts.iter().map(|ext| format!("{stem}{ext}")));
            }
        }
        candidates.extend(EXTENSIONS.iter().map(|ext| format!("{base}{ext}")));
        candidates.extend(
            EXTENSIONS
                .iter()
                .map(|ext| join(&base, &format!("index{ext}"))),
        );
        self.first_existing(candidates).map(Target::File)
    }

    // ---- Go ----

    fn resolve_go(&self, path: &str) -> Vec<Target> {
        for (dir, module) in &self.go_modules {
            let rest = if path == module {
                Some("")
            } else {
                path.strip_prefix(module.as_str())
                    .and_then(|r| r.strip_prefix('/'))
            };
            if let Some(rest) = rest {
                let package_dir = join(dir, rest);
                return self
                    .by_dir
                    .get(&package_dir)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.ends_with(".go") && !f.ends_with("_test.go"))
                    .map(|f| Target::File(f.clone()))
                    .collect();
            }
        }
        vec![Target::External(path.to_string())]
    }

    // ---- Java ----

    /// The candidate closest to `from`: the longest shared directory prefix, then the shortest, then by name.
    fn closest<'a>(
        from: &str,
        candidates: impl IntoIterator<Item = &'a String>,
    ) -> Option<&'a String> {
        candidates.into_iter().min_by(|a, b| {
            shared_dirs(from, b)
                .cmp(&shared_dirs(from, a))
                .then(a.len().cmp(&b.len()))
                .then(a.cmp(b))
        })
    }

    /// Files whose path is `suffix` or ends in `/suffix`.
    fn by_suffix<'a>(&'a self, suffix: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.by_name
            .get(file_name(suffix))
            .into_iter()
            .flatten()
            .filter(move |p| path_ends_with(p, suffix))
    }

    fn resolve_java(&self, from: &str, module: &str) -> Vec<Target> {
        let parts: Vec<&str> = module.split('.').filter(|s| !s.is_empty()).collect();
        if parts.last() == Some(&"*") {
            let package = parts[..parts.len() - 1].join("/");
            let dirs = self
                .by_dir
                .keys()
                .filter(|d| path_ends_with(d, &package) && !package.is_empty());
            if let Some(dir) = Self::closest(from, dirs) {
                let files: Vec<Target> = self.by_dir[dir]
                    .iter()
                    .filter(|f| f.ends_with(".java"))
                    .map(|f| Target::File(f.clone()))
                    .collect();
                if !files.is_empty() {
                    return files;
                }
            }
        } else {
            for len in (1..=parts.len()).rev() {
                let suffix = format!("{}.java", parts[..len].join("/"));
                if let Some(found) = Self::closest(from, self.by_suffix(&suffix)) {
                    return vec![Target::File(found.clone())];
                }
            }
        }
        let package: Vec<&str> = parts
            .iter()
            .take_while(|p| !p.starts_with(|c: char| c.is_uppercase()) && **p != "*")
            .copied()
            .collect();
        let name = if package.is_empty() {
            module.to_string()
        } else {
            package.join(".")
        };
        vec![Target::External(name)]
    }

    // ---- C / C++ ----

    fn resolve_include(&self, from: &str, import: &Import) -> Target {
        let header = import.module.as_str();
        if import.kind != ImportKind::IncludeSystem {
            if let Some(local) = normalize(&join(parent_dir(from), header)) {
                if self.has(&local) {
                    return Target::File(local);
                }
            }
        }
        match normalize(header).and_then(|h| Self::closest(from, self.by_suffix(&h)).cloned()) {
            Some(found) => Target::File(found),
            None => Target::External(header.to_string()),
        }
    }
}

/// The directory where a Rust file's child modules live: its own directory for `lib.rs`, `main.rs` and
/// `mod.rs`, else a directory named after the file (`src/a.rs` → `src/a`).
fn rust_module_dir(file: &str) -> String {
    let dir = parent_dir(file);
    match file_name(file) {
        "lib.rs" | "main.rs" | "mod.rs" => dir.to_string(),
        name => join(dir, name.strip_suffix(".rs").unwrap_or(name)),
    }
}

/// The `name` of the `[package]` table of a Cargo.toml, read without a TOML parser: only that one key of that
/// one table matters here, and the scanner keeps its dependencies few.
fn cargo_package_name(text: &str) -> Option<String> {
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
            if let Some(value) = value.strip_prefix('=') {
                let value = value.trim();
                let quoted = value
                    .strip_prefix('"')
                    .and_then(|v| v.split('"').next())
                    .or_else(|| value.strip_prefix('\'').and_then(|v| v.split('\'').next()));
                return quoted.map(str::to_string);
            }
        }
    }
    None
}

/// The module path in a go.mod: its `module` line, possibly quoted.
fn go_module_path(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("module")?;
        if !rest.starts_with(char::is_whitespace) {
            return None;
        }
        let path = rest.split("//").next()?.trim().trim_matches('"');
        (!path.is_empty()).then(|| path.to_string())
    })
}

/// The npm package of a bare specifier: `@scope/name/sub` → `@scope/name`, `lodash/fp` → `lodash`.
fn js_package_name(spec: &str) -> String {
    let mut parts = spec.split('/');
    let first = parts.next().unwrap_or(spec);
    if first.starts_with('@') {
        match parts.next() {
            Some(second) => format!("{first}/{second}"),
            None => first.to_string(),
        }
    } else {
        first.to_string()
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_string()
    } else if rest.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

/// Whether `path` is inside directory `dir` (the root `""` contains everything).
fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

fn path_ends_with(path: &str, suffix: &str) -> bool {
    path == suffix
        || path
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('/'))
}

/// How many leading directories two paths share.
fn shared_dirs(a: &str, b: &str) -> usize {
    parent_dir(a)
        .split('/')
        .zip(parent_dir(b).split('/'))
        .take_while(|(x, y)| x == y && !x.is_empty())
        .count()
}

/// Resolves `.` and `..` in a `/`-separated relative path; `None` if it climbs above the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The dependency graph of a repository: edges from files to the files and external packages they import.
/// Every answer is sorted, so the same repository always gives the same output.
#[derive(Debug, Clone, Default)]
pub struct DepGraph {
    forward: BTreeMap<Target, BTreeSet<Target>>,
    backward: BTreeMap<Target, BTreeSet<Target>>,
}

impl DepGraph {
    /// Builds the graph from `(importing file, target)` edges; duplicates are merged.
    pub fn new(edges: impl IntoIterator<Item = (String, Target)>) -> DepGraph {
        let mut graph = DepGraph::default();
        for (from, to) in edges {
            let from = Target::File(from);
            graph
                .backward
                .entry(to.clone())
                .or_default()
                .insert(from.clone());
            graph.forward.entry(from).or_default().insert(to);
        }
        graph
    }

    /// Every edge, sorted.
    pub fn edges(&self) -> impl Iterator<Item = (&str, &Target)> {
        self.forward
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(move |to| (from.name(), to)))
    }

    /// What `file` imports, directly (distance 1) and transitively up to `depth`, each with its shortest
    /// distance; sorted by distance, then target. Depth 0 answers nothing.
    pub fn imports_of(&self, file: &str, depth: usize) -> Vec<(Target, usize)> {
        Self::reach(&self.forward, Target::File(file.to_string()), depth)
    }

    /// What imports `target` (a file of the repository, or an external package), directly and transitively up
    /// to `depth`, each with its shortest distance; sorted by distance, then path.
    pub fn importers_of(&self, target: impl Into<Target>, depth: usize) -> Vec<(String, usize)> {
        Self::reach(&self.backward, target.into(), depth)
            .into_iter()
            .map(|(t, d)| (t.name().to_string(), d))
            .collect()
    }

    fn reach(
        adjacency: &BTreeMap<Target, BTreeSet<Target>>,
        start: Target,
        depth: usize,
    ) -> Vec<(Target, usize)> {
        let mut seen: BTreeMap<&Target, usize> = BTreeMap::new();
        let mut queue: VecDeque<(&Target, usize)> = VecDeque::new();
        let Some((start_key, _)) = adjacency.get_key_value(&start) else {
            return Vec::new();
        };
        queue.push_back((start_key, 0));
        while let Some((node, distance)) = queue.pop_front() {
            if distance >= depth {
                continue;
            }
            for next in adjacency.get(node).into_iter().flatten() {
                if *next == start || seen.contains_key(next) {
                    continue;
                }
                seen.insert(next, distance + 1);
                queue.push_back((next, distance + 1));
            }
        }
        let mut out: Vec<(Target, usize)> = seen.into_iter().map(|(t, d)| (t.clone(), d)).collect();
        out.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Import cycles: every strongly connected component of more than one file, plus every file that imports
    /// itself. Each cycle's files are sorted, and the cycles are sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        // Tarjan's algorithm, iteratively, so that a long import chain cannot overflow the stack.
        let nodes: Vec<&Target> = self.forward.keys().collect();
        let index_of: HashMap<&Target, usize> =
            nodes.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        let successors: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                self.forward[*n]
                    .iter()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        const UNSEEN: usize = usize::MAX;
        let n = nodes.len();
        let mut index = vec![UNSEEN; n];
        let mut low = vec![0usize; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<usize> = Vec::new();
        let mut next_index = 0usize;
        let mut cycles: Vec<Vec<String>> = Vec::new();
        for root in 0..n {
            if index[root] != UNSEEN {
                continue;
            }
            // Each frame: a node and how many of its successors were visited.
            let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
            index[root] = next_index;
            low[root] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(frame) = frames.last_mut() {
                let (v, i) = *frame;
                if let Some(&w) = successors[v].get(i) {
                    frame.1 += 1;
                    if index[w] == UNSEEN {
                        index[w] = next_index;
                        low[w] = next_index;
                        next_index += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        frames.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                frames.pop();
                if let Some(&(parent, _)) = frames.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    let is_cycle = component.len() > 1 || successors[v].contains(&v);
                    if is_cycle {
                        let mut names: Vec<String> = component
                            .iter()
                            .map(|&w| nodes[w].name().to_string())
                            .collect();
                        names.sort();
                        cycles.push(names);
                    }
                }
            }
        }
        cycles.sort();
        cycles
    }
}

#[cfg(test)]
mod tests;
