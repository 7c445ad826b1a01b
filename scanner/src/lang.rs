//! Languages: which [`Lang`] a path is, its tree-sitter grammar, and its compiled queries (built once, shared).
//!
//! Each language has one combined query (definitions and imports together, so a file is walked once) and a
//! references query (run as a second pass, see [`references_source`]), made of the `.scm` files under
//! `scanner/queries/<lang>/`, embedded in the binary. Captures follow one naming scheme,
//! decoded here once into [`Role`]s so that extraction dispatches on an index, not on a string:
//!
//! - `@definition.<kind>`: the whole definition node; `<kind>` is one of `function`, `method`, `class`, `struct`,
//!   `enum`, `interface`, `type`, `constant`, `variable`, `macro`, `module`, `field`, `variant`, `union`,
//!   `namespace`, `impl`.
//! - `@name`: the definition's name; `@declarator`: a C/C++ declarator whose name is found in code;
//!   `@scope`: an explicit container (a Go receiver type).
//! - `@import.<how>`: an import; `<how>` is `use`, `module`, `relative`, `include_local`, `include_system`, or
//!   a language hook (`rust_use`, `python_import`, `python_from`, `java`) that extraction takes apart in code.
//! - `@reference.<kind>`: a name used as a `call`, a `type` or an `import` (the `references.scm` files);
//!   `@reference.import_path`: a quoted import path whose last segment is the imported name (Go's packages).
//! - Captures starting with `_` only feed predicates.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use tree_sitter::{Language, Query};

use crate::error::{Error, Result};
use crate::model::{ImportKind, Lang, RefKind, SymbolKind};

impl Lang {
    /// Every language, in a stable order (the order of [`Lang`]'s variants).
    pub const ALL: [Lang; 9] = [
        Lang::Rust,
        Lang::Python,
        Lang::JavaScript,
        Lang::TypeScript,
        Lang::Tsx,
        Lang::Go,
        Lang::Java,
        Lang::C,
        Lang::Cpp,
    ];

    /// The language of a file, from its extension. `.h` is C: telling C from C++ headers would need the
    /// repository's other files, and the C grammar parses the C subset that most C++ headers share.
    pub fn from_path(path: &Path) -> Option<Lang> {
        Lang::from_extension(path.extension()?.to_str()?)
    }

    /// The language of a file extension (without the dot), case-insensitively.
    pub fn from_extension(ext: &str) -> Option<Lang> {
        // Extensions are short; comparing ignoring ASCII case avoids allocating a lowercase copy per file.
        const TABLE: &[(&str, Lang)] = &[
            ("rs", Lang::Rust),
            ("py", Lang::Python),
            ("pyi", Lang::Python),
            ("js", Lang::JavaScript),
            ("mjs", Lang::JavaScript),
            ("cjs", Lang::JavaScript),
            ("jsx", Lang::JavaScript),
            ("ts", Lang::TypeScript),
            ("mts", Lang::TypeScript),
            ("cts", Lang::TypeScript),
            ("tsx", Lang::Tsx),
            ("go", Lang::Go),
            ("java", Lang::Java),
            ("c", Lang::C),
            ("h", Lang::C),
            ("cc", Lang::Cpp),
            ("cpp", Lang::Cpp),
            ("cxx", Lang::Cpp),
            ("c++", Lang::Cpp),
            ("hpp", Lang::Cpp),
            ("hh", Lang::Cpp),
            ("hxx", Lang::Cpp),
            ("h++", Lang::Cpp),
        ];
        TABLE
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map(|&(_, lang)| lang)
    }

    /// The language's canonical lowercase name, as used in `lang:` filters and in the index.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Go => "go",
            Lang::Java => "java",
            Lang::C => "c",
            Lang::Cpp => "cpp",
        }
    }

    /// The cargo feature that compiles this language's grammar in.
    pub fn feature(self) -> &'static str {
        match self {
            Lang::Rust => "lang-rust",
            Lang::Python => "lang-python",
            Lang::JavaScript => "lang-javascript",
            Lang::TypeScript | Lang::Tsx => "lang-typescript",
            Lang::Go => "lang-go",
            Lang::Java => "lang-java",
            Lang::C => "lang-c",
            Lang::Cpp => "lang-cpp",
        }
    }

    /// The tree-sitter grammar, or an error naming the cargo feature when it was not compiled in.
    pub fn grammar(self) -> Result<Language> {
        grammar(self).ok_or(Error::LanguageDisabled {
            lang: self.name(),
            feature: self.feature(),
        })
    }

    /// The language's compiled queries, built on first use and shared by every thread afterwards.
    pub fn queries(self) -> Result<&'static LangQueries> {
        static CELLS: [OnceLock<std::result::Result<LangQueries, String>>; 9] =
            [const { OnceLock::new() }; 9];
        let built = CELLS[self as usize].get_or_init(|| LangQueries::build(self));
        built.as_ref().map_err(|message| Error::QueryCompile {
            lang: self.name(),
            message: message.clone(),
        })
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Lang {
    type Err = Error;

    /// Parses a language name as written in a `lang:` filter, case-insensitively, with common aliases.
    fn from_str(s: &str) -> Result<Lang> {
        let lang = match s.trim().to_ascii_lowercase().as_str() {
            "rust" | "rs" => Lang::Rust,
            "python" | "py" => Lang::Python,
            "javascript" | "js" => Lang::JavaScript,
            "typescript" | "ts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" | "golang" => Lang::Go,
            "java" => Lang::Java,
            "c" => Lang::C,
            "cpp" | "c++" | "cxx" => Lang::Cpp,
            _ => return Err(Error::UnknownLanguage(s.to_string())),
        };
        Ok(lang)
    }
}

