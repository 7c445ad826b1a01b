//! The search query language: `foo lang:rust path:src/*.rs repo:name sym:Foo "phrase" /regex/ case:yes`.
//!
//! A query is a list of space-separated parts, all of which must hold for a file to match (AND):
//!
//! | part | meaning |
//! |---|---|
//! | `foo` | an identifier: a whole identifier or one of its camelCase/snake_case/digit parts, any case |
//! | `foo.bar(` | a word with punctuation: that literal text |
//! | `"exact phrase"` | that literal text, spaces included (`\"` and `\\` escape) |
//! | `/regex/` | a regular expression matched line by line (`\/` for a slash inside) |
//! | `sym:Foo` | a definition whose name is or contains the identifier `Foo` |
//! | `lang:rust` | only files of that language |
//! | `path:src/*.rs` | only files whose relative path matches the glob (`*` stays inside a folder, `**` crosses them); a pattern without `*?[{` matches any path containing it |
//! | `repo:name` | only that repository |
//! | `case:yes` | literal and regex parts are case-sensitive (default: case-insensitive) |
//!
//! Several `lang:`, `path:` or `repo:` filters are alternatives: `lang:rust lang:go` means either.
//! The parser is hand-written so every mistake gets a message that says how to write the query instead.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};
use crate::model::Lang;

/// A parsed query: what to look for and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The parts to look for; a file matches when it matches every one.
    pub terms: Vec<Term>,
    /// Allowed languages; empty means any.
    pub langs: Vec<Lang>,
    /// Allowed paths; empty means any.
    pub paths: Vec<PathPattern>,
    /// Allowed repositories; empty means any.
    pub repos: Vec<String>,
    /// Whether literal and regex parts respect case.
    pub case_sensitive: bool,
    /// The identifier terms as typed (their case kept), for ranking a definition of exactly that name first.
    pub words: Vec<String>,
}

/// One thing to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// An identifier or identifier part, lowercased.
    Ident(String),
    /// Literal text, as written.
    Literal(String),
    /// A regular expression, as written between the slashes (with `\/` turned into `/`).
    Regex(String),
    /// A definition name (identifier), lowercased.
    Symbol(String),
}

/// A `path:` filter.
#[derive(Clone)]
pub struct PathPattern {
    /// The pattern as written.
    pub pattern: String,
    matcher: PathMatcher,
}

#[derive(Clone)]
enum PathMatcher {
    /// No glob characters: the path must contain the text.
    Contains(String),
    /// A glob over the whole relative path, and over the file name too when the glob has no `/`.
    Glob {
        glob: GlobMatcher,
        file_name_too: bool,
    },
}

impl PathPattern {
    /// Compiles a `path:` value.
    pub fn new(pattern: &str) -> Result<PathPattern> {
        let has_meta = pattern.contains(['*', '?', '[', '{']);
        let matcher = if has_meta {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    Error::Query(format!(
                        "path:{pattern} is not a valid glob ({e}); write e.g. path:src/*.rs or path:**/test_*.py"
                    ))
                })?
                .compile_matcher();
            PathMatcher::Glob {
                glob,
                file_name_too: !pattern.contains('/'),
            }
        } else {
            PathMatcher::Contains(pattern.to_string())
        };
        Ok(PathPattern {
            pattern: pattern.to_string(),
            matcher,
        })
    }

    /// True when `rel_path` (relative to the repository root, `/`-separated) passes this filter.
    pub fn matches(&self, rel_path: &str) -> bool {
        match &self.matcher {
            PathMatcher::Contains(text) => rel_path.contains(text.as_str()),
            PathMatcher::Glob {
                glob,
                file_name_too,
            } => {
                glob.is_match(rel_path)
                    || (*file_name_too
                        && glob.is_match(rel_path.rsplit('/').next().unwrap_or(rel_path)))
            }
        }
    }
}

impl fmt::Debug for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PathPattern({:?})", self.pattern)
    }
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

/// The regex compile limit: large enough for any hand-written pattern, small enough that a hostile one fails fast.
const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// Builds the regex a `Term::Regex` stands for, with the query's case rule. Lines are matched one at a time, and
/// `multi_line` keeps `^`/`$` meaning line start/end when a whole file is tested at once as a pre-check.
pub fn build_regex(pattern: &str, case_sensitive: bool) -> Result<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .multi_line(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let detail = match &e {
                regex::Error::Syntax(s) => s.lines().last().unwrap_or(s).trim().to_string(),
                other => other.to_string(),
            };
            Error::Query(format!(
                "/{pattern}/ is not a valid regular expression ({detail}); escape special characters with \\ (e.g. /foo\\(/) or search the text with quotes"
            ))
        })
}

