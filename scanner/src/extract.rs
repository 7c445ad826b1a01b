//! Extraction: the definitions and imports of one source file, from its tree-sitter parse and its language query.
//!
//! [`extract`] is the one-call entry point; it keeps one [`Extractor`] (a parser and a query cursor) per thread,
//! so callers on a thread pool pay for parser set-up once per thread, not once per file.
//!
//! What each definition gets, and where it comes from:
//! - `name`, `kind`: the query's `@name` and `@definition.<kind>` captures. A function whose nearest enclosing
//!   definition is a class, struct, trait, interface, enum, union or impl is a method. A named JavaScript
//!   function or class expression that is the value of a definition of the same name
//!   (`exports.send = function send() {}`) is that one definition.
//! - `line`, `end_line`: the definition node's lines, except that `line` skips annotations, decorators and
//!   attributes that some grammars put inside the node (Java's `@Override`), so that `line` and `signature`
//!   point at the declaration itself, as Universal Ctags does.
//! - `container`: an explicit scope (Go receiver, C++ `Foo::bar`), else the innermost enclosing class, struct,
//!   trait, interface, enum, union, impl, module or namespace, found by nesting of byte ranges (no parent walks,
//!   which tree-sitter answers by descending from the root each time).
//! - `doc`: the comment lines right above (Rust `///`, `/** */` blocks, Go `//` runs), read from the text, or a
//!   Python docstring, read from the body.

use std::cell::RefCell;

use tree_sitter::{Node, Parser, QueryCursor, StreamingIterator};

use crate::error::{Error, Result};
use crate::lang::{ImportHook, Role};
use crate::model::{
    Definition, FileFacts, Import, ImportKind, Lang, RefKind, Reference, SymbolKind,
};

/// Longest signature kept, in characters: enough for a long function head, short enough for a result line.
const MAX_SIGNATURE_CHARS: usize = 200;
/// Longest doc comment kept, in bytes: the summary a search result shows, not the whole manual.
const MAX_DOC_BYTES: usize = 1024;

/// Reusable parsing state for one thread: a parser (re-targeted when the language changes) and a query cursor.
pub struct Extractor {
    parser: Parser,
    cursor: QueryCursor,
    lang: Option<Lang>,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor::new()
    }
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("lang", &self.lang)
            .finish()
    }
}

thread_local! {
    static EXTRACTOR: RefCell<Extractor> = RefCell::new(Extractor::new());
}

/// Extracts the definitions and imports of `source`, written in `lang`, with this thread's [`Extractor`].
///
/// Never panics on any input: syntax errors become ERROR nodes, and whatever parses around them is still found.
pub fn extract(lang: Lang, source: &str) -> Result<FileFacts> {
    EXTRACTOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut extractor) => extractor.extract(lang, source),
        // Only reachable if a caller re-enters `extract` from inside itself; a fresh extractor keeps that correct.
        Err(_) => Extractor::new().extract(lang, source),
    })
}

/// A definition as the query found it, before containers, lines and text are worked out.
struct RawDef<'tree> {
    kind: SymbolKind,
    node: Node<'tree>,
    name: String,
    /// Where the name starts: two patterns that match the same name are the same definition.
    name_start: usize,
    scope: Option<String>,
    pattern: usize,
}

impl Extractor {
    /// A new extractor; its parser is given a language on first use.
    pub fn new() -> Extractor {
        Extractor {
            parser: Parser::new(),
            cursor: QueryCursor::new(),
            lang: None,
        }
    }

