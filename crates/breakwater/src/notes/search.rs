//! Retrieval: the best-matching excerpts of one user's notes for a question.

use std::convert::Infallible;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tantivy::Searcher;
use tantivy::tokenizer::TextAnalyzer;

use super::NotesError;
use super::index::{SearchIndex, analyse, analyzer};
use super::query::index_words;
use super::store::{NotesStore, read_generation};
use crate::user::UserId;

/// The most excerpts one search returns.
pub const MAX_SEARCH_RESULTS: usize = 20;

/// Snapshots tried for one that the index matches exactly; past that, the result leaves out
/// notes the snapshot does not have yet (only under a stream of writes).
const SNAPSHOT_ATTEMPTS: usize = 3;

/// How many words of a note body an excerpt holds.
const EXCERPT_WORDS: usize = 32;

/// The excerpts found for a question, and the notes generation they were read at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchResult {
    /// The user's notes generation in the same snapshot the excerpts were read from, so an
    /// answer cached under it is keyed on exactly the notes it was built from.
    pub generation: u64,
    /// The excerpts, best first.
    pub excerpts: Vec<Excerpt>,
    /// The version of each excerpt's note, in the same order: what an answer built on them
    /// rests on (not part of the API's JSON).
    #[serde(skip)]
    pub versions: Vec<NoteVersion>,
}

/// A note as it was when an answer was built from it: its id and the hash of its content.
/// An answer that rests on a note that is gone or changed is never served again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteVersion {
    /// The note's id.
    pub note_id: String,
    /// The hash of its title and body then.
    pub content_hash: String,
}

/// A passage of one note that matches the question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Excerpt {
    /// The id of the note it comes from.
    pub note_id: String,
    /// That note's title.
    pub title: String,
    /// About 32 words of the note's body around the matches; `…` marks cut text.
    pub excerpt: String,
    /// Relevance from 0 to 1, higher is better: the note's bm25 over this user's notes
    /// (title words weighted double) as a share of the best a note could score for the
    /// question, which holds every word of it, often.
    pub score: f64,
}

impl SearchResult {
    fn empty(generation: u64) -> SearchResult {
        SearchResult {
            generation,
            excerpts: Vec::new(),
            versions: Vec::new(),
        }
    }
}

impl NotesStore {
    /// The top `k` excerpts of `user`'s notes for `query`, ranked by bm25 over this user's
    /// notes alone.
    ///
    /// `query` is plain text, never query syntax: any string is accepted, and one with no
    /// searchable word gives no excerpts. `k` is clamped to `1..=20`. The generation, the
    /// ranking and the excerpts all come from one database snapshot (the index is caught up
    /// to it first), so they describe the same notes.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] or [`NotesError::Index`] when the database or the index fails;
    /// never because of what `query` contains.
    pub fn search(&self, user: &UserId, query: &str, k: usize) -> Result<SearchResult, NotesError> {
        let mut conn = self.conns().reader();
        // Catching the index up always gives a searcher: the lookup cannot give up.
        let Ok(found) = self.search_on::<Infallible>(&mut conn, user, query, k, |index, tx| {
            index.searcher(tx).map(Ok)
        })?;
        Ok(found)
    }

