//! Which trigrams a literal or a regular expression requires of a file, as a boolean query over the trigram field.
//!
//! This follows Russ Cox's "Regular Expression Matching with a Trigram Index": each piece of the regex is
//! summarised by the exact set of (lowercased) strings it can match, while that set stays small, plus a requirement
//! that must hold anyway. Concatenation multiplies sets, alternation unites them, and a set that grows too large is
//! turned into its trigram requirement. Everything is lowercased character by character, exactly as the trigram
//! field is, so any file the regex matches satisfies the derived query: candidates are a superset of real matches,
//! and every candidate is verified against the stored content afterwards.

use std::collections::BTreeSet;

use regex_syntax::hir::{Class, Hir, HirKind};

use super::tokenizer::{lowercase, trigrams};
use crate::error::Result;

/// A boolean combination of trigrams a file must contain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrigramQuery {
    /// No constraint: every file is a candidate.
    All,
    /// Nothing can match (for instance an empty character class).
    Nothing,
    /// This trigram (lowercase).
    Trigram(String),
    /// All of these.
    And(Vec<TrigramQuery>),
    /// Any of these.
    Or(Vec<TrigramQuery>),
}

/// Beyond this many strings an exact set is turned into its trigram requirement.
const MAX_EXACT: usize = 32;
/// Classes with more characters than this are treated as "any character".
const MAX_CLASS: usize = 16;

impl TrigramQuery {
    fn and(items: Vec<TrigramQuery>) -> TrigramQuery {
        let mut out = BTreeSet::new();
        for item in items {
            match item {
                TrigramQuery::All => {}
                TrigramQuery::Nothing => return TrigramQuery::Nothing,
                TrigramQuery::And(inner) => out.extend(inner),
                other => {
                    out.insert(other);
                }
            }
        }
        match out.len() {
            0 => TrigramQuery::All,
            1 => out.into_iter().next().unwrap_or(TrigramQuery::All),
            _ => TrigramQuery::And(out.into_iter().collect()),
        }
    }

    fn or(items: Vec<TrigramQuery>) -> TrigramQuery {
        let mut out = BTreeSet::new();
        for item in items {
            match item {
                TrigramQuery::All => return TrigramQuery::All,
                TrigramQuery::Nothing => {}
                TrigramQuery::Or(inner) => out.extend(inner),
                other => {
                    out.insert(other);
                }
            }
        }
        match out.len() {
            0 => TrigramQuery::Nothing,
            1 => out.into_iter().next().unwrap_or(TrigramQuery::Nothing),
            _ => TrigramQuery::Or(out.into_iter().collect()),
        }
    }

    /// The requirement for text containing `s` (case-insensitively): all of its trigrams.
    pub fn for_literal(s: &str) -> TrigramQuery {
        TrigramQuery::and(trigrams(s).into_iter().map(TrigramQuery::Trigram).collect())
    }

    /// The requirement for text containing one of `set` (already lowercased).
    fn for_set(set: &BTreeSet<String>) -> TrigramQuery {
        TrigramQuery::or(set.iter().map(|s| TrigramQuery::for_literal(s)).collect())
    }

    /// The requirement for lines matching `pattern`, parsed with the same flags the matcher uses.
    pub fn for_regex(pattern: &str, case_sensitive: bool) -> Result<TrigramQuery> {
        let hir = crate::query::parse_regex(pattern, case_sensitive)?;
        Ok(analyze(&hir).into_query())
    }
}

/// What one regex piece can match: `exact` (when known) is every string it can match, lowercased; `require` must
/// hold in any case.
struct Info {
    exact: Option<BTreeSet<String>>,
    require: TrigramQuery,
}

impl Info {
    fn exact(set: BTreeSet<String>) -> Info {
        Info {
            exact: Some(set),
            require: TrigramQuery::All,
        }
    }

    fn unknown(require: TrigramQuery) -> Info {
        Info {
            exact: None,
            require,
        }
    }

    fn into_query(self) -> TrigramQuery {
        match self.exact {
            Some(set) => TrigramQuery::and(vec![self.require, TrigramQuery::for_set(&set)]),
            None => self.require,
        }
    }
}

fn single(s: String) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    set.insert(s);
    set
}

/// The characters of a class, lowercased, when there are few enough of them.
fn class_strings(class: &Class) -> Option<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    let mut count = 0usize;
    match class {
        Class::Unicode(c) => {
            for r in c.ranges() {
                count += (r.end() as usize).saturating_sub(r.start() as usize) + 1;
                if count > MAX_CLASS {
                    return None;
                }
                for ch in r.start()..=r.end() {
                    set.insert(lowercase(ch.encode_utf8(&mut [0u8; 4])));
                }
            }
        }
        Class::Bytes(c) => {
            for r in c.ranges() {
                count += usize::from(r.end() - r.start()) + 1;
                if count > MAX_CLASS || !r.end().is_ascii() {
                    return None;
                }
                for b in r.start()..=r.end() {
                    set.insert(lowercase(&char::from(b).to_string()));
                }
            }
        }
    }
    Some(set)
}