    /// Extracts the definitions and imports of `source`, written in `lang`.
    pub fn extract(&mut self, lang: Lang, source: &str) -> Result<FileFacts> {
        let queries = lang.queries()?;
        if self.lang != Some(lang) {
            self.parser
                .set_language(&lang.grammar()?)
                .map_err(|e| Error::QueryCompile {
                    lang: lang.name(),
                    message: e.to_string(),
                })?;
            self.lang = Some(lang);
        }
        // C and C++ are parsed with their implementation macros blanked out (see `blank_macros`); offsets are
        // unchanged, so lines and signatures still come from the source as written.
        let blanked = match lang {
            Lang::C | Lang::Cpp => blank_macros(source),
            _ => None,
        };
        // Rust's item-position macro invocations (`cfg_rt! { pub fn spawn_blocking ... }`) hold much public API:
        // their bodies are read as items in place, nested ones too (see `unwrap_item_macros`).
        let mut patched = blanked;
        let mut macro_bodies: Vec<std::ops::Range<usize>> = Vec::new();
        if lang == Lang::Rust {
            for _ in 0..MAX_MACRO_DEPTH {
                let current: &str = patched.as_deref().unwrap_or(source);
                let tree = self
                    .parser
                    .parse(current, None)
                    .ok_or(Error::Parse { lang: lang.name() })?;
                match unwrap_item_macros(tree.root_node(), current) {
                    Some((text, bodies)) => {
                        macro_bodies.extend(bodies);
                        patched = Some(text);
                    }
                    None => break,
                }
            }
        }
        let code: &str = patched.as_deref().unwrap_or(source);
        let tree = self
            .parser
            .parse(code, None)
            .ok_or(Error::Parse { lang: lang.name() })?;

        let mut facts = FileFacts::default();
        let mut raws: Vec<RawDef<'_>> = Vec::new();
        // References as (where the name starts, kind, node); those that are a definition's own name are dropped
        // once every definition is known.
        let mut refs: Vec<(usize, RefKind, Node<'_>)> = Vec::new();
        let mut matches = self
            .cursor
            .matches(&queries.query, tree.root_node(), code.as_bytes());
        while let Some(m) = matches.next() {
            let mut def = None;
            let mut name = None;
            let mut declarator = None;
            let mut scope = None;
            for capture in m.captures {
                match queries.roles[capture.index as usize] {
                    Role::Definition(kind) => def = Some((kind, capture.node)),
                    Role::Name => name = Some(capture.node),
                    Role::Declarator => declarator = Some(capture.node),
                    Role::Scope => scope = Some(capture.node),
                    Role::Import(kind) => push_import(&mut facts.imports, kind, capture.node, code),
                    Role::ImportHook(hook) => {
                        import_hook(&mut facts.imports, hook, capture.node, code)
                    }
                    // References come from their own query, below.
                    Role::Reference(_) | Role::ReferencePath | Role::Ignore => {}
                }
            }
            let Some((mut kind, node)) = def else {
                continue;
            };
            let scope = scope.map(|n| text(code, n).to_string());
            let raw = if let Some(decl) = declarator {
                let Some(found) = declarator_name(decl) else {
                    continue;
                };
                // A declarator without a function inside is not a function definition (a macro call that
                // tree-sitter read as one); a field declarator with a function inside is a method prototype,
                // which ctags counts apart and so do we.
                let keep = match kind {
                    SymbolKind::Function | SymbolKind::Method => found.through_function,
                    SymbolKind::Field => !found.through_function,
                    _ => true,
                };
                if !keep {
                    continue;
                }
                let (name, qualifier) = split_qualified(text(code, found.node));
                if qualifier.is_some() && kind == SymbolKind::Function {
                    kind = SymbolKind::Method;
                }
                RawDef {
                    kind,
                    node,
                    name,
                    name_start: found.node.start_byte(),
                    scope: qualifier.or(scope),
                    pattern: m.pattern_index,
                }
            } else if let Some(name_node) = name {
                let (name, qualifier) = split_qualified(text(code, name_node));
                RawDef {
                    kind,
                    node,
                    name,
                    name_start: name_node.start_byte(),
                    scope: qualifier.or(scope),
                    pattern: m.pattern_index,
                }
            } else {
                continue;
            };
            if raw.name.is_empty() {
                continue;
            }
            raws.push(raw);
        }

        drop(matches);
        let mut ref_matches =
            self.cursor
                .matches(&queries.references, tree.root_node(), code.as_bytes());
        while let Some(m) = ref_matches.next() {
            for capture in m.captures {
                match queries.reference_roles[capture.index as usize] {
                    Role::Reference(kind) => {
                        refs.push((capture.node.start_byte(), kind, capture.node))
                    }
                    Role::ReferencePath => {
                        refs.push((capture.node.start_byte(), RefKind::Import, capture.node))
                    }
                    _ => {}
                }
            }
        }
        drop(ref_matches);
        let own_names: std::collections::HashSet<usize> =
            raws.iter().map(|r| r.name_start).collect();
        facts.references = finish_references(refs, &own_names, code);
        facts.definitions = finish_definitions(lang, raws, source, &macro_bodies);
        facts.imports.sort_by_key(|i| i.line);
        Ok(facts)
    }
}

/// The longest name a reference keeps, in bytes: longer "names" are generated code, not something people look up.
const MAX_REFERENCE_NAME_BYTES: usize = 128;

/// Turns reference captures into [`Reference`]s: the name is the node's text (for an import path, its last
/// segment), a definition's own name is not a use of it, and each (name, kind, line) is kept once, sorted.
fn finish_references(
    refs: Vec<(usize, RefKind, Node<'_>)>,
    own_names: &std::collections::HashSet<usize>,
    code: &str,
) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::with_capacity(refs.len());
    for (start, kind, node) in refs {
        // An import's local name is often a definition too (`const fs = require("fs")`) and still an import.
        if kind != RefKind::Import && own_names.contains(&start) {
            continue;
        }
        let mut name = text(code, node);
        if node.kind() == "interpreted_string_literal" {
            name = name.trim_matches('"');
            name = name.rsplit('/').next().unwrap_or(name);
            // `gopkg.in/yaml.v2` is package `yaml`; a bare major version (`github.com/x/y/v2`) is not a name.
            if let Some((base, version)) = name.split_once(".v") {
                if version.bytes().all(|b| b.is_ascii_digit()) {
                    name = base;
                }
            }
        }
        let version_only = name.len() > 1
            && name.starts_with('v')
            && name[1..].bytes().all(|b| b.is_ascii_digit());
        if name.is_empty()
            || name.len() > MAX_REFERENCE_NAME_BYTES
            || version_only
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            continue;
        }
        out.push(Reference {
            name: name.to_string(),
            kind,
            line: node.start_position().row as u32 + 1,
        });
    }
    out.sort_by(|a, b| (a.line, a.kind, &a.name).cmp(&(b.line, b.kind, &b.name)));
    out.dedup();
    out
}

