//! The model pool: which configured model answers a question, and which one next when it fails.
//!
//! A small classifier reads the question and picks a tag: `heavy` for multi-step work (plans, comparisons,
//! migrations, several questions at once, long requests), `code` for questions about code (identifiers, paths,
//! code words), `fast` for a short factual question, `balanced` for the rest. A person can name the tag instead
//! (`/ask --model TAG`). The candidates are the models with that tag in configuration order, then the models of
//! the nearest tags, so that a missing or failing model falls back to the next (local first, remote second, as
//! they are listed). Embeddings-only models never answer questions.

use dreamos_runtime::config::{LlmModelConfig, ModelTag};

/// What the classifier decided, and why, for the answer's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub tag: ModelTag,
    pub reason: String,
}

const MULTI_STEP: &[&str] = &[
    "and then",
    "step by step",
    "steps",
    "plan",
    "design",
    "compare",
    "comparison",
    "analyse",
    "analyze",
    "investigate",
    "migrate",
    "migration",
    "trade-off",
    "tradeoffs",
    "trade-offs",
    "write a report",
    "summarize all",
    "summarise all",
    "evaluate",
    "propose",
    "first,",
    "finally",
];

const CODE_WORDS: &[&str] = &[
    "function",
    "method",
    "struct",
    "class",
    "enum",
    "trait",
    "interface",
    "module",
    "crate",
    "compile",
    "compiler",
    "bug",
    "stack trace",
    "panic",
    "exception",
    "refactor",
    "implement",
    "implementation",
    "code",
    "api",
    "variable",
    "type",
    "import",
    "test",
    "regex",
    "call",
    "calls",
    "called",
    "defined",
    "definition",
    "source",
    "repo",
    "repository",
];

const CODE_EXTENSIONS: &[&str] = &[
    ".rs", ".py", ".js", ".ts", ".tsx", ".go", ".java", ".c", ".h", ".cpp", ".hpp", ".toml",
    ".json",
];

const FACT_STARTS: &[&str] = &[
    "who", "what", "when", "where", "which", "how many", "how much", "is", "are", "does", "do",
    "did", "was", "were", "can", "define",
];

/// Picks the tag for a question.
pub fn classify(question: &str) -> Classified {
    let text = question.trim();
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let questions = text.matches('?').count();
    let numbered = text
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("- ")
                || l.chars().next().is_some_and(|c| c.is_ascii_digit())
                    && (l.contains(". ") || l.contains(") "))
        })
        .count();
    if let Some(cue) = MULTI_STEP
        .iter()
        .find(|cue| contains_phrase(&lower, &words, cue))
    {
        return Classified {
            tag: ModelTag::Heavy,
            reason: format!("multi-step work (\"{cue}\")"),
        };
    }
    if questions >= 2 || numbered >= 2 {
        return Classified {
            tag: ModelTag::Heavy,
            reason: "several questions or steps at once".to_string(),
        };
    }
    if text.len() > 600 {
        return Classified {
            tag: ModelTag::Heavy,
            reason: format!("a long request ({} bytes)", text.len()),
        };
    }
    if let Some(signal) = code_signal(text, &lower, &words) {
        return Classified {
            tag: ModelTag::Code,
            reason: format!("a question about code ({signal})"),
        };
    }
    let factual_start = FACT_STARTS
        .iter()
        .any(|start| lower.starts_with(start) && lower[start.len()..].starts_with([' ', '\'']));
    if words.len() <= 15 && (factual_start || questions == 1) {
        return Classified {
            tag: ModelTag::Fast,
            reason: format!("a short factual question ({} words)", words.len()),
        };
    }
    Classified {
        tag: ModelTag::Balanced,
        reason: "a general question".to_string(),
    }
}

/// A phrase cue: multi-word cues as substrings, single words as whole words.
fn contains_phrase(lower: &str, words: &[&str], cue: &str) -> bool {
    if cue.contains(' ') || cue.contains(',') {
        lower.contains(cue)
    } else {
        words.contains(&cue)
    }
}

/// What makes a question look like one about code, if anything.
fn code_signal(text: &str, lower: &str, words: &[&str]) -> Option<String> {
    if text.contains('`') {
        return Some("code in backticks".to_string());
    }
    for token in text.split_whitespace() {
        let token = token.trim_matches(|c: char| ",;:!?\"'()".contains(c));
        if token.contains("::") || token.ends_with("()") || token.contains("->") {
            return Some(format!("`{token}`"));
        }
        if CODE_EXTENSIONS
            .iter()
            .any(|ext| token.len() > ext.len() && token.to_lowercase().ends_with(ext))
        {
            return Some(format!("the file `{token}`"));
        }
        if is_identifier_like(token) {
            return Some(format!("the identifier `{token}`"));
        }
    }
    let _ = lower;
    CODE_WORDS
        .iter()
        .find(|w| words.contains(w))
        .map(|w| format!("\"{w}\""))
}