fn analyze(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::exact(single(String::new())),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(s) => Info::exact(single(lowercase(s))),
            Err(_) => Info::unknown(TrigramQuery::All),
        },
        HirKind::Class(class) => match class_strings(class) {
            Some(set) => Info::exact(set),
            None => Info::unknown(TrigramQuery::All),
        },
        HirKind::Capture(cap) => analyze(&cap.sub),
        HirKind::Repetition(rep) => {
            if rep.min == 0 {
                Info::unknown(TrigramQuery::All)
            } else if rep.min == 1 && rep.max == Some(1) {
                analyze(&rep.sub)
            } else {
                // At least one copy of the piece is there, whatever the count.
                Info::unknown(analyze(&rep.sub).into_query())
            }
        }
        HirKind::Concat(children) => {
            let mut require = Vec::new();
            let mut run: Option<BTreeSet<String>> = Some(single(String::new()));
            let mut all_exact = true;
            for child in children {
                let info = analyze(child);
                require.push(info.require);
                run = match (run, info.exact) {
                    (Some(a), Some(b)) if a.len() * b.len() <= MAX_EXACT => {
                        let mut product = BTreeSet::new();
                        for x in &a {
                            for y in &b {
                                product.insert(format!("{x}{y}"));
                            }
                        }
                        Some(product)
                    }
                    (Some(a), Some(b)) => {
                        require.push(TrigramQuery::for_set(&a));
                        all_exact = false;
                        Some(b)
                    }
                    (Some(a), None) => {
                        require.push(TrigramQuery::for_set(&a));
                        all_exact = false;
                        None
                    }
                    (None, b) => {
                        all_exact = false;
                        b
                    }
                };
            }
            if all_exact {
                Info {
                    exact: run,
                    require: TrigramQuery::and(require),
                }
            } else {
                if let Some(set) = run {
                    require.push(TrigramQuery::for_set(&set));
                }
                Info::unknown(TrigramQuery::and(require))
            }
        }
        HirKind::Alternation(children) => {
            let infos: Vec<Info> = children.iter().map(analyze).collect();
            let total: usize = infos
                .iter()
                .map(|i| i.exact.as_ref().map_or(usize::MAX / 2, BTreeSet::len))
                .sum();
            let plain = infos.iter().all(|i| i.require == TrigramQuery::All);
            if plain && total <= MAX_EXACT {
                let mut set = BTreeSet::new();
                for info in infos {
                    set.extend(info.exact.unwrap_or_default());
                }
                Info::exact(set)
            } else {
                Info::unknown(TrigramQuery::or(
                    infos.into_iter().map(Info::into_query).collect(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a query compactly: trigrams as-is, `&(..)`, `|(..)`, `*` for all, `!` for nothing.
    fn render(q: &TrigramQuery) -> String {
        match q {
            TrigramQuery::All => "*".to_string(),
            TrigramQuery::Nothing => "!".to_string(),
            TrigramQuery::Trigram(t) => t.clone(),
            TrigramQuery::And(v) => {
                format!("&({})", v.iter().map(render).collect::<Vec<_>>().join(" "))
            }
            TrigramQuery::Or(v) => {
                format!("|({})", v.iter().map(render).collect::<Vec<_>>().join(" "))
            }
        }
    }

    fn check(pattern: &str, case_sensitive: bool, expected: &str) {
        let q = TrigramQuery::for_regex(pattern, case_sensitive).expect("valid regex in test");
        assert_eq!(render(&q), expected, "trigram query of /{pattern}/");
    }

    #[test]
    fn literal() {
        check("abcd", true, "&(abc bcd)");
    }
    #[test]
    fn literal_case_insensitive_is_lowercased() {
        check("ABcd", false, "&(abc bcd)");
    }
    #[test]
    fn short_literal_is_all() {
        check("ab", false, "*");
    }
    #[test]
    fn optional_piece_is_dropped() {
        check("abc(de)?fgh", false, "&(abc fgh)");
    }
    #[test]
    fn plus_keeps_one_copy() {
        check("(abcd)+", false, "&(abc bcd)");
    }
    #[test]
    fn alternation_of_literals() {
        check("foo|barx", false, "|(foo &(arx bar))");
    }
    #[test]
    fn small_class_multiplies() {
        check("ab[cd]", false, "|(abc abd)");
    }
    #[test]
    fn wide_class_splits_runs() {
        check(r"fn\s+\w+_parse", true, "&(_pa ars par rse)");
    }
    #[test]
    fn case_folding_keeps_unicode_variants() {
        // Without case:yes, `s` also matches the long s `ſ`, so both spellings are candidates.
        check("parse", false, "|(&(ars par rse) &(arſ par rſe))");
    }
    #[test]
    fn dot_star_between_literals() {
        check("foo.*bar", false, "&(bar foo)");
    }
    #[test]
    fn anchors_are_transparent() {
        check("^abc$", false, "abc");
    }
    #[test]
    fn nothing_required() {
        check(r"\w+", false, "*");
    }
    #[test]
    fn empty_class_matches_nothing() {
        check(r"abc[^\s\S]", false, "!");
    }
}