/// Macro bodies inside macro bodies read as items, at most this deep.
const MAX_MACRO_DEPTH: usize = 4;

/// Finds Rust's item-position macro invocations with a brace body (in a file, module, impl or trait body), other
/// than `macro_rules!`, and blanks their `name! {` and closing `}` with spaces, so that a new parse reads the body's
/// items in place, in the enclosing module or impl, with their real offsets and lines (as rust-analyzer would
/// see them after expansion, for the `cfg_*!` kind of macro that passes its items through). Bodies that are not
/// items parse as errors and yield nothing. Returns the text and the bodies' byte ranges, or `None` when there is
/// no such invocation.
fn unwrap_item_macros(root: Node<'_>, code: &str) -> Option<(String, Vec<std::ops::Range<usize>>)> {
    let mut blank: Vec<std::ops::Range<usize>> = Vec::new();
    let mut bodies = Vec::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.kind() == "macro_invocation" {
            let at_item = node
                .parent()
                .is_some_and(|p| matches!(p.kind(), "source_file" | "declaration_list"));
            let name = node
                .child_by_field_name("macro")
                .map(|n| text(code, n))
                .unwrap_or("");
            let mut walk = node.walk();
            let body = node
                .named_children(&mut walk)
                .find(|c| c.kind() == "token_tree");
            if let (true, Some(body)) = (at_item, body) {
                let inner = text(code, body);
                if name != "macro_rules" && inner.starts_with('{') && inner.ends_with('}') {
                    blank.push(node.start_byte()..body.start_byte() + 1);
                    blank.push(body.end_byte() - 1..body.end_byte());
                    bodies.push(body.start_byte()..body.end_byte());
                }
            }
            continue;
        }
        // Items live in files, modules, impls and traits; nothing inside a function body is an item worth it.
        if matches!(node.kind(), "function_item" | "macro_definition") {
            continue;
        }
        let mut walk = node.walk();
        stack.extend(node.named_children(&mut walk));
    }
    if blank.is_empty() {
        return None;
    }
    let mut bytes = code.as_bytes().to_vec();
    for range in blank {
        for b in &mut bytes[range] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Whole bytes become spaces, so no character is cut: the text stays UTF-8.
    String::from_utf8(bytes).ok().map(|text| (text, bodies))
}

