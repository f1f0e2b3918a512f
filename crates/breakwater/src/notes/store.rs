//! [`NotesStore`]: create, read, update, delete and list a user's notes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::index::SearchIndex;
use super::note::{NOTE_COLUMNS, content_hash, validate_body, validate_title};
use super::pool::Connections;
use super::schema::new_note_id;
use super::{Note, NotesError};
use crate::user::UserId;

/// The notes of every user, in one SQLite file.
///
/// Cheap to clone (the connections are shared). The API is synchronous: from async code, call
/// it inside `tokio::task::spawn_blocking`. Every method takes the acting [`UserId`] and only
/// ever sees that user's notes; another user's note is [`NotesError::NotFound`].
///
/// ```
/// use breakwater::notes::NotesStore;
/// use breakwater::user::UserId;
///
/// let dir = tempfile::tempdir()?;
/// let store = NotesStore::open(&dir.path().join("notes.db"))?;
/// let alice = UserId::parse("alice")?;
///
/// let note = store.create(&alice, "Sourdough", "Feed the starter twice a day.")?;
/// let found = store.search(&alice, "how often do I feed the starter?", 3)?;
/// assert_eq!(found.excerpts[0].note_id, note.id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NotesStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conns: Connections,
    index: SearchIndex,
}

impl fmt::Debug for NotesStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotesStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl NotesStore {
    /// [`NotesStore::open`] on the blocking pool: opening may create and migrate the file.
    pub async fn open_async(path: std::path::PathBuf) -> Result<Self, NotesError> {
        run_blocking(move || Self::open(&path)).await
    }

