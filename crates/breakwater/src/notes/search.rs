//! Retrieval: the best-matching excerpts of one user's notes for a question.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::NotesError;
use super::query::match_expression;
use super::schema::owner_token;
use super::store::{NotesStore, read_generation, to_sql_int};
use crate::user::UserId;

/// The most excerpts one search returns.
pub const MAX_SEARCH_RESULTS: usize = 20;

/// How many tokens of a note body an excerpt holds (FTS5 allows at most 64).
const EXCERPT_TOKENS: i64 = 32;

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
    /// Relevance, higher is better (the negated bm25 of the note, title weighted double).
    pub score: f64,
}

impl NotesStore {
    /// The top `k` excerpts of `user`'s notes for `query`, ranked by bm25.
    ///
    /// `query` is plain text, never FTS5 syntax: any string is accepted, and one with no
    /// searchable word gives no excerpts. `k` is clamped to `1..=20`. The generation and
    /// the excerpts are read in one transaction, so they describe the same notes.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the database fails; never because of what `query` contains.
    pub fn search(&self, user: &UserId, query: &str, k: usize) -> Result<SearchResult, NotesError> {
        let k = k.clamp(1, MAX_SEARCH_RESULTS);
        let mut conn = self.conns().reader();
        // A deferred transaction pins one WAL snapshot from its first read to its end.
        let tx = conn.transaction()?;
        let generation = read_generation(&tx, user)?;
        let Some(words) = match_expression(query) else {
            return Ok(SearchResult {
                generation,
                excerpts: Vec::new(),
                versions: Vec::new(),
            });
        };
        // Only this user's notes take part in the ranking; the join below checks again.
        let expression = format!("owner : \"{}\" AND ({words})", owner_token(user.as_str()));
        let found = {
            let mut stmt = tx.prepare_cached(
                "SELECT n.id, n.title,
                        snippet(notes_fts, 1, '', '', '…', ?4),
                        -bm25(notes_fts, 2.0, 1.0, 0.0) AS score,
                        n.content_hash
                 FROM notes_fts JOIN notes AS n ON n.rowid = notes_fts.rowid
                 WHERE notes_fts MATCH ?1 AND n.user_id = ?2
                 ORDER BY score DESC, n.rowid DESC
                 LIMIT ?3",
            )?;
            stmt.query_map(
                params![expression, user.as_str(), to_sql_int(k), EXCERPT_TOKENS],
                |row| {
                    let excerpt = Excerpt {
                        note_id: row.get(0)?,
                        title: row.get(1)?,
                        excerpt: row.get(2)?,
                        score: row.get(3)?,
                    };
                    let version = NoteVersion {
                        note_id: excerpt.note_id.clone(),
                        content_hash: row.get(4)?,
                    };
                    Ok((excerpt, version))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?
        };
        let (excerpts, versions): (Vec<_>, Vec<_>) = found.into_iter().unzip();
        tx.commit()?;
        tracing::debug!(user = %user, generation, found = excerpts.len(), "searched notes");
        Ok(SearchResult {
            generation,
            excerpts,
            versions,
        })
    }
}
