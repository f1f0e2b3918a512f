//! [`PgNotes`]: the notes store in PostgreSQL, for several replicas that serve the same users.
//!
//! The same contract as the SQLite store ([`NotesStore`](super::NotesStore)): per-user
//! isolation, a per-user generation bumped in the same transaction as every write, ingest
//! keyed by `source`, and user text that never becomes query syntax. Search is PostgreSQL's
//! full-text search over a stored `tsvector` (title weighted above body), through a GIN index
//! on `(user_id, search)` (`btree_gin`), so the user's filter is part of the index lookup
//! and another user's notes never take part in a search.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Row};

use super::backend::{BatchReport, Notes};
use super::files::NoteFile;
use super::ingest::Outcome;
use super::note::{content_hash, validate_body, validate_title};
use super::query::search_words;
use super::search::{Excerpt, MAX_SEARCH_RESULTS, NoteVersion, SearchResult};
use super::{Note, NotesError};
use crate::user::UserId;

/// The schema version this build writes (the row in `breakwater_schema`).
pub(crate) const PG_SCHEMA_VERSION: i32 = 1;

/// Connections in the pool: PostgreSQL does the work, a replica only waits on it.
const POOL_SIZE: usize = 16;

/// Serialises migrations of replicas that start together (any constant key will do).
const MIGRATION_LOCK: i64 = 0x0062_776e_6f74_6573;

const SCHEMA_V1: &str = r#"
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- English stemming with accents folded, as SQLite's porter + remove_diacritics.
CREATE TEXT SEARCH CONFIGURATION breakwater (COPY = english);
ALTER TEXT SEARCH CONFIGURATION breakwater
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, english_stem;

CREATE TABLE notes (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE DEFAULT replace(gen_random_uuid()::text, '-', ''),
    user_id      text NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    source       text,
    content_hash text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('breakwater', title), 'A') ||
        setweight(to_tsvector('breakwater', body), 'B')
    ) STORED,
    UNIQUE (user_id, source)
);
CREATE INDEX notes_user_created ON notes (user_id, created_at DESC, seq DESC);
CREATE INDEX notes_search ON notes USING gin (user_id, search);

CREATE TABLE user_generation (
    user_id    text PRIMARY KEY,
    generation bigint NOT NULL
);
"#;

/// Columns of a [`Note`], timestamps in the same text form as the SQLite store's.
const NOTE_COLUMNS: &str = r#"id, user_id, title, body, source,
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;

/// Bumps the user's generation; run in the same transaction as the write it records.
const BUMP_GENERATION: &str = "INSERT INTO user_generation (user_id, generation) VALUES ($1, 1)
     ON CONFLICT (user_id) DO UPDATE SET generation = user_generation.generation + 1";

/// The notes of every user, in PostgreSQL. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgNotes {
    pool: Pool,
}