/// The size of `pattern` in states once its repetitions are expanded: `a{4000}b` is 4,001, `(ab|c)+` is 6 (an
/// unbounded repetition counts its minimum plus one), and a class counts the UTF-8 bytes of its widest character, so
/// `.{1000}` is 4,000. Matching time over a line grows with this number, so a query's limit is stated in it: on a
/// line of 900 KB, `a{3000}b` takes 0.1 s and `a{4000}b` 67 s, as the regex engine's lazy DFA gives up.
pub fn regex_states(pattern: &str, case_sensitive: bool) -> Result<u64> {
    use regex_syntax::hir::{Class, Hir, HirKind};
    fn states(hir: &Hir) -> u64 {
        match hir.kind() {
            HirKind::Empty | HirKind::Look(_) => 1,
            HirKind::Class(Class::Bytes(_)) => 1,
            HirKind::Class(Class::Unicode(c)) => {
                c.ranges().last().map_or(1, |r| r.end().len_utf8() as u64)
            }
            HirKind::Literal(lit) => lit.0.len() as u64,
            HirKind::Capture(c) => states(&c.sub),
            HirKind::Repetition(r) => {
                let copies = u64::from(r.max.unwrap_or(r.min.saturating_add(1)).max(1));
                states(&r.sub).saturating_mul(copies)
            }
            HirKind::Concat(items) | HirKind::Alternation(items) => items
                .iter()
                .fold(0u64, |sum, h| sum.saturating_add(states(h))),
        }
    }
    Ok(states(&parse_regex(pattern, case_sensitive)?))
}

/// A query's regex as syntax, with the flags the matcher uses (see [`build_regex`]).
pub(crate) fn parse_regex(pattern: &str, case_sensitive: bool) -> Result<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(!case_sensitive)
        .multi_line(true)
        .build()
        .parse(pattern)
        .map_err(|e| {
            Error::Query(format!(
                "/{}/ is not a valid regular expression ({e})",
                clip(pattern)
            ))
        })
}

/// At most 80 characters of a pattern, for messages that echo it.
pub(crate) fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(80) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
    }
}

#[cfg(test)]
#[test]
fn regex_states_count_expanded_repetitions() {
    for (pattern, expected) in [
        ("a{4000}b", 4001),
        ("(ab|c)+", 6),
        (".{1000}", 4000),
        ("[a-z]{10,20}", 20),
        ("foo", 3),
        ("a{100000}", 100_000),
    ] {
        assert_eq!(
            regex_states(pattern, true).expect("valid"),
            expected,
            "/{pattern}/"
        );
    }
    assert!(matches!(regex_states("a(", true), Err(Error::Query(_))));
}

/// True when `word` is made only of identifier characters, so it is searched as an identifier.
pub fn is_identifier(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c == '_' || c.is_alphanumeric())
}