/// `snake_case` with an underscore inside, or `CamelCase` with an upper-case letter after the first.
fn is_identifier_like(token: &str) -> bool {
    if token.len() < 3 || !token.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return false;
    }
    let inner_underscore = token.trim_matches('_').contains('_');
    // An upper-case letter after the first, among lower-case ones: `MessageLog`, `openSegment`.
    let rest: Vec<char> = token.chars().skip(1).collect();
    let camel = rest.iter().any(|c| c.is_lowercase()) && rest.iter().any(|c| c.is_uppercase());
    inner_underscore || camel
}

/// The tags to try after `tag`, nearest first.
fn nearest(tag: ModelTag) -> &'static [ModelTag] {
    match tag {
        ModelTag::Fast => &[
            ModelTag::Fast,
            ModelTag::Balanced,
            ModelTag::Heavy,
            ModelTag::Code,
        ],
        ModelTag::Balanced => &[
            ModelTag::Balanced,
            ModelTag::Heavy,
            ModelTag::Fast,
            ModelTag::Code,
        ],
        ModelTag::Heavy => &[
            ModelTag::Heavy,
            ModelTag::Balanced,
            ModelTag::Code,
            ModelTag::Fast,
        ],
        ModelTag::Code => &[
            ModelTag::Code,
            ModelTag::Heavy,
            ModelTag::Balanced,
            ModelTag::Fast,
        ],
        ModelTag::Embeddings => &[ModelTag::Embeddings],
    }
}

/// The models to try for `tag`, in order: those with the tag, then those of the nearest tags.
pub fn candidates(models: &[LlmModelConfig], tag: ModelTag) -> Vec<&LlmModelConfig> {
    let mut out: Vec<&LlmModelConfig> = Vec::new();
    for want in nearest(tag) {
        for model in models {
            let answers_questions = tag == ModelTag::Embeddings
                || model.tags.iter().any(|t| *t != ModelTag::Embeddings);
            if answers_questions
                && model.tags.contains(want)
                && !out.iter().any(|m| m.name == model.name)
            {
                out.push(model);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_get_the_tag_a_person_would_expect() {
        let table: &[(&str, ModelTag)] = &[
            ("What is the capital of France?", ModelTag::Fast),
            ("Who maintains the scanner?", ModelTag::Fast),
            ("how many agents are running", ModelTag::Fast),
            ("Is the swarm healthy?", ModelTag::Fast),
            ("Where is `Searcher` defined?", ModelTag::Code),
            ("What does MessageLog::append do", ModelTag::Code),
            (
                "why does open_segment() fail on a full disk",
                ModelTag::Code,
            ),
            ("explain runtime/src/log/segment.rs", ModelTag::Code),
            ("Which functions call the CodeIndex", ModelTag::Code),
            ("why is the compile so slow", ModelTag::Code),
            ("what calls refs_for_symbol", ModelTag::Code),
            (
                "Plan the migration of the log to segment files and then list the risks",
                ModelTag::Heavy,
            ),
            (
                "Compare sled and our segment files for retention",
                ModelTag::Heavy,
            ),
            (
                "What changed in the log? And what should we test next?",
                ModelTag::Heavy,
            ),
            (
                "1. index the repo\n2. find dead code\n3. report it",
                ModelTag::Heavy,
            ),
            (
                "Design a retry policy for the Discord outbox",
                ModelTag::Heavy,
            ),
            ("Tell me about the swarm's day", ModelTag::Balanced),
            (
                "Summarise what the agents did this morning for the team's standup notes please",
                ModelTag::Balanced,
            ),
            (
                "Give me a haiku about lighthouses and the sea at night",
                ModelTag::Balanced,
            ),
        ];
        let mut wrong = Vec::new();
        for (question, expected) in table {
            let got = classify(question);
            if got.tag != *expected {
                wrong.push(format!(
                    "{question:?}: {:?} ({}), expected {expected:?}",
                    got.tag, got.reason
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    fn model(name: &str, tags: &[ModelTag]) -> LlmModelConfig {
        LlmModelConfig {
            name: name.to_string(),
            tags: tags.to_vec(),
            context: 4096,
            max_output: 256,
            base_url: String::new(),
            api_key_env: String::new(),
        }
    }

    #[test]
    fn candidates_follow_the_tag_then_the_nearest_tags_in_configuration_order() {
        let models = vec![
            model("local-small", &[ModelTag::Fast]),
            model("local-code", &[ModelTag::Code, ModelTag::Balanced]),
            model("remote-big", &[ModelTag::Heavy, ModelTag::Code]),
            model("embedder", &[ModelTag::Embeddings]),
        ];
        let names = |tag| -> Vec<&str> {
            candidates(&models, tag)
                .into_iter()
                .map(|m| m.name.as_str())
                .collect()
        };
        assert_eq!(
            names(ModelTag::Fast),
            ["local-small", "local-code", "remote-big"]
        );
        assert_eq!(
            names(ModelTag::Code),
            ["local-code", "remote-big", "local-small"]
        );
        assert_eq!(
            names(ModelTag::Heavy),
            ["remote-big", "local-code", "local-small"]
        );
        assert_eq!(names(ModelTag::Embeddings), ["embedder"]);
    }
}