impl fmt::Debug for PgNotes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgNotes")
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgNotes {
    /// Connects to `url` (`postgres://…`), waiting at most `deadline` for a connection, and
    /// creates or migrates the schema.
    ///
    /// # Errors
    ///
    /// [`NotesError::Postgres`] when the URL is not valid, the server cannot be reached or the
    /// schema cannot be created; [`NotesError::UnsupportedSchema`] when a newer build wrote it.
    pub async fn connect(url: &str, deadline: Duration) -> Result<Self, NotesError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        config.connect_timeout(deadline);
        config.application_name("breakwater");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(deadline))
            .create_timeout(Some(deadline))
            .recycle_timeout(Some(deadline))
            .build()
            .map_err(|e| NotesError::Pool(e.to_string()))?;
        let store = PgNotes { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, NotesError> {
        self.pool
            .get()
            .await
            .map_err(|e| NotesError::Pool(e.to_string()))
    }

    async fn migrate(&self) -> Result<(), NotesError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Replicas that start at once take turns; the lock ends with the transaction.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS breakwater_schema (version integer NOT NULL)")
            .await?;
        let found: i32 = tx
            .query_opt("SELECT version FROM breakwater_schema", &[])
            .await?
            .map_or(0, |row| row.get(0));
        if found > PG_SCHEMA_VERSION {
            return Err(NotesError::UnsupportedSchema {
                found: i64::from(found),
                supported: i64::from(PG_SCHEMA_VERSION),
            });
        }
        if found < 1 {
            tx.batch_execute(SCHEMA_V1).await?;
            tracing::info!(version = 1, "created the notes schema in PostgreSQL");
        }
        tx.execute("DELETE FROM breakwater_schema", &[]).await?;
        tx.execute(
            "INSERT INTO breakwater_schema (version) VALUES ($1)",
            &[&PG_SCHEMA_VERSION],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn note_from_row(row: &Row) -> Note {
    Note {
        id: row.get(0),
        user_id: row.get(1),
        title: row.get(2),
        body: row.get(3),
        source: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
    }
}

/// Postgres counts and limits are `bigint`; a larger limit means "all", as `i64::MAX` does.
fn to_bigint(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The generation as read by `client` (inside its current transaction, if any).
async fn read_generation(
    client: &impl deadpool_postgres::GenericClient,
    user: &UserId,
) -> Result<u64, NotesError> {
    let row = client
        .query_opt(
            "SELECT generation FROM user_generation WHERE user_id = $1",
            &[&user.as_str()],
        )
        .await?;
    Ok(row.map_or(0, |row| {
        u64::try_from(row.get::<_, i64>(0)).unwrap_or_default()
    }))
}

#[async_trait]
impl Notes for PgNotes {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create(&self, user: &UserId, title: &str, body: &str) -> Result<Note, NotesError> {
        let title = validate_title(title)?;
        let body = validate_body(body)?;
        let hash = content_hash(title, body);
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO notes (user_id, title, body, content_hash) VALUES ($1, $2, $3, $4)
                     RETURNING {NOTE_COLUMNS}"
                ),
                &[&user.as_str(), &title, &body, &hash],
            )
            .await?;
        tx.execute(BUMP_GENERATION, &[&user.as_str()]).await?;
        tx.commit().await?;
        Ok(note_from_row(&row))
    }

    async fn get(&self, user: &UserId, id: &str) -> Result<Note, NotesError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1 AND user_id = $2"),
                &[&id, &user.as_str()],
            )
            .await?;
        row.as_ref().map(note_from_row).ok_or(NotesError::NotFound)
    }

    async fn update(
        &self,
        user: &UserId,
        id: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<Note, NotesError> {
        let title = title.map(validate_title).transpose()?;
        let body = body.map(validate_body).transpose()?;
        if title.is_none() && body.is_none() {
            return self.get(user, id).await;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // FOR UPDATE: a concurrent edit of the same note waits, so the hash matches the row.
        let old = tx
            .query_opt(
                "SELECT title, body FROM notes WHERE id = $1 AND user_id = $2 FOR UPDATE",
                &[&id, &user.as_str()],
            )
            .await?
            .ok_or(NotesError::NotFound)?;
        let (old_title, old_body): (String, String) = (old.get(0), old.get(1));
        let title = title.unwrap_or(&old_title);
        let body = body.unwrap_or(&old_body);
        let row = tx
            .query_one(
                &format!(
                    "UPDATE notes SET title = $1, body = $2, content_hash = $3,
                         updated_at = clock_timestamp()
                     WHERE id = $4 AND user_id = $5
                     RETURNING {NOTE_COLUMNS}"
                ),
                &[
                    &title,
                    &body,
                    &content_hash(title, body),
                    &id,
                    &user.as_str(),
                ],
            )
            .await?;
        tx.execute(BUMP_GENERATION, &[&user.as_str()]).await?;
        tx.commit().await?;
        Ok(note_from_row(&row))
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<(), NotesError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute(
                "DELETE FROM notes WHERE id = $1 AND user_id = $2",
                &[&id, &user.as_str()],
            )
            .await?;
        if deleted == 0 {
            return Err(NotesError::NotFound);
        }
        tx.execute(BUMP_GENERATION, &[&user.as_str()]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_all(&self, user: &UserId) -> Result<u64, NotesError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = tx
            .execute("DELETE FROM notes WHERE user_id = $1", &[&user.as_str()])
            .await?;
        if deleted > 0 {
            tx.execute(BUMP_GENERATION, &[&user.as_str()]).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list(
        &self,
        user: &UserId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Note>, NotesError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {NOTE_COLUMNS} FROM notes WHERE user_id = $1
                     ORDER BY created_at DESC, seq DESC LIMIT $2 OFFSET $3"
                ),
                &[&user.as_str(), &to_bigint(limit), &to_bigint(offset)],
            )
            .await?;
        Ok(rows.iter().map(note_from_row).collect())
    }

    async fn count(&self, user: &UserId) -> Result<u64, NotesError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) FROM notes WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
    }

    async fn generation(&self, user: &UserId) -> Result<u64, NotesError> {
        read_generation(&self.client().await?, user).await
    }

    async fn still_current(
        &self,
        user: &UserId,
        versions: &[NoteVersion],
    ) -> Result<bool, NotesError> {
        if versions.is_empty() {
            return Ok(false);
        }
        let ids: Vec<&str> = versions.iter().map(|v| v.note_id.as_str()).collect();
        let hashes: Vec<&str> = versions.iter().map(|v| v.content_hash.as_str()).collect();
        let client = self.client().await?;
        // Every (id, hash) pair must match a row of this user: count the pairs that do.
        let row = client
            .query_one(
                "SELECT count(*) FROM unnest($2::text[], $3::text[]) AS v(id, hash)
                 JOIN notes AS n ON n.id = v.id AND n.content_hash = v.hash
                 WHERE n.user_id = $1",
                &[&user.as_str(), &ids, &hashes],
            )
            .await?;
        Ok(usize::try_from(row.get::<_, i64>(0)).ok() == Some(versions.len()))
    }

    async fn search(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, NotesError> {
        let k = k.clamp(1, MAX_SEARCH_RESULTS);
        let mut client = self.client().await?;
        // REPEATABLE READ: the generation and the excerpts come from one snapshot.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let generation = read_generation(&tx, user).await?;
        let words = search_words(query);
        if words.is_empty() {
            return Ok(SearchResult {
                generation,
                excerpts: Vec::new(),
                versions: Vec::new(),
            });
        }
        let rows = tx
            .query(SEARCH, &[&user.as_str(), &words, &to_bigint(k)])
            .await?;
        tx.commit().await?;
        let (excerpts, versions) = rows
            .iter()
            .map(|row| {
                let body: String = row.get(3);
                let headline: String = row.get(2);
                let excerpt = Excerpt {
                    note_id: row.get(0),
                    title: row.get(1),
                    excerpt: mark_cuts(&body, &headline),
                    score: row.get(4),
                };
                let version = NoteVersion {
                    note_id: excerpt.note_id.clone(),
                    content_hash: row.get(5),
                };
                (excerpt, version)
            })
            .unzip();
        Ok(SearchResult {
            generation,
            excerpts,
            versions,
        })
    }

    async fn upsert_files(
        &self,
        user: &UserId,
        files: Vec<NoteFile>,
    ) -> Result<BatchReport, NotesError> {
        let mut report = BatchReport::default();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for note in &files {
            report.count(upsert(&tx, user, note).await?);
        }
        if report.added + report.updated > 0 {
            tx.execute(BUMP_GENERATION, &[&user.as_str()]).await?;
        }
        tx.commit().await?;
        Ok(report)
    }
}

/// The top-k of one user's notes. The words arrive as a text array and each becomes its own
/// `plainto_tsquery`, OR-ed together: user text is only ever a lexeme, never tsquery syntax.
/// Only the k best rows get a headline (the costly part).
const SEARCH: &str = r#"
WITH q AS (
    SELECT string_agg('(' || plainto_tsquery('breakwater', w)::text || ')', ' | ')::tsquery AS q
    FROM unnest($2::text[]) AS w
    WHERE numnode(plainto_tsquery('breakwater', w)) > 0
), top AS (
    SELECT n.seq, n.id, n.title, n.body, n.content_hash,
           ts_rank('{0.1, 0.2, 0.5, 1.0}', n.search, q.q, 1)::float8 AS score
    FROM notes AS n, q
    WHERE n.user_id = $1 AND n.search @@ q.q
    ORDER BY score DESC, n.seq DESC
    LIMIT $3
)
SELECT top.id, top.title,
       ts_headline('breakwater', top.body, q.q,
           'StartSel="", StopSel="", MaxWords=32, MinWords=16, ShortWord=0, MaxFragments=1'),
       top.body, top.score, top.content_hash
FROM top, q
ORDER BY top.score DESC, top.seq DESC
"#;

/// Marks with `…` where the headline cuts the body, as SQLite's `snippet()` does.
fn mark_cuts(body: &str, headline: &str) -> String {
    let headline = headline.trim();
    let Some(at) = body.find(headline) else {
        return headline.to_owned();
    };
    let mut out = String::new();
    if !body[..at].trim().is_empty() {
        out.push('…');
    }
    out.push_str(headline);
    if !body[at + headline.len()..].trim().is_empty() {
        out.push('…');
    }
    out
}

async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    user: &UserId,
    note: &NoteFile,
) -> Result<Outcome, NotesError> {
    let hash = content_hash(&note.title, &note.body);
    let existing: Option<String> = tx
        .query_opt(
            "SELECT content_hash FROM notes WHERE user_id = $1 AND source = $2 FOR UPDATE",
            &[&user.as_str(), &note.source],
        )
        .await?
        .map(|row| row.get(0));
    match existing {
        Some(old) if old == hash => Ok(Outcome::Unchanged),
        Some(_) => {
            tx.execute(
                "UPDATE notes SET title = $1, body = $2, content_hash = $3,
                     updated_at = clock_timestamp()
                 WHERE user_id = $4 AND source = $5",
                &[&note.title, &note.body, &hash, &user.as_str(), &note.source],
            )
            .await?;
            Ok(Outcome::Updated)
        }
        None => {
            tx.execute(
                "INSERT INTO notes (user_id, title, body, source, content_hash)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&user.as_str(), &note.title, &note.body, &note.source, &hash],
            )
            .await?;
            Ok(Outcome::Added)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_marked_on_the_side_that_was_cut() {
        assert_eq!(mark_cuts("a b c", "a b c"), "a b c");
        assert_eq!(mark_cuts("a b c d", "b c"), "…b c…");
        assert_eq!(mark_cuts("a b c", "a b"), "a b…");
    }
}
