//! The index's two tokenizers: code identifiers split into their parts, and character trigrams.
//!
//! Both are plain functions first (so the search side verifies hits with exactly the rules the index used)
//! and Tantivy tokenizers second.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name under which [`CodeTokenizer`] is registered with the index.
pub const CODE_TOKENIZER: &str = "dreamos_code";
/// The name under which [`TrigramTokenizer`] is registered with the index.
pub const TRIGRAM_TOKENIZER: &str = "dreamos_trigram";

/// Identifiers longer than this many bytes are not indexed as tokens: they are generated blobs (base64, hashes,
/// minified code) that would bloat the term dictionary and that nobody searches for by name. Substring search still
/// finds them through trigrams.
pub const MAX_IDENTIFIER_BYTES: usize = 128;

/// Lowercases text one character at a time.
///
/// `str::to_lowercase` treats a final sigma specially, so its output for a substring is not always a substring of its
/// output for the whole text. Mapping each character on its own keeps that property, which is what lets trigrams of a
/// lowercased needle be a subset of the trigrams of lowercased content that contains it.
pub fn lowercase(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    lowercase_into(text, &mut out);
    out
}

/// Appends [`lowercase`]`(text)` to `out`, so hot loops can reuse one buffer.
pub fn lowercase_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        // Copying then lowercasing in place runs on whole words at a time; pushing characters one by one was a
        // visible share of verifying a candidate file.
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
        return;
    }
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// True for the characters identifiers are made of.
fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Calls `f(start, end)` with the byte range of every maximal run of identifier characters in `text`.
pub fn for_each_identifier(text: &str, mut f: impl FnMut(usize, usize)) {
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if is_ident_char(c) {
            if start.is_none() {
                start = Some(i);
            }
        } else if let Some(s) = start.take() {
            f(s, i);
        }
    }
    if let Some(s) = start {
        f(s, text.len());
    }
}

/// The class of a character for splitting identifiers into parts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Lower,
    Upper,
    Digit,
    Other,
}

fn class_of(c: char) -> CharClass {
    if c.is_uppercase() {
        CharClass::Upper
    } else if c.is_lowercase() {
        CharClass::Lower
    } else if c.is_numeric() {
        CharClass::Digit
    } else {
        CharClass::Other
    }
}

/// Splits one identifier into its camelCase, snake_case and digit parts, as byte ranges into `ident`.
///
/// `parseHTTPResponse2` gives `parse`, `HTTP`, `Response`, `2`; `foo_bar` gives `foo`, `bar`.
pub fn identifier_parts(ident: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = ident.char_indices().collect();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    for (k, &(i, c)) in chars.iter().enumerate() {
        if c == '_' {
            if let Some(s) = start.take() {
                parts.push((s, i));
            }
            continue;
        }
        let Some(s) = start else {
            start = Some(i);
            continue;
        };
        let (_, prev) = chars[k - 1];
        let (pc, cc) = (class_of(prev), class_of(c));
        let next_is_lower = chars
            .get(k + 1)
            .is_some_and(|&(_, n)| class_of(n) == CharClass::Lower);
        let boundary = match (pc, cc) {
            // `parseHTTP`: a capital after a small letter starts a word.
            (CharClass::Lower, CharClass::Upper) => true,
            // `HTTPResponse`: the last capital of a run starts the next word when a small letter follows it.
            (CharClass::Upper, CharClass::Upper) => next_is_lower,
            // `utf8`, `x86`, `2d`: letters and digits are separate parts.
            (CharClass::Digit, CharClass::Lower | CharClass::Upper)
            | (CharClass::Lower | CharClass::Upper, CharClass::Digit) => true,
            _ => false,
        };
        if boundary {
            parts.push((s, i));
            start = Some(i);
        }
    }
    if let Some(s) = start {
        parts.push((s, ident.len()));
    }
    parts
}

/// Calls `f` with every token the code tokenizer emits for `text`, in order: for each identifier its whole lowercased
/// form, then each of its parts lowercased when the identifier has more than one part or its one part differs from it.
pub fn for_each_code_token(text: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    for_each_identifier(text, |s, e| {
        let ident = &text[s..e];
        if ident.len() > MAX_IDENTIFIER_BYTES {
            return;
        }
        buf.clear();
        lowercase_into(ident, &mut buf);
        f(&buf);
        let parts = identifier_parts(ident);
        let single_same = parts.len() == 1 && parts[0] == (0, ident.len());
        if single_same {
            return;
        }
        for (ps, pe) in parts {
            buf.clear();
            lowercase_into(&ident[ps..pe], &mut buf);
            f(&buf);
        }
    });
}

/// Every code token of `text`, in order (duplicates kept).
#[cfg(test)]
pub fn code_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_code_token(text, |t| out.push(t.to_string()));
    out
}