/// What one capture of a language query means to extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The whole node of a definition of this kind.
    Definition(SymbolKind),
    /// A definition's name.
    Name,
    /// A C/C++ declarator; the name (and, for `Foo::bar`, the container) is found inside it in code.
    Declarator,
    /// An explicit container name, such as a Go method's receiver type.
    Scope,
    /// An import whose text (quotes stripped) is the module, of this kind.
    Import(ImportKind),
    /// An import statement that a language hook takes apart in code.
    ImportHook(ImportHook),
    /// A name used this way.
    Reference(RefKind),
    /// A quoted import path; its last `/` segment is the name the file then uses (a Go package).
    ReferencePath,
    /// A capture that only feeds a predicate.
    Ignore,
}

/// Import statements too varied for one capture; extraction has code for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportHook {
    /// The argument of a Rust `use` declaration: a tree of paths.
    RustUse,
    /// A Python `import a.b, c as d` statement.
    PythonImport,
    /// A Python `from m import x, y` statement, relative or absolute.
    PythonFrom,
    /// A Java `import [static] a.b.C[.*];` declaration.
    Java,
}

/// One language's compiled queries and the meaning of each of their captures.
pub struct LangQueries {
    /// Definitions and imports in one query, so each file is matched in one pass.
    pub query: Query,
    /// The role of each capture of `query`, indexed by capture index.
    pub roles: Vec<Role>,
    /// References (a second pass; see [`references_source`]).
    pub references: Query,
    /// The role of each capture of `references`.
    pub reference_roles: Vec<Role>,
}

impl fmt::Debug for LangQueries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LangQueries")
            .field("patterns", &self.query.pattern_count())
            .field("roles", &self.roles)
            .finish()
    }
}

impl LangQueries {
    fn build(lang: Lang) -> std::result::Result<LangQueries, String> {
        let grammar = lang.grammar().map_err(|e| e.to_string())?;
        let (query, roles) = compile(&grammar, query_source(lang), "definitions and imports")?;
        let (references, reference_roles) =
            compile(&grammar, references_source(lang), "references")?;
        Ok(LangQueries {
            query,
            roles,
            references,
            reference_roles,
        })
    }
}

