//! Turning a user's question into search words.
//!
//! User text is never handed to a search engine as query syntax: quotes, `AND`/`OR`/`NOT`,
//! `NEAR(`, `*`, `^`, `column:` filters and parentheses would be operators, and a stray one a
//! syntax error. Instead the question is cut into alphanumeric words, and each word is one
//! term of a disjunction, so bm25 ranks notes by how many and how rare the matched words are.

use tantivy::tokenizer::TextAnalyzer;

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

/// The analysed words of `query` for the search index (stemmed, accents folded), in the
/// question's order, each once; empty when it holds no searchable word.
pub(crate) fn index_words(analyzer: &mut TextAnalyzer, query: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in search_words(query) {
        for token in super::index::analyse(analyzer, &word) {
            if !words.contains(&token.text) {
                words.push(token.text);
            }
        }
    }
    words
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

    fn index_words(query: &str) -> Vec<String> {
        super::index_words(&mut crate::notes::index::analyzer(), query)
    }

    #[test]
    fn words_are_lowered_stemmed_and_stopwords_dropped() {
        assert_eq!(
            index_words("How do I feed the Starters?"),
            ["feed", "starter"]
        );
        assert_eq!(index_words("feeding FEEDS feed"), ["feed"]);
    }

    #[test]
    fn operators_and_punctuation_are_only_separators() {
        assert_eq!(
            search_words(r#"title:"bread" NEAR(a b) crust* ^x NOT y"#),
            ["title", "bread", "near", "b", "crust", "x", "not", "y"]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_the_count_is_capped() {
        assert_eq!(search_words("Bread bread BREAD"), ["bread"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(search_words(&many).len(), MAX_QUERY_TOKENS);
    }

    #[test]
    fn nothing_searchable_gives_nothing() {
        assert!(index_words("").is_empty());
        assert!(index_words("'; -- ()*").is_empty());
        assert!(index_words("what is the").is_empty());
    }

    #[test]
    fn non_ascii_words_are_kept_and_accents_folded() {
        assert_eq!(index_words("Crème brûlée 東京"), ["creme", "brule", "東京"]);
    }
}