/// True when `text` holds `term` (already lowercased) among its code tokens. Only the identifiers that
/// [`may_have_token`] are tokenized: the same answer as looking at every token, for a fraction of the work.
pub fn has_code_token(text: &str, term: &str) -> bool {
    let mut found = false;
    for_each_identifier(text, |s, e| {
        let ident = &text[s..e];
        // A whole identifier tokenizes alone as it does inside `text`, whose identifiers end where it ends.
        if !found && may_have_token(ident, term) {
            for_each_code_token(ident, |t| found |= t == term);
        }
    });
    found
}

/// False only when `text` cannot have the code token `token` (lowercase): `text` is ASCII and does not hold
/// `token`, ignoring ASCII case. Text that is not ASCII may, since lowercasing some characters gives ASCII letters
/// (the Kelvin sign gives `k`).
pub fn may_have_token(text: &str, token: &str) -> bool {
    !text.is_ascii()
        || token.is_empty()
        || text
            .as_bytes()
            .windows(token.len())
            .any(|w| w.eq_ignore_ascii_case(token.as_bytes()))
}

/// Packs three characters into one integer so that a file's trigrams can be deduplicated by sorting numbers.
fn pack(a: char, b: char, c: char) -> u64 {
    ((a as u64) << 42) | ((b as u64) << 21) | c as u64
}

fn unpack_into(key: u64, out: &mut String) {
    out.clear();
    for shift in [42u32, 21, 0] {
        // Each slot holds a value that came from a `char`, so the conversion cannot fail.
        let c = char::from_u32(((key >> shift) & 0x1F_FFFF) as u32)
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        out.push(c);
    }
}

