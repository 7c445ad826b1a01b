//! The scanner's data model: what extraction produces and what queries answer.
//!
//! These types are the contract between extraction (`lang`, `extract`, `walk`, `deps`) and the index
//! (`index`, `query`); both sides build on them, so change them with care.

use serde::{Deserialize, Serialize};

/// A language the scanner understands. Each has a cargo feature (`lang-rust`, ...), all on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    /// TypeScript with JSX (`.tsx`); a separate grammar from plain TypeScript.
    Tsx,
    Go,
    Java,
    C,
    Cpp,
}

/// What a definition is. The names follow Universal Ctags' kinds where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    /// A Rust trait, a Java/TypeScript/Go interface.
    Interface,
    TypeAlias,
    Constant,
    Variable,
    Macro,
    Module,
    Field,
    EnumVariant,
    Union,
    Namespace,
    Impl,
}

/// One definition found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub kind: SymbolKind,
    /// 1-based first line of the definition's whole node.
    pub line: u32,
    /// 1-based last line of the definition's whole node.
    pub end_line: u32,
    /// The enclosing impl, class, trait, module or namespace, e.g. `Parser` for `Parser::parse`.
    pub container: Option<String>,
    /// The definition's first source line, trimmed.
    pub signature: String,
    /// The doc comment directly above the definition, when the language's query captures one.
    pub doc: Option<String>,
    /// Defined inside the body of an item-position macro invocation (Rust's `cfg_rt! { pub fn ... }`), which
    /// is read as items in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_macro: bool,
}

/// One import, include or module declaration found in a file, as written in the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The imported module exactly as the source names it: `crate::store::log`, `os.path`, `./util`,
    /// `github.com/x/y`, `java.util.List`, `"foo.h"` written as `foo.h`.
    pub module: String,
    /// 1-based line of the import statement.
    pub line: u32,
    /// How the source imports it; resolution rules differ per kind.
    pub kind: ImportKind,
}

/// How an import is written; dependency resolution uses it to pick a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// `use a::b` (Rust), `import a.b` (Python, Java), `import x from "a"` (JS/TS), `import "a"` (Go).
    Use,
    /// Rust `mod foo;` — a child module file.
    Module,
    /// Python `from . import x` / `from .a import x`: the module is relative to the importing file.
    Relative,
    /// C/C++ `#include "foo.h"`: looked up next to the file, then in the repository.
    IncludeLocal,
    /// C/C++ `#include <foo.h>`: a system header, resolved only if the repository has it.
    IncludeSystem,
}

/// How a reference uses a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    /// A call of a function, method or macro, or a constructor call (`new Foo()`, `Foo { .. }` in Rust).
    Call,
    /// A type named in a signature, a field, a cast, a base class or an `impl`.
    Type,
    /// A name brought in by an import (`use a::Foo`, `from m import foo`, `import { foo } from`, `require`).
    Import,
}

impl RefKind {
    /// Every kind, in a stable order.
    pub const ALL: [RefKind; 3] = [RefKind::Call, RefKind::Type, RefKind::Import];

    /// The kind's lowercase name, as commands take it (`--kind call`).
    pub fn name(self) -> &'static str {
        match self {
            RefKind::Call => "call",
            RefKind::Type => "type",
            RefKind::Import => "import",
        }
    }
}

impl std::fmt::Display for RefKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RefKind {
    type Err = String;

    fn from_str(s: &str) -> Result<RefKind, String> {
        RefKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown reference kind {s:?}; use call, type or import"))
    }
}

/// One use of a name found in a file: a syntactic fact (the name as written), not a resolved binding, so
/// `x.parse()` is a reference to every `parse`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub kind: RefKind,
    /// 1-based line of the name.
    pub line: u32,
}

/// Everything extraction learns from one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    pub definitions: Vec<Definition>,
    pub imports: Vec<Import>,
    /// Uses of names, sorted by line, each (name, kind, line) once.
    pub references: Vec<Reference>,
}