/// Parses a query; see the module documentation for the language.
pub fn parse(input: &str) -> Result<Query> {
    let mut p = Parser {
        chars: input.char_indices().collect(),
        pos: 0,
        input,
    };
    let mut q = Query {
        terms: Vec::new(),
        langs: Vec::new(),
        paths: Vec::new(),
        repos: Vec::new(),
        case_sensitive: false,
        words: Vec::new(),
    };
    loop {
        p.skip_space();
        let Some(c) = p.peek() else { break };
        match c {
            '"' => {
                let text = p.quoted()?;
                q.terms.push(Term::Literal(text));
            }
            '/' => {
                let re = p.regex()?;
                q.terms.push(Term::Regex(re));
            }
            _ => p.word(&mut q)?,
        }
    }
    if q.terms.is_empty() {
        return Err(Error::Query(if input.trim().is_empty() {
            "the query is empty; write an identifier, \"some text\", /a regex/ or sym:Name, with optional lang:, path:, repo: filters".to_string()
        } else {
            "the query has filters but nothing to look for; add an identifier, \"some text\", /a regex/ or sym:Name".to_string()
        }));
    }
    for term in &q.terms {
        if let Term::Regex(re) = term {
            build_regex(re, q.case_sensitive)?;
        }
    }
    Ok(q)
}

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    pos: usize,
    input: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn byte_at(&self, pos: usize) -> usize {
        self.chars.get(pos).map_or(self.input.len(), |&(i, _)| i)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Reads `"..."` starting at the opening quote; `\"` and `\\` are escapes, any other backslash is kept.
    fn quoted(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    let text = &self.input[self.byte_at(start)..];
                    return Err(Error::Query(format!(
                        "unclosed quote in {text}; end the phrase with \" (write \\\" for a quote inside it)"
                    )));
                }
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => match self.chars.get(self.pos + 1).map(|&(_, c)| c) {
                    Some(c @ ('"' | '\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => {
                        out.push('\\');
                        self.pos += 1;
                    }
                },
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if out.is_empty() {
            return Err(Error::Query(
                "an empty phrase \"\" matches nothing useful; put text between the quotes"
                    .to_string(),
            ));
        }
        Ok(out)
    }

    /// Reads `/.../` starting at the opening slash; `\/` stands for a slash, other escapes belong to the regex.
    fn regex(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    let text = &self.input[self.byte_at(start)..];
                    return Err(Error::Query(format!(
                        "unclosed regex {text}; end it with / (write \\/ for a slash inside it)"
                    )));
                }
                Some('/') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') if self.chars.get(self.pos + 1).map(|&(_, c)| c) == Some('/') => {
                    out.push('/');
                    self.pos += 2;
                }
                Some('\\') => {
                    out.push('\\');
                    if let Some(&(_, c)) = self.chars.get(self.pos + 1) {
                        out.push(c);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
        if let Some(c) = self.peek() {
            if !c.is_whitespace() {
                let text = &self.input[self.byte_at(start)..self.byte_at(self.pos + 1)];
                return Err(Error::Query(format!(
                    "the regex ends at the / before {c:?} in {text}...; write \\/ for a slash inside a regex, and leave a space after its closing /"
                )));
            }
        }
        if out.is_empty() {
            return Err(Error::Query(
                "an empty regex // matches every line; put a pattern between the slashes"
                    .to_string(),
            ));
        }
        Ok(out)
    }

    /// Reads a bare word or a `key:value` filter up to the next space and records it in `q`.
    fn word(&mut self, q: &mut Query) -> Result<()> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != ':') {
            self.pos += 1;
        }
        let key = &self.input[self.byte_at(start)..self.byte_at(self.pos)];
        let is_filter =
            self.peek() == Some(':') && matches!(key, "lang" | "path" | "repo" | "sym" | "case");
        if !is_filter {
            while self.peek().is_some_and(|c| !c.is_whitespace()) {
                self.pos += 1;
            }
            let word = &self.input[self.byte_at(start)..self.byte_at(self.pos)];
            q.terms.push(if is_identifier(word) {
                q.words.push(word.to_string());
                Term::Ident(crate::index::tokenizer::lowercase(word))
            } else {
                Term::Literal(word.to_string())
            });
            return Ok(());
        }
        let key = key.to_string();
        self.pos += 1;
        let value = if self.peek() == Some('"') {
            self.quoted()?
        } else {
            let vstart = self.pos;
            while self.peek().is_some_and(|c| !c.is_whitespace()) {
                self.pos += 1;
            }
            self.input[self.byte_at(vstart)..self.byte_at(self.pos)].to_string()
        };
        if value.is_empty() {
            let example = match key.as_str() {
                "lang" => "lang:rust",
                "path" => "path:src/*.rs",
                "repo" => "repo:myproject",
                "sym" => "sym:parse_query",
                _ => "case:yes",
            };
            return Err(Error::Query(format!(
                "{key}: needs a value right after the colon, e.g. {example}"
            )));
        }
        match key.as_str() {
            "lang" => {
                let lang = value.parse::<Lang>().map_err(|e| {
                    Error::Query(format!(
                        "lang:{value} is not a language the scanner knows ({e})"
                    ))
                })?;
                if !q.langs.contains(&lang) {
                    q.langs.push(lang);
                }
            }
            "path" => q.paths.push(PathPattern::new(&value)?),
            "repo" => {
                crate::index::check_repo_name(&value)
                    .map_err(|e| Error::Query(format!("repo:{value}: {e}")))?;
                q.repos.push(value);
            }
            "sym" => {
                if !is_identifier(&value) {
                    return Err(Error::Query(format!(
                        "sym:{value} is not an identifier; sym: takes one name made of letters, digits and _, e.g. sym:parse_query"
                    )));
                }
                q.terms
                    .push(Term::Symbol(crate::index::tokenizer::lowercase(&value)));
            }
            _ => {
                q.case_sensitive = match value.to_ascii_lowercase().as_str() {
                    "yes" | "y" | "true" | "on" => true,
                    "no" | "n" | "false" | "off" => false,
                    _ => {
                        return Err(Error::Query(format!(
                            "case:{value} is not understood; write case:yes or case:no"
                        )))
                    }
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and compares a compact rendering of the result with `expected`, or the error text with
    /// `expected` when it starts with `error:` (only that the message contains the rest).
    fn check(input: &str, expected: &str) {
        match parse(input) {
            Ok(q) => {
                let mut parts: Vec<String> = q
                    .terms
                    .iter()
                    .map(|t| match t {
                        Term::Ident(s) => format!("ident({s})"),
                        Term::Literal(s) => format!("lit({s})"),
                        Term::Regex(s) => format!("re({s})"),
                        Term::Symbol(s) => format!("sym({s})"),
                    })
                    .collect();
                parts.extend(q.langs.iter().map(|l| format!("lang({l:?})")));
                parts.extend(q.paths.iter().map(|p| format!("path({})", p.pattern)));
                parts.extend(q.repos.iter().map(|r| format!("repo({r})")));
                if q.case_sensitive {
                    parts.push("case".to_string());
                }
                assert_eq!(parts.join(" "), expected, "parse of {input:?}");
            }
            Err(e) => {
                let msg = e.to_string();
                let want = expected.strip_prefix("error:").unwrap_or_else(|| {
                    panic!("{input:?} failed with {msg:?}, expected {expected:?}")
                });
                assert!(
                    msg.contains(want.trim()),
                    "error for {input:?} was {msg:?}, expected it to contain {want:?}"
                );
            }
        }
    }

    #[test]
    fn identifier() {
        check("FooBar", "ident(foobar)");
    }
    #[test]
    fn punctuated_word_is_literal() {
        check("foo.bar(", "lit(foo.bar()");
    }
    #[test]
    fn double_colon_word_is_literal() {
        check("std::io", "lit(std::io)");
    }
    #[test]
    fn phrase_with_escapes() {
        check(r#""say \"hi\" \\ now""#, r#"lit(say "hi" \ now)"#);
    }
    #[test]
    fn regex_with_escaped_slash() {
        check(r"/a\/b\d+/", r"re(a/b\d+)");
    }
    #[test]
    fn all_parts_together() {
        check(
            r#"foo lang:rust path:src/*.rs repo:my-repo sym:Foo "exact phrase" /fn\s+\w+/ case:yes"#,
            r"ident(foo) sym(foo) lit(exact phrase) re(fn\s+\w+) lang(Rust) path(src/*.rs) repo(my-repo) case",
        );
    }
    #[test]
    fn quoted_path_value() {
        check(r#"x path:"my dir/*.py""#, "ident(x) path(my dir/*.py)");
    }
    #[test]
    fn repeated_lang_is_alternative() {
        check(
            "x lang:rust lang:python lang:rust",
            "ident(x) lang(Rust) lang(Python)",
        );
    }
    #[test]
    fn case_no() {
        check("x case:no", "ident(x)");
    }
    #[test]
    fn unicode_identifier() {
        check("Größe", "ident(größe)");
    }
    #[test]
    fn unclosed_regex() {
        check(
            "/unclosed",
            "error: unclosed regex /unclosed; end it with /",
        );
    }
    #[test]
    fn regex_glued_to_word() {
        check("/a/b", "error: write \\/ for a slash inside a regex");
    }
    #[test]
    fn invalid_regex() {
        check("/a(b/", "error: /a(b/ is not a valid regular expression");
    }
    #[test]
    fn empty_regex() {
        check("//", "error: empty regex");
    }
    #[test]
    fn unclosed_quote() {
        check("\"abc", "error: unclosed quote in \"abc");
    }
    #[test]
    fn empty_phrase() {
        check("\"\"", "error: empty phrase");
    }
    #[test]
    fn lang_without_value() {
        check(
            "foo lang:",
            "error: lang: needs a value right after the colon, e.g. lang:rust",
        );
    }
    #[test]
    fn unknown_lang() {
        check(
            "foo lang:cobol",
            "error: lang:cobol is not a language the scanner knows",
        );
    }
    #[test]
    fn bad_glob() {
        check(
            "foo path:src/[a.rs",
            "error: path:src/[a.rs is not a valid glob",
        );
    }
    #[test]
    fn bad_repo_name() {
        check("foo repo:a/b", "error: repo:a/b:");
    }
    #[test]
    fn sym_needs_identifier() {
        check("sym:a.b", "error: sym:a.b is not an identifier");
    }
    #[test]
    fn bad_case_value() {
        check("x case:maybe", "error: write case:yes or case:no");
    }
    #[test]
    fn only_filters() {
        check("lang:rust", "error: nothing to look for");
    }
    #[test]
    fn empty_query() {
        check("   ", "error: the query is empty");
    }

    fn check_path(pattern: &str, path: &str, expected: bool) {
        let p = PathPattern::new(pattern).expect("valid pattern in test");
        assert_eq!(p.matches(path), expected, "path:{pattern} on {path}");
    }

    #[test]
    fn path_patterns() {
        check_path("src/*.rs", "src/lib.rs", true);
        check_path("src/*.rs", "src/index/mod.rs", false);
        check_path("src/**/*.rs", "src/index/mod.rs", true);
        check_path("*.rs", "src/index/mod.rs", true);
        check_path("*.py", "src/index/mod.rs", false);
        check_path("index/", "src/index/mod.rs", true);
        check_path("walk", "src/index/mod.rs", false);
    }
}
