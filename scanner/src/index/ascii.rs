//! Finding ASCII text in bytes while ignoring ASCII case, with nothing to build first.
//!
//! Verification asks of every candidate whether a term occurs in it at all, ignoring case, before it indexes any
//! lines. A case-insensitive `regex::bytes::Regex` answers that fast, but building one (parsing, a prefilter, a lazy
//! DFA) cost about 0.3 ms: a tenth of a whole `dreamos search` process. [`AsciiFinder`] builds nothing: it looks for
//! both cases of the needle's rarest byte with `memchr2`, and compares the needle around each.

use memchr::memmem;

/// Finds one ASCII needle, ignoring ASCII case.
#[derive(Debug, Clone)]
pub(crate) struct AsciiFinder {
    /// The needle, lowercase.
    needle: Vec<u8>,
    /// Where the needle's rarest byte is, and that byte in both cases (the same twice when it is not a letter).
    rare: usize,
    pair: (u8, u8),
    /// True when the needle has no letter, so that case does not matter and `memmem` does the work.
    caseless: bool,
}

impl AsciiFinder {
    /// A finder of `needle`; `None` when it is empty or not ASCII.
    pub(crate) fn new(needle: &str) -> Option<AsciiFinder> {
        if needle.is_empty() || !needle.is_ascii() {
            return None;
        }
        let needle = needle.to_ascii_lowercase().into_bytes();
        let rare = (0..needle.len())
            .min_by_key(|&i| rank(needle[i]))
            .unwrap_or(0);
        let byte = needle[rare];
        Some(AsciiFinder {
            rare,
            pair: (byte, byte.to_ascii_uppercase()),
            caseless: !needle.iter().any(u8::is_ascii_alphabetic),
            needle,
        })
    }

    /// True when `haystack` holds the needle, ignoring ASCII case.
    pub(crate) fn is_match(&self, haystack: &[u8]) -> bool {
        if self.caseless {
            return memmem::find(haystack, &self.needle).is_some();
        }
        let n = self.needle.len();
        memchr::memchr2_iter(self.pair.0, self.pair.1, haystack).any(|at| {
            at.checked_sub(self.rare)
                .and_then(|start| haystack.get(start..start + n))
                .is_some_and(|window| window.eq_ignore_ascii_case(&self.needle))
        })
    }
}

impl AsciiFinder {
    /// Where the needle starts in `haystack`, ignoring ASCII case, in order. Occurrences that overlap an earlier one
    /// may be left out when the needle has no letter, so every line that holds the needle is named.
    pub(crate) fn find_iter<'h>(&'h self, haystack: &'h [u8]) -> impl Iterator<Item = usize> + 'h {
        let n = self.needle.len();
        // A needle without letters: `memmem` finds it as it is.
        let plain = self
            .caseless
            .then(|| memmem::find_iter(haystack, &self.needle))
            .into_iter()
            .flatten();
        // Each place of the rare byte names one start, so none comes twice.
        let cased = (!self.caseless)
            .then(|| {
                memchr::memchr2_iter(self.pair.0, self.pair.1, haystack).filter_map(move |at| {
                    let start = at.checked_sub(self.rare)?;
                    haystack
                        .get(start..start + n)
                        .is_some_and(|window| window.eq_ignore_ascii_case(&self.needle))
                        .then_some(start)
                })
            })
            .into_iter()
            .flatten();
        plain.chain(cased)
    }
}

/// About how common a byte is in source code, higher for more common; case does not matter. Letters by their
/// frequency in English text and identifiers, spaces and the punctuation of every line above them, digits and rarer
/// punctuation below.
fn rank(byte: u8) -> u8 {
    const LETTERS: &[u8] = b"etaoinsrlcdhumpfgybwvkxjqz";
    match byte.to_ascii_lowercase() {
        b' ' | b'\t' => 255,
        c @ b'a'..=b'z' => {
            let at = LETTERS
                .iter()
                .position(|&l| l == c)
                .unwrap_or(LETTERS.len());
            // 250 for `e` down to 150 for `z`.
            250 - (at * 4) as u8
        }
        b'_' | b'(' | b')' | b',' | b'.' | b';' | b'=' | b':' | b'"' | b'\'' => 140,
        b'0'..=b'9' => 120,
        b'{' | b'}' | b'[' | b']' | b'<' | b'>' | b'-' | b'/' | b'*' | b'&' | b'#' => 100,
        _ => 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The finder's answer, checked against lowercasing both sides and searching with `memmem`.
    fn check(needle: &str, haystack: &str) -> bool {
        let finder = AsciiFinder::new(needle).expect("an ASCII needle");
        let expected = memmem::find(
            haystack.to_ascii_lowercase().as_bytes(),
            needle.to_ascii_lowercase().as_bytes(),
        )
        .is_some();
        assert_eq!(
            finder.is_match(haystack.as_bytes()),
            expected,
            "{needle:?} in {haystack:?}"
        );
        expected
    }

    #[test]
    fn finds_every_start_ignoring_ascii_case() {
        let starts = |needle: &str, haystack: &str| -> Vec<usize> {
            AsciiFinder::new(needle)
                .expect("an ASCII needle")
                .find_iter(haystack.as_bytes())
                .collect()
        };
        assert_eq!(starts("map", "HashMap map MAP mAp ma"), vec![4, 8, 12, 16]);
        assert_eq!(starts("aa", "aAa"), vec![0, 1]);
        assert_eq!(starts("zz", "z"), Vec::<usize>::new());
        assert_eq!(starts("::", "a::b::c"), vec![1, 4]);
        assert_eq!(starts("q", "Q"), vec![0]);
    }

    #[test]
    fn finds_needles_ignoring_ascii_case_only() {
        assert!(check("hashmap", "use std::collections::HashMap;"));
        assert!(check("HASHMAP", "let m: hashMAP = x;"));
        assert!(!check("hashmap", "HashSet and BTreeMap"));
        // At the very start and end, and a rare byte at either end of the needle.
        assert!(check("zeta", "zeta"));
        assert!(check("qux", "foo qux"));
        assert!(check("xq", "XQ"));
        assert!(!check("abcz", "abc"));
        // Without letters: exact bytes.
        assert!(check("::<", "Vec::<u8>"));
        assert!(!check("12", "1 2"));
        // Non-ASCII haystacks are bytes like any other; `K` is not the Kelvin sign.
        assert!(check("k sign", "Kelvin \u{212A} and a K sign"));
        assert!(!check("k sign", "Kelvin \u{212A} sign"));
        assert!(AsciiFinder::new("").is_none());
        assert!(AsciiFinder::new("é").is_none());
    }

    /// Every needle cut from a text is found in it, and the answer always equals the lowercase search's.
    #[test]
    fn agrees_with_lowercase_search_on_real_code() {
        let text = include_str!("search.rs");
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.len() > 8 && l.is_ascii())
            .collect();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut found = 0;
        for _ in 0..500 {
            let line = lines[next(lines.len())];
            let len = 1 + next(8);
            let start = next(line.len() - len);
            let mut needle: Vec<u8> = line.as_bytes()[start..start + len].to_vec();
            // Change the case of some letters, and sometimes one byte, so that both answers occur.
            for b in &mut needle {
                if next(2) == 0 {
                    b.make_ascii_uppercase();
                }
            }
            if next(3) == 0 {
                let at = next(needle.len());
                needle[at] = b'#';
            }
            let needle = String::from_utf8(needle).expect("ASCII");
            found += usize::from(check(&needle, line));
            check(&needle, text);
        }
        assert!(found > 200 && found < 500, "{found} of 500 found");
    }
}
