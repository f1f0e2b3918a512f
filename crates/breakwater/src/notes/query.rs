//! Turning a user's question into a safe FTS5 `MATCH` expression.
//!
//! User text is never handed to FTS5 as query syntax: quotes, `AND`/`OR`/`NOT`, `NEAR(`,
//! `*`, `^`, `column:` filters and parentheses would otherwise be operators, and a stray one
//! is a syntax error. Instead the question is cut into alphanumeric words, each word becomes
//! a quoted phrase, and the phrases are joined with `OR` so bm25 ranks notes by how many and
//! how rare the matched words are.

/// At most this many distinct words are searched for; the rest of a long question is ignored.
pub(crate) const MAX_QUERY_TOKENS: usize = 32;

/// Words longer than this are not words (hashes, base64, pasted junk) and are dropped.
const MAX_TOKEN_CHARS: usize = 64;

/// Common English words that would match nearly every note and only add noise to bm25.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its",
    "me", "my", "of", "on", "or", "our", "should", "so", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "would", "you", "your",
];

/// The FTS5 `MATCH` expression for `query`, or `None` when it holds no searchable word.
///
/// Each word is made only of characters for which `char::is_alphanumeric` holds, so it can
/// contain no `"` and is always a valid quoted phrase.
pub(crate) fn match_expression(query: &str) -> Option<String> {
    let words = search_words(query);
    if words.is_empty() {
        return None;
    }
    let phrases: Vec<String> = words.iter().map(|t| format!("\"{t}\"")).collect();
    Some(phrases.join(" OR "))
}

/// The searchable words of `query`: alphanumeric runs, lower-cased, stopwords and
/// duplicates dropped, at most [`MAX_QUERY_TOKENS`]. Each is plain data to every backend.
pub(crate) fn search_words(query: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() || word.chars().count() > MAX_TOKEN_CHARS {
            continue;
        }
        let word = word.to_lowercase();
        if STOPWORDS.contains(&word.as_str()) || tokens.contains(&word) {
            continue;
        }
        tokens.push(word);
        if tokens.len() == MAX_QUERY_TOKENS {
            break;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_quoted_phrases_joined_by_or() {
        assert_eq!(
            match_expression("How do I feed the Starter?").as_deref(),
            Some(r#""feed" OR "starter""#)
        );
    }

    #[test]
    fn operators_and_punctuation_are_only_separators() {
        assert_eq!(
            match_expression(r#"title:"bread" NEAR(a b) crust* ^x NOT y"#).as_deref(),
            Some(r#""title" OR "bread" OR "near" OR "b" OR "crust" OR "x" OR "not" OR "y""#)
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_count_is_capped() {
        assert_eq!(
            match_expression("Bread bread BREAD").as_deref(),
            Some(r#""bread""#)
        );
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        let expr = match_expression(&many).expect("has words");
        assert_eq!(expr.matches(" OR ").count(), MAX_QUERY_TOKENS - 1);
    }

    #[test]
    fn nothing_searchable_gives_none() {
        assert_eq!(match_expression(""), None);
        assert_eq!(match_expression("'; -- ()*"), None);
        assert_eq!(match_expression("what is the"), None);
    }

    #[test]
    fn non_ascii_words_are_kept() {
        assert_eq!(
            match_expression("Crème brûlée 東京").as_deref(),
            Some(r#""crème" OR "brûlée" OR "東京""#)
        );
    }
}