/// Compiles one query and decodes its captures' roles.
fn compile(
    grammar: &Language,
    source: &str,
    what: &str,
) -> std::result::Result<(Query, Vec<Role>), String> {
    let query = Query::new(grammar, source).map_err(|e| {
        format!(
            "{what} query, line {}, column {}: {:?} error near {:?}",
            e.row + 1,
            e.column + 1,
            e.kind,
            e.message
        )
    })?;
    let roles = query
        .capture_names()
        .iter()
        .map(|name| {
            role_of(name).ok_or_else(|| format!("unknown capture @{name} in the {what} query"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((query, roles))
}

fn role_of(capture: &str) -> Option<Role> {
    if capture.starts_with('_') {
        return Some(Role::Ignore);
    }
    if let Some(kind) = capture.strip_prefix("definition.") {
        let kind = match kind {
            "function" => SymbolKind::Function,
            "method" => SymbolKind::Method,
            "class" => SymbolKind::Class,
            "struct" => SymbolKind::Struct,
            "enum" => SymbolKind::Enum,
            "interface" => SymbolKind::Interface,
            "type" => SymbolKind::TypeAlias,
            "constant" => SymbolKind::Constant,
            "variable" => SymbolKind::Variable,
            "macro" => SymbolKind::Macro,
            "module" => SymbolKind::Module,
            "field" => SymbolKind::Field,
            "variant" => SymbolKind::EnumVariant,
            "union" => SymbolKind::Union,
            "namespace" => SymbolKind::Namespace,
            "impl" => SymbolKind::Impl,
            _ => return None,
        };
        return Some(Role::Definition(kind));
    }
    if let Some(how) = capture.strip_prefix("import.") {
        let role = match how {
            "use" => Role::Import(ImportKind::Use),
            "module" => Role::Import(ImportKind::Module),
            "relative" => Role::Import(ImportKind::Relative),
            "include_local" => Role::Import(ImportKind::IncludeLocal),
            "include_system" => Role::Import(ImportKind::IncludeSystem),
            "rust_use" => Role::ImportHook(ImportHook::RustUse),
            "python_import" => Role::ImportHook(ImportHook::PythonImport),
            "python_from" => Role::ImportHook(ImportHook::PythonFrom),
            "java" => Role::ImportHook(ImportHook::Java),
            _ => return None,
        };
        return Some(role);
    }
    if let Some(how) = capture.strip_prefix("reference.") {
        let role = match how {
            "call" => Role::Reference(RefKind::Call),
            "type" => Role::Reference(RefKind::Type),
            "import" => Role::Reference(RefKind::Import),
            "import_path" => Role::ReferencePath,
            _ => return None,
        };
        return Some(role);
    }
    match capture {
        "name" => Some(Role::Name),
        "declarator" => Some(Role::Declarator),
        "scope" => Some(Role::Scope),
        _ => None,
    }
}

/// The query text of a language: its definitions and its imports, joined. TypeScript and TSX share JavaScript's
/// definitions and imports (their grammars extend JavaScript's) plus their own definitions.
pub fn query_source(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => concat!(
            include_str!("../queries/rust/definitions.scm"),
            include_str!("../queries/rust/imports.scm")
        ),
        Lang::Python => concat!(
            include_str!("../queries/python/definitions.scm"),
            include_str!("../queries/python/imports.scm")
        ),
        Lang::JavaScript => concat!(
            include_str!("../queries/javascript/common.scm"),
            include_str!("../queries/javascript/javascript.scm"),
            include_str!("../queries/javascript/imports.scm")
        ),
        Lang::TypeScript | Lang::Tsx => concat!(
            include_str!("../queries/javascript/common.scm"),
            include_str!("../queries/typescript/typescript.scm"),
            include_str!("../queries/javascript/imports.scm")
        ),
        Lang::Go => concat!(
            include_str!("../queries/go/definitions.scm"),
            include_str!("../queries/go/imports.scm")
        ),
        Lang::Java => concat!(
            include_str!("../queries/java/definitions.scm"),
            include_str!("../queries/java/imports.scm")
        ),
        Lang::C => concat!(
            include_str!("../queries/c/definitions.scm"),
            include_str!("../queries/c/imports.scm")
        ),
        Lang::Cpp => concat!(
            include_str!("../queries/cpp/definitions.scm"),
            include_str!("../queries/c/imports.scm")
        ),
    }
}

/// The references query of a language (`references.scm`). It runs as a second pass over the same tree: merged
/// into the definitions' query it made extraction about 60% slower (tree-sitter's cursor keeps more states alive
/// across patterns), while on its own it costs about a sixth of that.
pub fn references_source(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => include_str!("../queries/rust/references.scm"),
        Lang::Python => include_str!("../queries/python/references.scm"),
        Lang::JavaScript => concat!(
            include_str!("../queries/javascript/references.scm"),
            include_str!("../queries/javascript/references_js.scm")
        ),
        Lang::TypeScript => concat!(
            include_str!("../queries/javascript/references.scm"),
            include_str!("../queries/typescript/references.scm")
        ),
        Lang::Tsx => concat!(
            include_str!("../queries/javascript/references.scm"),
            include_str!("../queries/typescript/references.scm"),
            include_str!("../queries/typescript/references_tsx.scm")
        ),
        Lang::Go => include_str!("../queries/go/references.scm"),
        Lang::Java => include_str!("../queries/java/references.scm"),
        Lang::C => include_str!("../queries/c/references.scm"),
        Lang::Cpp => include_str!("../queries/cpp/references.scm"),
    }
}

/// The grammar of a language, or `None` when its cargo feature is off.
fn grammar(lang: Lang) -> Option<Language> {
    match lang {
        #[cfg(feature = "lang-rust")]
        Lang::Rust => Some(tree_sitter_rust::LANGUAGE.into()),
        #[cfg(feature = "lang-python")]
        Lang::Python => Some(tree_sitter_python::LANGUAGE.into()),
        #[cfg(feature = "lang-javascript")]
        Lang::JavaScript => Some(tree_sitter_javascript::LANGUAGE.into()),
        #[cfg(feature = "lang-typescript")]
        Lang::TypeScript => Some(tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()),
        #[cfg(feature = "lang-typescript")]
        Lang::Tsx => Some(tree_sitter_typescript::LANGUAGE_TSX.into()),
        #[cfg(feature = "lang-go")]
        Lang::Go => Some(tree_sitter_go::LANGUAGE.into()),
        #[cfg(feature = "lang-java")]
        Lang::Java => Some(tree_sitter_java::LANGUAGE.into()),
        #[cfg(feature = "lang-c")]
        Lang::C => Some(tree_sitter_c::LANGUAGE.into()),
        #[cfg(feature = "lang-cpp")]
        Lang::Cpp => Some(tree_sitter_cpp::LANGUAGE.into()),
        // Reached only when a language's feature is off.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_path(path: &str, expected: Option<Lang>) {
        assert_eq!(Lang::from_path(Path::new(path)), expected, "path {path}");
    }

    #[test]
    fn detects_languages_from_extensions() {
        check_path("src/main.rs", Some(Lang::Rust));
        check_path("a/b.py", Some(Lang::Python));
        check_path("stubs/os.pyi", Some(Lang::Python));
        check_path("x.js", Some(Lang::JavaScript));
        check_path("x.mjs", Some(Lang::JavaScript));
        check_path("x.cjs", Some(Lang::JavaScript));
        check_path("x.jsx", Some(Lang::JavaScript));
        check_path("x.ts", Some(Lang::TypeScript));
        check_path("x.d.ts", Some(Lang::TypeScript));
        check_path("x.mts", Some(Lang::TypeScript));
        check_path("x.cts", Some(Lang::TypeScript));
        check_path("x.tsx", Some(Lang::Tsx));
        check_path("main.go", Some(Lang::Go));
        check_path("A.java", Some(Lang::Java));
        check_path("x.c", Some(Lang::C));
        check_path("x.h", Some(Lang::C));
        check_path("x.hpp", Some(Lang::Cpp));
        check_path("x.hh", Some(Lang::Cpp));
        check_path("x.hxx", Some(Lang::Cpp));
        check_path("x.cc", Some(Lang::Cpp));
        check_path("x.cpp", Some(Lang::Cpp));
        check_path("x.cxx", Some(Lang::Cpp));
        check_path("x.h++", Some(Lang::Cpp));
        check_path("X.CPP", Some(Lang::Cpp));
        check_path("README.md", None);
        check_path("Makefile", None);
        check_path(".rs", None);
    }

    fn check_name(text: &str, expected: Option<Lang>) {
        assert_eq!(text.parse::<Lang>().ok(), expected, "name {text:?}");
    }

    #[test]
    fn parses_language_names_and_aliases() {
        check_name("rust", Some(Lang::Rust));
        check_name("Python", Some(Lang::Python));
        check_name("py", Some(Lang::Python));
        check_name("javascript", Some(Lang::JavaScript));
        check_name("js", Some(Lang::JavaScript));
        check_name("typescript", Some(Lang::TypeScript));
        check_name("ts", Some(Lang::TypeScript));
        check_name("tsx", Some(Lang::Tsx));
        check_name("go", Some(Lang::Go));
        check_name("java", Some(Lang::Java));
        check_name("c", Some(Lang::C));
        check_name("cpp", Some(Lang::Cpp));
        check_name("C++", Some(Lang::Cpp));
        check_name("cobol", None);
        check_name("", None);
    }

    #[test]
    fn names_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(lang.name().parse::<Lang>().ok(), Some(lang));
            assert_eq!(lang.to_string(), lang.name());
        }
    }

    #[test]
    fn unknown_language_error_lists_the_known_ones() {
        let err = "cobol"
            .parse::<Lang>()
            .expect_err("cobol is not a language we parse");
        let text = err.to_string();
        assert!(
            text.contains("\"cobol\"") && text.contains("rust"),
            "{text}"
        );
    }

    /// Helix's query check: every query of every language compiles against its grammar, and every capture
    /// has a meaning. A failure names the language and the error.
    #[test]
    fn every_query_compiles() {
        let mut failures = Vec::new();
        for lang in Lang::ALL {
            if let Err(e) = lang.queries() {
                failures.push(format!("{lang}: {e}"));
            }
        }
        assert!(
            failures.is_empty(),
            "queries that do not compile:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn queries_are_built_once() {
        let a = Lang::Rust.queries().expect("the Rust query compiles") as *const LangQueries;
        let b = Lang::Rust.queries().expect("the Rust query compiles") as *const LangQueries;
        assert_eq!(a, b);
    }
}