/// Blanks, with spaces, the C/C++ macros that tree-sitter would misread, since it parses without a preprocessor:
/// - a line that is only a macro invocation at column 0, such as `__BEGIN_DECLS` or
///   `DECLARE_ASN1_FUNCTIONS(ASRange)` (no semicolon follows, so the grammar glues it to the next declaration);
/// - reserved-looking upper-case identifiers (`_GLIBCXX_NOEXCEPT`, `__THROW`, `_GLIBCXX_VISIBILITY(default)`),
///   with their argument list if one follows, wherever they sit in a line: implementations use them for
///   attributes and specifiers that make `int f() const _GLIBCXX_NOEXCEPT {` unparsable.
///
/// Preprocessor lines are left alone (their macro names are definitions), as are names ending in `__`
/// (`__FILE__`, `__cplusplus`), which are values. Returns `None` when nothing was blanked.
fn blank_macros(source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let blank = |from: usize, to: usize, out: &mut Option<Vec<u8>>| {
        let buf = out.get_or_insert_with(|| bytes.to_vec());
        for b in &mut buf[from..to] {
            // Keep line breaks so that rows stay put.
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let mut line_start = 0;
    let mut in_directive = false;
    while line_start < bytes.len() {
        let line_end =
            memchr::memchr(b'\n', &bytes[line_start..]).map_or(bytes.len(), |i| line_start + i);
        let line = &bytes[line_start..line_end];
        let continued = line.ends_with(b"\\") || line.ends_with(b"\\\r");
        let trimmed_start = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(line.len());
        if in_directive || line.get(trimmed_start) == Some(&b'#') {
            in_directive = continued;
            line_start = line_end + 1;
            continue;
        }
        if let Some(end) = whole_line_macro(line) {
            blank(line_start, line_start + end, &mut out);
        } else {
            let mut i = 0;
            while i < line.len() {
                let starts_word = i == 0 || !is_ident_byte(line[i - 1]);
                if starts_word && line[i] == b'_' {
                    let word_end = i + line[i..].iter().take_while(|b| is_ident_byte(**b)).count();
                    let word = &line[i..word_end];
                    if is_reserved_macro(word) {
                        let end = skip_arguments(line, word_end);
                        blank(line_start + i, line_start + end, &mut out);
                        i = end;
                        continue;
                    }
                    i = word_end;
                    continue;
                }
                i += 1;
            }
        }
        line_start = line_end + 1;
    }
    // Only ASCII bytes were replaced by spaces, so the text is still UTF-8.
    out.and_then(|buf| String::from_utf8(buf).ok())
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `_GLIBCXX_NOEXCEPT`, `__THROW`: an underscore, then upper case, digits and underscores, not ending in `__`.
fn is_reserved_macro(word: &[u8]) -> bool {
    let rest = word.strip_prefix(b"__").or_else(|| word.strip_prefix(b"_"));
    rest.is_some_and(|r| {
        r.first().is_some_and(u8::is_ascii_uppercase)
            && r.iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            && !word.ends_with(b"__")
            && word.len() > 3
    })
}

/// The end of a balanced `( ... )` right after `at` (spaces allowed before it), or `at` if none follows on
/// this line.
fn skip_arguments(line: &[u8], at: usize) -> usize {
    let open = at
        + line[at..]
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
    if line.get(open) != Some(&b'(') {
        return at;
    }
    let mut depth = 0usize;
    for (i, &b) in line.iter().enumerate().skip(open) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    at
}

/// If the line is only an upper-case macro invocation starting at column 0 (`NAME` or `NAME(args)`, then
/// nothing but spaces or a comment), the length to blank.
fn whole_line_macro(line: &[u8]) -> Option<usize> {
    let word_len = line.iter().take_while(|b| is_ident_byte(**b)).count();
    let word = &line[..word_len];
    if word_len < 2
        || !word.iter().any(u8::is_ascii_uppercase)
        || word.iter().any(u8::is_ascii_lowercase)
        || word[0].is_ascii_digit()
    {
        return None;
    }
    let end = skip_arguments(line, word_len);
    let rest = &line[end..];
    let rest_trimmed = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&rest[rest.len()..], |p| &rest[p..]);
    (rest_trimmed.is_empty() || rest_trimmed.starts_with(b"//") || rest_trimmed.starts_with(b"/*"))
        .then_some(end)
}

/// Deduplicates, nests and dresses the raw definitions: containers, method kinds, lines, signature and doc.
fn finish_definitions(
    lang: Lang,
    mut raws: Vec<RawDef<'_>>,
    source: &str,
    macro_bodies: &[std::ops::Range<usize>],
) -> Vec<Definition> {
    // Two patterns matching the same name are the same definition; the earlier pattern is the more specific.
    raws.sort_by_key(|r| (r.name_start, r.pattern));
    raws.dedup_by_key(|r| r.name_start);
    // Outer definitions before inner ones: by start, and the longer first when two start together.
    raws.sort_by_key(|r| (r.node.start_byte(), std::cmp::Reverse(r.node.end_byte())));

    let mut out = Vec::with_capacity(raws.len());
    // Indices into `raws` of the definitions enclosing the current one, outermost first.
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..raws.len() {
        let (start, end) = (raws[i].node.start_byte(), raws[i].node.end_byte());
        while let Some(&top) = stack.last() {
            if raws[top].node.start_byte() <= start && end <= raws[top].node.end_byte() {
                break;
            }
            stack.pop();
        }
        let raw = &raws[i];
        // A named expression that is the value of its enclosing definition (see `is_value_of`) is that
        // definition under the same name, and under another name an alias that does not contain it.
        let value_of_parent = stack.last().is_some_and(|&p| is_value_of(raw, &raws[p]));
        if value_of_parent && stack.last().is_some_and(|&p| raws[p].name == raw.name) {
            continue;
        }
        let enclosing = &stack[..stack.len() - usize::from(value_of_parent)];
        let mut kind = raw.kind;
        let parent_kind = enclosing.last().map(|&p| raws[p].kind);
        let container = match &raw.scope {
            Some(scope) => {
                if kind == SymbolKind::Function {
                    kind = SymbolKind::Method;
                }
                Some(scope.clone())
            }
            None => {
                if kind == SymbolKind::Function && parent_kind.is_some_and(makes_methods) {
                    kind = SymbolKind::Method;
                }
                enclosing
                    .iter()
                    .rev()
                    .find(|&&p| is_container(raws[p].kind))
                    .map(|&p| raws[p].name.clone())
            }
        };

        let (decl_start, decl_row) = declaration_start(raw.node);
        let end = raw.node.end_position();
        // A node that ends with its line break ends at column 0 of the next line; that line is not its own.
        let end_row = if end.column == 0 && end.row > decl_row {
            end.row - 1
        } else {
            end.row
        };
        let doc = if lang == Lang::Python {
            python_docstring(raw.node, source)
        } else {
            doc_above(lang, source, decl_start)
        };
        out.push(Definition {
            name: raw.name.clone(),
            kind,
            line: to_line(decl_row),
            end_line: to_line(end_row.max(decl_row)),
            container,
            signature: signature(source, decl_start),
            doc,
            in_macro: macro_bodies
                .iter()
                .any(|b| b.contains(&raw.node.start_byte())),
        });
        stack.push(i);
    }
    out
}

/// Whether `raw` is a named JavaScript/TypeScript function or class expression that is the value of `parent`,
/// the definition enclosing it, on the same line: `exports.send = function send() {}`,
/// `var noop = function noop() {}`, `module.exports = class Pluralizer {}`. Under the same name that is one
/// definition, the outer one (whose line and kind ctags reports too); under another name both names are
/// definitions, as they are for ctags, but the alias is not the expression's container.
fn is_value_of(raw: &RawDef<'_>, parent: &RawDef<'_>) -> bool {
    matches!(
        raw.node.kind(),
        "function_expression" | "generator_function" | "class"
    ) && parent.node.start_position().row == raw.node.start_position().row
}

/// Kinds whose functions are methods.
fn makes_methods(kind: SymbolKind) -> bool {
    matches!(
        kind,
        SymbolKind::Class
            | SymbolKind::Struct
            | SymbolKind::Interface
            | SymbolKind::Enum
            | SymbolKind::Union
            | SymbolKind::Impl
    )
}

/// Kinds that name a container for what they enclose.
fn is_container(kind: SymbolKind) -> bool {
    makes_methods(kind) || matches!(kind, SymbolKind::Module | SymbolKind::Namespace)
}

fn to_line(row: usize) -> u32 {
    u32::try_from(row.saturating_add(1)).unwrap_or(u32::MAX)
}

/// The node's text; empty if tree-sitter's range does not fall on character boundaries (it always should).
fn text<'s>(source: &'s str, node: Node<'_>) -> &'s str {
    source.get(node.byte_range()).unwrap_or("")
}

/// Where the declaration proper starts: after annotations, decorators and attributes that the grammar puts
/// inside the definition node. Returns the byte offset and the row.
fn declaration_start(node: Node<'_>) -> (usize, usize) {
    // `child(i)` walks from the first child; definitions have few leading children, so this stays cheap
    // and, unlike a tree cursor, allocates nothing.
    for i in 0..node.child_count() {
        let Some(child) = node.child(i) else { break };
        if is_decoration(child.kind()) {
            continue;
        }
        if child.kind() == "modifiers" {
            // Java keeps annotations among the modifiers: start at the first real modifier, if any.
            for j in 0..child.child_count() {
                let Some(modifier) = child.child(j) else {
                    break;
                };
                if !is_decoration(modifier.kind()) {
                    return (modifier.start_byte(), modifier.start_position().row);
                }
            }
            continue;
        }
        return (child.start_byte(), child.start_position().row);
    }
    (node.start_byte(), node.start_position().row)
}

fn is_decoration(kind: &str) -> bool {
    matches!(
        kind,
        "annotation"
            | "marker_annotation"
            | "decorator"
            | "attribute_item"
            | "attribute_declaration"
            | "comment"
            | "line_comment"
            | "block_comment"
    )
}

/// The declaration's first line from `start`, trimmed and capped at [`MAX_SIGNATURE_CHARS`] characters.
fn signature(source: &str, start: usize) -> String {
    let rest = source.get(start..).unwrap_or("");
    let line = match memchr::memchr(b'\n', rest.as_bytes()) {
        Some(end) => &rest[..end],
        None => rest,
    };
    let line = line.trim();
    match line.char_indices().nth(MAX_SIGNATURE_CHARS) {
        Some((cut, _)) => line[..cut].to_string(),
        None => line.to_string(),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cap_bytes(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The lines of `source` above the line holding byte `start`, nearest first.
fn lines_above(source: &str, start: usize) -> impl Iterator<Item = &str> {
    let head = source.get(..start).unwrap_or("");
    let line_start = memchr::memrchr(b'\n', head.as_bytes()).map_or(0, |i| i + 1);
    let above = if line_start == 0 {
        None
    } else {
        Some(&head[..line_start - 1])
    };
    above.into_iter().flat_map(|text| text.rsplit('\n'))
}

/// The doc comment directly above a declaration, read from the source text. Lines of attributes, annotations,
/// decorators and `template <...>` between the comment and the declaration are skipped; a blank line ends it.
fn doc_above(lang: Lang, source: &str, start: usize) -> Option<String> {
    let mut collected: Vec<&str> = Vec::new();
    let mut in_block = false;
    for raw in lines_above(source, start) {
        let line = raw.trim();
        if in_block {
            collected.push(line);
            if line.starts_with("/**") {
                break;
            }
            if line.starts_with("/*") {
                // A plain block comment, not a doc comment.
                return None;
            }
            continue;
        }
        if line.is_empty() {
            break;
        }
        if collected.is_empty() && is_decoration_line(lang, line) {
            continue;
        }
        let line_doc = match lang {
            Lang::Rust => line.starts_with("///") && !line.starts_with("////"),
            Lang::Go => line.starts_with("//"),
            Lang::C | Lang::Cpp => line.starts_with("///"),
            _ => false,
        };
        if line_doc {
            collected.push(line);
            continue;
        }
        if collected.is_empty() && line.ends_with("*/") && lang != Lang::Go && lang != Lang::Python
        {
            collected.push(line);
            if line.starts_with("/**") {
                break;
            }
            if line.starts_with("/*") {
                return None;
            }
            in_block = true;
            continue;
        }
        break;
    }
    if collected.is_empty() || (in_block && !collected.last().is_some_and(|l| l.starts_with("/**")))
    {
        return None;
    }
    collected.reverse();
    let mut doc = String::new();
    for line in collected {
        let cleaned = clean_comment_line(line);
        if !doc.is_empty() {
            doc.push('\n');
        }
        doc.push_str(cleaned);
    }
    let doc = doc.trim().to_string();
    (!doc.is_empty()).then(|| cap_bytes(doc, MAX_DOC_BYTES))
}

fn is_decoration_line(lang: Lang, line: &str) -> bool {
    match lang {
        Lang::Rust => line.starts_with("#["),
        Lang::Java | Lang::JavaScript | Lang::TypeScript | Lang::Tsx => line.starts_with('@'),
        Lang::Cpp => line.starts_with("template") || line.starts_with("[["),
        _ => false,
    }
}

/// One comment line without its comment markers.
fn clean_comment_line(line: &str) -> &str {
    let mut s = line;
    for prefix in ["///", "/**", "//", "/*"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest;
            break;
        }
    }
    if let Some(rest) = s.strip_suffix("*/") {
        s = rest;
    }
    let s = s.trim();
    // Javadoc-style continuation lines start with `*`.
    s.strip_prefix('*').map_or(s, str::trim_start)
}

/// A Python class or function's docstring: a string as the first statement of its body.
fn python_docstring(node: Node<'_>, source: &str) -> Option<String> {
    let body = node.child_by_field_name("body")?;
    let first = body.named_child(0)?;
    if first.kind() != "expression_statement" {
        return None;
    }
    let string = first.named_child(0)?;
    if string.kind() != "string" {
        return None;
    }
    let raw = text(source, string);
    let unprefixed = raw.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let inner = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|q| unprefixed.strip_prefix(q)?.strip_suffix(q))?;
    let doc = clean_docstring(inner);
    (!doc.is_empty()).then(|| cap_bytes(doc, MAX_DOC_BYTES))
}

/// Python's `inspect.cleandoc`: the first line trimmed, the others dedented by their common indentation.
fn clean_docstring(inner: &str) -> String {
    let mut lines = inner.lines();
    let first = lines.next().unwrap_or("").trim();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::from(first);
    for line in rest {
        out.push('\n');
        out.push_str(line.get(indent..).unwrap_or(line.trim_start()).trim_end());
    }
    out.trim().to_string()
}

/// A name found inside a C/C++ declarator.
struct DeclaratorName<'tree> {
    node: Node<'tree>,
    /// Whether a function declarator was passed on the way: `int f(void)` or `int (*f)(void)`.
    through_function: bool,
}

/// Descends through pointer, reference, array, parenthesized, attributed, init and function declarators to
/// the declared name.
fn declarator_name(mut node: Node<'_>) -> Option<DeclaratorName<'_>> {
    let mut through_function = false;
    // Declarators nest a handful deep in real code; the bound only guards against a pathological tree.
    for _ in 0..64 {
        match node.kind() {
            "identifier"
            | "field_identifier"
            | "type_identifier"
            | "primitive_type"
            | "qualified_identifier"
            | "destructor_name"
            | "operator_name"
            | "template_function"
            | "operator_cast" => {
                return Some(DeclaratorName {
                    node,
                    through_function,
                })
            }
            "function_declarator" => {
                through_function = true;
                node = node.child_by_field_name("declarator")?;
            }
            "pointer_declarator"
            | "reference_declarator"
            | "array_declarator"
            | "attributed_declarator"
            | "init_declarator"
            | "abstract_function_declarator" => {
                node = match node.child_by_field_name("declarator") {
                    Some(inner) => inner,
                    // C++ reference declarators hold their declarator as an unnamed child.
                    None => node.named_child(node.named_child_count().checked_sub(1)?)?,
                };
            }
            "parenthesized_declarator" => node = node.named_child(0)?,
            _ => return None,
        }
    }
    None
}

/// Splits `a::b::name` into `name` and `Some("a::b")`; a plain name has no qualifier. Template arguments
/// are dropped from the name (`Vec<T>` is `Vec`), whitespace is removed, and string names lose their quotes.
fn split_qualified(raw: &str) -> (String, Option<String>) {
    let trimmed = raw.trim();
    // A computed name that is one string literal is that string: JavaScript's `get ['async']() {}`.
    let computed = trimmed
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .map(str::trim);
    if let Some(unquoted) = ["\"", "'", "`"].iter().find_map(|q| {
        let inner = computed
            .unwrap_or(trimmed)
            .strip_prefix(q)?
            .strip_suffix(q)?;
        (computed.is_none() || !inner.contains(q)).then_some(inner)
    }) {
        return (unquoted.to_string(), None);
    }
    let compact: String = if trimmed.contains(char::is_whitespace) {
        // Keep the one space that `operator new` or `operator delete` needs.
        let mut s = String::with_capacity(trimmed.len());
        let mut last_space = false;
        for c in trimmed.chars() {
            if c.is_whitespace() {
                last_space = true;
                continue;
            }
            if last_space && s.ends_with("operator") && c.is_alphabetic() {
                s.push(' ');
            }
            last_space = false;
            s.push(c);
        }
        s
    } else {
        trimmed.to_string()
    };
    // The last `::` outside template brackets separates the qualifier.
    let mut depth = 0i32;
    let mut split = None;
    let bytes = compact.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => split = Some(i),
            _ => {}
        }
    }
    let (qualifier, name) = match split {
        Some(i) if i > 0 => (Some(&compact[..i]), &compact[i + 2..]),
        Some(_) => (None, &compact[2..]),
        None => (None, compact.as_str()),
    };
    let name = if name.starts_with("operator") {
        name
    } else {
        name.split('<').next().unwrap_or(name)
    };
    (name.to_string(), qualifier.map(str::to_string))
}

fn line_of(node: Node<'_>) -> u32 {
    to_line(node.start_position().row)
}

/// Records an import captured directly: the module is the node's text without its quotes or angle brackets.
fn push_import(out: &mut Vec<Import>, kind: ImportKind, node: Node<'_>, source: &str) {
    let raw = text(source, node).trim();
    let module = ["\"", "'", "`"]
        .iter()
        .find_map(|q| raw.strip_prefix(q)?.strip_suffix(q))
        .or_else(|| raw.strip_prefix('<')?.strip_suffix('>'))
        .unwrap_or(raw)
        .trim();
    if module.is_empty() {
        return;
    }
    out.push(Import {
        module: module.to_string(),
        line: line_of(node),
        kind,
    });
}

fn import_hook(out: &mut Vec<Import>, hook: ImportHook, node: Node<'_>, source: &str) {
    match hook {
        ImportHook::RustUse => {
            let line = line_of(node);
            let mut prefix = String::new();
            rust_use_paths(node, source, &mut prefix, &mut |module| {
                out.push(Import {
                    module,
                    line,
                    kind: ImportKind::Use,
                })
            });
        }
        ImportHook::PythonImport => {
            let line = line_of(node);
            let mut cursor = node.walk();
            for name in node.children_by_field_name("name", &mut cursor) {
                let dotted = match name.kind() {
                    "aliased_import" => name.child_by_field_name("name"),
                    _ => Some(name),
                };
                if let Some(dotted) = dotted {
                    let module = compact_text(source, dotted);
                    if !module.is_empty() {
                        out.push(Import {
                            module,
                            line,
                            kind: ImportKind::Use,
                        });
                    }
                }
            }
        }
        ImportHook::PythonFrom => python_from(out, node, source),
        ImportHook::Java => {
            let mut module = String::new();
            let mut wildcard = false;
            for i in 0..node.named_child_count() {
                let Some(child) = node.named_child(i) else {
                    break;
                };
                match child.kind() {
                    "scoped_identifier" | "identifier" => module = compact_text(source, child),
                    "asterisk" => wildcard = true,
                    _ => {}
                }
            }
            if module.is_empty() {
                return;
            }
            if wildcard {
                module.push_str(".*");
            }
            out.push(Import {
                module,
                line: line_of(node),
                kind: ImportKind::Use,
            });
        }
    }
}

/// The node's text without whitespace or comments in it: `a . b` and `a::\n b` name the same path.
fn compact_text(source: &str, node: Node<'_>) -> String {
    text(source, node)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Expands a Rust use tree into one path per leaf: `a::{b, c::{d as e, *}}` gives `a::b`, `a::c::d`,
/// `a::c::*`; `a::{self}` gives `a`.
fn rust_use_paths(
    node: Node<'_>,
    source: &str,
    prefix: &mut String,
    emit: &mut impl FnMut(String),
) {
    let joined = |prefix: &str, path: &str| -> String {
        if prefix.is_empty() {
            path.to_string()
        } else if path == "self" {
            prefix.trim_end_matches("::").to_string()
        } else {
            format!("{prefix}{path}")
        }
    };
    match node.kind() {
        "use_as_clause" => {
            if let Some(path) = node.child_by_field_name("path") {
                emit(joined(prefix, &compact_text(source, path)));
            }
        }
        "use_wildcard" => {
            // The wildcard's path is its first named child; `use *` alone has none.
            let path = node
                .named_child(0)
                .map(|p| compact_text(source, p))
                .unwrap_or_default();
            let base = joined(prefix, &path);
            emit(if base.is_empty() {
                "*".to_string()
            } else {
                format!("{}::*", base.trim_end_matches("::"))
            });
        }
        "scoped_use_list" => {
            let saved = prefix.len();
            if let Some(path) = node.child_by_field_name("path") {
                prefix.push_str(&compact_text(source, path));
                prefix.push_str("::");
            }
            if let Some(list) = node.child_by_field_name("list") {
                rust_use_paths(list, source, prefix, emit);
            }
            prefix.truncate(saved);
        }
        "use_list" => {
            for i in 0..node.named_child_count() {
                if let Some(child) = node.named_child(i) {
                    rust_use_paths(child, source, prefix, emit);
                }
            }
        }
        "line_comment" | "block_comment" => {}
        _ => {
            let path = compact_text(source, node);
            if !path.is_empty() {
                emit(joined(prefix, &path));
            }
        }
    }
}

/// `from m import a, b` gives `m.a` and `m.b`: each may be a submodule (`from . import util`) or a name in
/// `m`; resolution tries the longer module first. `from m import *` gives `m`. Relative imports keep their
/// leading dots and are [`ImportKind::Relative`].
fn python_from(out: &mut Vec<Import>, node: Node<'_>, source: &str) {
    let Some(module_node) = node.child_by_field_name("module_name") else {
        return;
    };
    let module = compact_text(source, module_node);
    let kind = if module_node.kind() == "relative_import" {
        ImportKind::Relative
    } else {
        ImportKind::Use
    };
    let line = line_of(node);
    let mut any = false;
    let mut cursor = node.walk();
    for name in node.children_by_field_name("name", &mut cursor) {
        let dotted = match name.kind() {
            "aliased_import" => name.child_by_field_name("name"),
            _ => Some(name),
        };
        let Some(dotted) = dotted else { continue };
        let name = compact_text(source, dotted);
        if name.is_empty() {
            continue;
        }
        let full = if module.ends_with('.') {
            format!("{module}{name}")
        } else {
            format!("{module}.{name}")
        };
        out.push(Import {
            module: full,
            line,
            kind,
        });
        any = true;
    }
    if !any && !module.is_empty() {
        out.push(Import { module, line, kind });
    }
}

#[cfg(test)]
mod ref_tests;
#[cfg(test)]
mod tests;