    /// [`Self::search`], run at once on a reader that is free now, when the index already
    /// holds what the snapshot holds; `None` when every reader is busy or the index must be
    /// caught up first (indexing is not work for an async task).
    ///
    /// The search itself is a quarter of a millisecond at 10,000 notes and 0.35 ms at
    /// 100,000 (p50, `retrieval_curve`), while the round trip through the blocking pool
    /// cost a streamed answer's first piece about 0.15 ms more on two busy cores (two
    /// thread wake-ups; `bench/streams-ab.sh`): doing it in place is the cheaper wait.
    pub fn search_now(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Option<Result<SearchResult, NotesError>> {
        let mut conn = self.conns().try_reader()?;
        let if_current =
            |index: &SearchIndex, tx: &Connection| Ok(index.current_searcher(tx)?.ok_or(Behind));
        self.search_on(&mut conn, user, query, k, if_current)
            .map(Result::ok)
            .transpose()
    }

    /// The search on `conn`, with the searcher `lookup` finds for the snapshot; `Ok(Err)`
    /// when `lookup` gives up.
    fn search_on<E>(
        &self,
        conn: &mut Connection,
        user: &UserId,
        query: &str,
        k: usize,
        lookup: impl Fn(&SearchIndex, &Connection) -> Result<Result<(Searcher, bool), E>, NotesError>,
    ) -> Result<Result<SearchResult, E>, NotesError> {
        let k = k.clamp(1, MAX_SEARCH_RESULTS);
        let mut analyzer = analyzer();
        let words = index_words(&mut analyzer, query);
        if words.is_empty() {
            return Ok(Ok(SearchResult::empty(read_generation(conn, user)?)));
        }
        let index = self.index();
        // The index must describe the very snapshot the generation and the excerpts are read
        // from. It can be newer (another search caught it up after this snapshot began):
        // then a new snapshot, which sees those writes too, is taken.
        let mut attempts = 0;
        let (tx, generation, searcher) = loop {
            attempts += 1;
            // A deferred transaction pins one WAL snapshot from its first read to its end.
            let tx = conn.transaction()?;
            let generation = read_generation(&tx, user)?;
            let (searcher, exact) = match lookup(index, &tx)? {
                Ok(found) => found,
                Err(gave_up) => return Ok(Err(gave_up)),
            };
            if exact || attempts == SNAPSHOT_ATTEMPTS {
                break (tx, generation, searcher);
            }
        };
        let mut result = SearchResult::empty(generation);
        let ranked = index.search(&searcher, user, generation, &words, k)?;
        {
            let mut stmt = tx.prepare_cached(
                "SELECT id, title, body, content_hash FROM notes WHERE rowid = ?1 AND user_id = ?2",
            )?;
            for hit in ranked {
                // The index may be newer than this snapshot: a note it holds that the
                // snapshot does not is left out. The user check is the isolation's own.
                let Some((id, title, body, hash)) = stmt
                    .query_row(params![hit.rowid, user.as_str()], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get(1)?,
                            row.get::<_, String>(2)?,
                            row.get(3)?,
                        ))
                    })
                    .optional()?
                else {
                    continue;
                };
                result.versions.push(NoteVersion {
                    note_id: id.clone(),
                    content_hash: hash,
                });
                result.excerpts.push(Excerpt {
                    note_id: id,
                    title,
                    excerpt: excerpt(&mut analyzer, &body, &words),
                    // Four decimals: enough to order by, and stable to print.
                    score: (hit.relevance * 10_000.0).round() / 10_000.0,
                });
            }
        }
        tx.commit()?;
        tracing::debug!(user = %user, generation, found = result.excerpts.len(), "searched notes");
        Ok(Ok(result))
    }
}

/// A search's lookup gave up: the index is behind the snapshot.
struct Behind;

/// About [`EXCERPT_WORDS`] words of `body` around its densest run of the question's
/// `words` (the window holding the most distinct ones, the earliest on a tie); `…` marks
/// cut text.
fn excerpt(analyzer: &mut TextAnalyzer, body: &str, words: &[String]) -> String {
    let tokens = analyse(analyzer, body);
    if tokens.is_empty() {
        return body.chars().take(200).collect();
    }
    let hit: Vec<Option<usize>> = tokens
        .iter()
        .map(|t| words.iter().position(|w| *w == t.text))
        .collect();
    let width = EXCERPT_WORDS.min(tokens.len());
    let (mut best, mut best_count) = (0, 0);
    let mut counts = vec![0usize; words.len()];
    let mut distinct = 0;
    for (i, h) in hit.iter().enumerate() {
        if let Some(w) = *h {
            counts[w] += 1;
            distinct += usize::from(counts[w] == 1);
        }
        if i >= width
            && let Some(w) = hit[i - width]
        {
            counts[w] -= 1;
            distinct -= usize::from(counts[w] == 0);
        }
        if i + 1 >= width && distinct > best_count {
            (best, best_count) = (i + 1 - width, distinct);
        }
    }
    // A window at either end of the body keeps the text beyond its outer words too.
    let start = if best == 0 {
        0
    } else {
        tokens[best].offset_from
    };
    let cut_end = best + width < tokens.len();
    let end = if cut_end {
        tokens[best + width - 1].offset_to
    } else {
        body.len()
    };
    let mut out = String::new();
    if best > 0 {
        out.push('…');
    }
    out.push_str(body[start..end].trim());
    if cut_end {
        out.push('…');
    }
    out
}