    /// Runs a synchronous store call on the blocking pool, so SQLite never stalls the async
    /// runtime. A panic in `call` is re-raised in the caller's task (where an HTTP server's
    /// panic handler answers it).
    pub async fn blocking<T, F>(&self, call: F) -> Result<T, NotesError>
    where
        F: FnOnce(&NotesStore) -> Result<T, NotesError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        run_blocking(move || call(&store)).await
    }

    /// Opens (or creates) the database file at `path` and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`NotesError::Open`] when the file cannot be opened or configured,
    /// [`NotesError::UnsupportedSchema`] when a newer build wrote it, [`NotesError::Db`]
    /// when creating the schema fails.
    pub fn open(path: &Path) -> Result<Self, NotesError> {
        let conns = Connections::open(path)?;
        let index = SearchIndex::open(path, &conns.reader())?;
        Ok(NotesStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                conns,
                index,
            }),
        })
    }

    /// The database file this store was opened on.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(super) fn conns(&self) -> &Connections {
        &self.inner.conns
    }

    pub(super) fn index(&self) -> &SearchIndex {
        &self.inner.index
    }

    /// [`Notes::index_written`](super::Notes::index_written) for SQLite.
    pub(crate) fn index_written(&self, commit: bool) -> Result<(), NotesError> {
        let mut conn = self.conns().reader();
        let tx = conn.transaction()?;
        self.index().catch_up(&tx, commit)?;
        Ok(())
    }

    /// Called with the writer after each write: lets the index prune its change log.
    pub(super) fn wrote(&self, writer: &rusqlite::Connection) -> Result<(), NotesError> {
        Ok(self.index().prune_log(writer)?)
    }

    /// Creates a note for `user`. The title is stored trimmed.
    ///
    /// # Errors
    ///
    /// [`NotesError::Invalid`] naming `title` or `body` when either is out of bounds
    /// (title 1 to 300 characters after trimming, body 1 to 1,000,000 bytes and not blank).
    pub fn create(&self, user: &UserId, title: &str, body: &str) -> Result<Note, NotesError> {
        let title = validate_title(title)?;
        let body = validate_body(body)?;
        let hash = content_hash(title, body);
        let conn = self.conns().writer();
        let note = conn
            .prepare_cached(&format!(
                "INSERT INTO notes (id, user_id, title, body, content_hash)
                 VALUES ({}, ?1, ?2, ?3, ?4)
                 RETURNING {NOTE_COLUMNS}",
                new_note_id!()
            ))?
            .query_row(params![user.as_str(), title, body, hash], Note::from_row)?;
        self.wrote(&conn)?;
        tracing::debug!(user = %user, note = %note.id, "created note");
        Ok(note)
    }

    /// The note `id` of `user`.
    ///
    /// # Errors
    ///
    /// [`NotesError::NotFound`] when `user` has no such note (including when another user
    /// does).
    pub fn get(&self, user: &UserId, id: &str) -> Result<Note, NotesError> {
        let conn = self.conns().reader();
        conn.prepare_cached(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE id = ?1 AND user_id = ?2"
        ))?
        .query_row(params![id, user.as_str()], Note::from_row)
        .optional()?
        .ok_or(NotesError::NotFound)
    }

    /// Changes the title and/or body of the note `id` of `user`; `None` keeps a field.
    ///
    /// With both `None`, returns the note unchanged without writing.
    ///
    /// # Errors
    ///
    /// [`NotesError::NotFound`] as for [`get`](Self::get); [`NotesError::Invalid`] as for
    /// [`create`](Self::create).
    pub fn update(
        &self,
        user: &UserId,
        id: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<Note, NotesError> {
        let title = title.map(validate_title).transpose()?;
        let body = body.map(validate_body).transpose()?;
        if title.is_none() && body.is_none() {
            return self.get(user, id);
        }
        let mut conn = self.conns().writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (old_title, old_body): (String, String) = tx
            .prepare_cached("SELECT title, body FROM notes WHERE id = ?1 AND user_id = ?2")?
            .query_row(params![id, user.as_str()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?
            .ok_or(NotesError::NotFound)?;
        let title = title.unwrap_or(&old_title);
        let body = body.unwrap_or(&old_body);
        let note = tx
            .prepare_cached(&format!(
                "UPDATE notes SET title = ?1, body = ?2, content_hash = ?3,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?4 AND user_id = ?5
                 RETURNING {NOTE_COLUMNS}"
            ))?
            .query_row(
                params![title, body, content_hash(title, body), id, user.as_str()],
                Note::from_row,
            )?;
        tx.commit()?;
        self.wrote(&conn)?;
        tracing::debug!(user = %user, note = %note.id, "updated note");
        Ok(note)
    }

    /// Deletes the note `id` of `user`.
    ///
    /// # Errors
    ///
    /// [`NotesError::NotFound`] as for [`get`](Self::get).
    pub fn delete(&self, user: &UserId, id: &str) -> Result<(), NotesError> {
        let conn = self.conns().writer();
        let deleted = conn
            .prepare_cached("DELETE FROM notes WHERE id = ?1 AND user_id = ?2")?
            .execute(params![id, user.as_str()])?;
        if deleted == 0 {
            return Err(NotesError::NotFound);
        }
        self.wrote(&conn)?;
        tracing::debug!(user = %user, note = %id, "deleted note");
        Ok(())
    }

    /// Up to `limit` notes of `user`, newest first, skipping the first `offset`.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the query fails.
    pub fn list(
        &self,
        user: &UserId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Note>, NotesError> {
        let conn = self.conns().reader();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE user_id = ?1
             ORDER BY created_at DESC, rowid DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let notes = stmt
            .query_map(
                params![user.as_str(), to_sql_int(limit), to_sql_int(offset)],
                Note::from_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(notes)
    }

    /// How many times `user`'s notes were written; 0 for a user who never wrote.
    ///
    /// Every create, update, delete and changed ingested file increases it, in the same
    /// transaction as the write, so a cache keyed on it goes stale on any write.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the query fails.
    pub fn generation(&self, user: &UserId) -> Result<u64, NotesError> {
        let conn = self.conns().reader();
        Ok(read_generation(&conn, user)?)
    }

    /// [`Self::generation`], read at once on a reader that is free now; `None` when every
    /// reader is busy. The read is one lookup by primary key (microseconds), cheap enough
    /// for an async task, where the round trip through the blocking pool is not.
    pub fn generation_now(&self, user: &UserId) -> Option<Result<u64, NotesError>> {
        let conn = self.conns().try_reader()?;
        Some(read_generation(&conn, user).map_err(NotesError::from))
    }

    /// Whether every note in `versions` still exists for `user`, unchanged; `false` for an
    /// empty list (an answer that rests on no note is not one to serve from memory).
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the query fails.
    pub fn still_current(
        &self,
        user: &UserId,
        versions: &[crate::notes::NoteVersion],
    ) -> Result<bool, NotesError> {
        if versions.is_empty() {
            return Ok(false);
        }
        let conn = self.conns().reader();
        let mut stmt =
            conn.prepare_cached("SELECT content_hash FROM notes WHERE id = ?1 AND user_id = ?2")?;
        for version in versions {
            let hash: Option<String> = stmt
                .query_row(params![version.note_id, user.as_str()], |row| row.get(0))
                .optional()?;
            if hash.as_deref() != Some(version.content_hash.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Deletes every note of `user`; returns how many there were.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the statement fails (then nothing is deleted).
    pub fn delete_all(&self, user: &UserId) -> Result<u64, NotesError> {
        let conn = self.conns().writer();
        let deleted = conn
            .prepare_cached("DELETE FROM notes WHERE user_id = ?1")?
            .execute(params![user.as_str()])?;
        self.wrote(&conn)?;
        tracing::debug!(user = %user, deleted, "deleted every note of the user");
        Ok(deleted as u64)
    }

    /// How many notes `user` has.
    ///
    /// # Errors
    ///
    /// [`NotesError::Db`] when the query fails.
    pub fn count(&self, user: &UserId) -> Result<u64, NotesError> {
        let conn = self.conns().reader();
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM notes WHERE user_id = ?1")?
            .query_row(params![user.as_str()], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}

/// The generation of `user` as seen by `conn` (inside its current transaction, if any).
pub(super) fn read_generation(conn: &rusqlite::Connection, user: &UserId) -> rusqlite::Result<u64> {
    let generation: Option<i64> = conn
        .prepare_cached("SELECT generation FROM user_generation WHERE user_id = ?1")?
        .query_row(params![user.as_str()], |row| row.get(0))
        .optional()?;
    // The column only ever counts up from 1, so a negative value cannot occur.
    Ok(generation.map_or(0, |g| u64::try_from(g).unwrap_or_default()))
}

/// SQLite integers are i64; a larger limit or offset means "all", which i64::MAX also means.
pub(super) fn to_sql_int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn run_blocking<T, F>(work: F) -> Result<T, NotesError>
where
    F: FnOnce() -> Result<T, NotesError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Cancelled: only when the runtime shuts down under the request.
        Err(err) => std::panic::resume_unwind(Box::new(format!("notes task cancelled: {err}"))),
    }
}