/// The distinct trigrams of `text` after [`lowercase`], as packed integers, sorted.
///
/// Windows that contain a line break are left out: search works line by line, so no needle ever contains one.
pub fn trigram_keys(text: &str) -> Vec<u64> {
    let lower = lowercase(text);
    let mut keys = Vec::with_capacity(lower.len());
    let mut window: [char; 3] = ['\0'; 3];
    let mut filled = 0usize;
    for c in lower.chars() {
        if c == '\n' || c == '\r' {
            filled = 0;
            continue;
        }
        window = [window[1], window[2], c];
        filled += 1;
        if filled >= 3 {
            keys.push(pack(window[0], window[1], window[2]));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The distinct trigrams of `text` after [`lowercase`], as strings, sorted by their packed form.
pub fn trigrams(text: &str) -> Vec<String> {
    let mut s = String::new();
    trigram_keys(text)
        .into_iter()
        .map(|k| {
            unpack_into(k, &mut s);
            s.clone()
        })
        .collect()
}

/// Tantivy tokenizer for the code-token field; see [`for_each_code_token`].
#[derive(Clone, Default)]
pub struct CodeTokenizer {
    tokens: Vec<Token>,
}

/// Tantivy tokenizer for the trigram field; see [`trigram_keys`].
#[derive(Clone, Default)]
pub struct TrigramTokenizer {
    tokens: Vec<Token>,
}

/// A token stream over tokens computed up front. Both tokenizers compute everything at once (trigrams must be
/// deduplicated over the whole text anyway), and reusing the tokenizer's vector avoids an allocation per document.
pub struct VecTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    /// Index of the current token plus one; 0 before the first `advance`.
    cursor: usize,
}

impl TokenStream for VecTokenStream<'_> {
    fn advance(&mut self) -> bool {
        if self.cursor < self.tokens.len() {
            self.cursor += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.cursor.saturating_sub(1)]
    }

    fn token_mut(&mut self) -> &mut Token {
        let i = self.cursor.saturating_sub(1);
        &mut self.tokens[i]
    }
}

/// Sets the `n`-th token of `tokens` to `text`, growing the vector when needed, so token allocations are reused
/// from one document to the next.
fn set_token(tokens: &mut Vec<Token>, n: usize, text: &str) {
    if n == tokens.len() {
        tokens.push(Token::default());
    }
    let token = &mut tokens[n];
    token.text.clear();
    token.text.push_str(text);
    token.position = n;
    token.offset_from = 0;
    token.offset_to = 0;
    token.position_length = 1;
}

impl Tokenizer for CodeTokenizer {
    type TokenStream<'a> = VecTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream<'a> {
        let tokens = &mut self.tokens;
        let mut n = 0;
        for_each_code_token(text, |t| {
            set_token(tokens, n, t);
            n += 1;
        });
        tokens.truncate(n);
        VecTokenStream { tokens, cursor: 0 }
    }
}

impl Tokenizer for TrigramTokenizer {
    type TokenStream<'a> = VecTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream<'a> {
        let keys = trigram_keys(text);
        let mut s = String::with_capacity(12);
        for (n, key) in keys.iter().enumerate() {
            unpack_into(*key, &mut s);
            set_token(&mut self.tokens, n, &s);
        }
        self.tokens.truncate(keys.len());
        VecTokenStream {
            tokens: &mut self.tokens,
            cursor: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &[&str]) {
        assert_eq!(code_tokens(input), expected, "code tokens of {input:?}");
        // The Tantivy tokenizer must emit exactly what the plain function does.
        let mut tokenizer = CodeTokenizer::default();
        let mut stream = tokenizer.token_stream(input);
        let mut seen = Vec::new();
        while stream.advance() {
            seen.push(stream.token().text.clone());
        }
        assert_eq!(seen, expected, "Tantivy stream of {input:?}");
    }

    #[test]
    fn camel_case_with_acronym_and_digit() {
        check(
            "parseHTTPResponse2",
            &["parsehttpresponse2", "parse", "http", "response", "2"],
        );
    }
    #[test]
    fn snake_case() {
        check("foo_bar", &["foo_bar", "foo", "bar"]);
    }
    #[test]
    fn pascal_case() {
        check("FooBar", &["foobar", "foo", "bar"]);
    }
    #[test]
    fn single_word_has_no_parts() {
        check("parse", &["parse"]);
    }
    #[test]
    fn upper_word_is_one_part() {
        check("HTTP", &["http"]);
    }
    #[test]
    fn screaming_snake() {
        check("MAX_LEN", &["max_len", "max", "len"]);
    }
    #[test]
    fn leading_underscore() {
        check("_private", &["_private", "private"]);
    }
    #[test]
    fn digits_inside() {
        check("x86_64", &["x86_64", "x", "86", "64"]);
    }
    #[test]
    fn punctuation_separates() {
        check("a.b(c)", &["a", "b", "c"]);
    }
    #[test]
    fn path_of_idents() {
        check("std::io::Read", &["std", "io", "read"]);
    }
    #[test]
    fn unicode_identifier() {
        check("größeWert", &["größewert", "größe", "wert"]);
    }
    #[test]
    fn empty_and_symbols() {
        check("  += -> {}", &[]);
    }
    #[test]
    fn overlong_identifier_skipped() {
        let long = "a".repeat(MAX_IDENTIFIER_BYTES + 1);
        check(&format!("x {long} y"), &["x", "y"]);
    }

    fn check_trigrams(input: &str, expected: &[&str]) {
        let mut got = trigrams(input);
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "trigrams of {input:?}");
    }

    #[test]
    fn trigrams_lowercase_and_dedup() {
        check_trigrams("AbcAbc", &["abc", "bca", "cab"]);
    }
    #[test]
    fn trigrams_skip_line_breaks() {
        check_trigrams("ab\ncd\r\nefg", &["efg"]);
    }
    #[test]
    fn trigrams_keep_spaces_and_unicode() {
        check_trigrams("a bÉ", &["a b", " bé"]);
    }
    #[test]
    fn trigrams_short_text() {
        check_trigrams("ab", &[]);
    }

    #[test]
    fn lowercase_is_per_character() {
        // A final sigma lowercases to the ordinary sigma here, unlike `str::to_lowercase`.
        assert_eq!(lowercase("ΟΔΟΣ"), "οδοσ");
        assert_eq!(lowercase("MiXeD"), "mixed");
    }

    #[test]
    fn has_code_token_matches_parts_only_whole() {
        assert!(has_code_token("let x = fooBar;", "foo"));
        assert!(has_code_token("let x = fooBar;", "foobar"));
        assert!(!has_code_token("let x = fooBar;", "oob"));
    }

    /// Tokenizing only the identifiers that may have the term answers as tokenizing every one.
    #[test]
    fn has_code_token_answers_as_every_token_does() {
        let texts = [
            "let x = fooBar; HTTPServer::new(parse_query)",
            "\u{212A}elvin kelvin_scale Ünïcode ünïcode_x",
            "a9b HashMap<K, V> hash_map HASHMAP",
            "",
            &format!("{} short", "y".repeat(MAX_IDENTIFIER_BYTES + 1)),
        ];
        let terms = [
            "foo",
            "foobar",
            "oob",
            "http",
            "server",
            "httpserver",
            "kelvin",
            "elvin",
            "ünïcode",
            "a",
            "9",
            "b",
            "hash",
            "map",
            "hashmap",
            "short",
            "y",
            "",
            "new",
        ];
        let mut both = 0;
        for text in texts {
            let tokens = code_tokens(text);
            for term in terms {
                let expected = tokens.iter().any(|t| t == term);
                assert_eq!(has_code_token(text, term), expected, "{text:?} {term:?}");
                both += usize::from(expected);
            }
        }
        assert!(both > 10, "{both}");
    }

    #[test]
    fn a_text_may_have_a_token_unless_it_plainly_lacks_it() {
        for (text, token) in [("HashMap", "map"), ("HTTPServer", "server"), ("any", "")] {
            assert!(may_have_token(text, token), "{text} {token}");
        }
        assert!(!may_have_token("HashSet", "map"));
        assert!(!may_have_token("ma", "map"));
        assert!(may_have_token("\u{212A}elvin", "kelvin"));
    }
}
