//! [`Notes`]: what the service asks of a notes store, whichever database holds the notes.
//!
//! Two stores implement it: [`NotesStore`] (SQLite, the embedded default) and
//! [`PgNotes`](super::PgNotes) (PostgreSQL, for several replicas). The HTTP handlers, the
//! assistant and ingest hold an `Arc<dyn Notes>` and never learn which one it is; one suite of
//! tests (`tests/notes_backends.rs`) runs against both.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::files::NoteFile;
use super::{Note, NoteVersion, NotesError, NotesStore, SearchResult};
use crate::user::UserId;

/// A shared handle on a notes store.
pub type SharedNotes = Arc<dyn Notes>;

/// What one batch of ingested files did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Files that became new notes.
    pub added: usize,
    /// Files whose note was rewritten because the file changed.
    pub updated: usize,
    /// Files identical to their note (not written, so the generation does not move).
    pub unchanged: usize,
}

/// The notes of every user. Every method takes the acting user and only ever sees that
/// user's notes: another user's note is [`NotesError::NotFound`].
///
/// The contract of each method is the one documented on [`NotesStore`], the SQLite store.
#[async_trait]
pub trait Notes: Send + Sync + fmt::Debug + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and the health endpoint.
    fn backend(&self) -> &'static str;
    /// The breaker in front of the store, if it has one (a networked store does).
    fn breaker(&self) -> Option<&breaker::CircuitBreaker> {
        None
    }
    /// Creates a note; the title is stored trimmed.
    async fn create(&self, user: &UserId, title: &str, body: &str) -> Result<Note, NotesError>;
    /// The note `id` of `user`.
    async fn get(&self, user: &UserId, id: &str) -> Result<Note, NotesError>;
    /// Changes the title and/or body; `None` keeps a field, both `None` writes nothing.
    async fn update(
        &self,
        user: &UserId,
        id: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<Note, NotesError>;
    /// Deletes the note `id` of `user`.
    async fn delete(&self, user: &UserId, id: &str) -> Result<(), NotesError>;
    /// Deletes every note of `user`; returns how many there were.
    async fn delete_all(&self, user: &UserId) -> Result<u64, NotesError>;
    /// Up to `limit` notes of `user`, newest first, skipping the first `offset`.
    async fn list(
        &self,
        user: &UserId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Note>, NotesError>;
    /// How many notes `user` has.
    async fn count(&self, user: &UserId) -> Result<u64, NotesError>;
    /// A counter that every write of `user`'s notes increases; 0 before the first.
    async fn generation(&self, user: &UserId) -> Result<u64, NotesError>;
    /// Whether every note in `versions` still exists unchanged; `false` for an empty list.
    async fn still_current(
        &self,
        user: &UserId,
        versions: &[NoteVersion],
    ) -> Result<bool, NotesError>;
    /// The top `k` (clamped to 1..=20) excerpts of `user`'s notes for the plain-text `query`,
    /// with the generation read in the same snapshot.
    async fn search(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, NotesError>;
    /// Adds or rewrites the notes of ingested files in one transaction, keyed by `source`;
    /// a file identical to its note is not written.
    async fn upsert_files(
        &self,
        user: &UserId,
        files: Vec<NoteFile>,
    ) -> Result<BatchReport, NotesError>;
    /// Hands every write so far to the search index, if the store keeps one beside its
    /// database (SQLite's tantivy index), and with `commit` makes it searchable. A search
    /// does this itself when it must; ingest calls it to index one batch while it writes
    /// the next, and to leave the index ready.
    async fn index_written(&self, commit: bool) -> Result<(), NotesError> {
        let _ = commit;
        Ok(())
    }

    /// The last call of a process about to exit after writing (`breakwater ingest`): lets
    /// the work its writes started in the background finish (SQLite: the index's segment
    /// merges, which would otherwise be abandoned, so that run after run left ever more
    /// segments to search). The store gives up its index: what it writes afterwards is not
    /// indexed by this process, so nothing should follow.
    async fn finish(&self) -> Result<(), NotesError> {
        Ok(())
    }
}

#[async_trait]
impl Notes for NotesStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn create(&self, user: &UserId, title: &str, body: &str) -> Result<Note, NotesError> {
        let (user, title, body) = (user.clone(), title.to_owned(), body.to_owned());
        self.blocking(move |s| s.create(&user, &title, &body)).await
    }

    async fn get(&self, user: &UserId, id: &str) -> Result<Note, NotesError> {
        let (user, id) = (user.clone(), id.to_owned());
        self.blocking(move |s| s.get(&user, &id)).await
    }

    async fn update(
        &self,
        user: &UserId,
        id: &str,
        title: Option<&str>,
        body: Option<&str>,
    ) -> Result<Note, NotesError> {
        let (user, id) = (user.clone(), id.to_owned());
        let (title, body) = (title.map(str::to_owned), body.map(str::to_owned));
        self.blocking(move |s| s.update(&user, &id, title.as_deref(), body.as_deref()))
            .await
    }

    async fn delete(&self, user: &UserId, id: &str) -> Result<(), NotesError> {
        let (user, id) = (user.clone(), id.to_owned());
        self.blocking(move |s| s.delete(&user, &id)).await
    }

    async fn delete_all(&self, user: &UserId) -> Result<u64, NotesError> {
        let user = user.clone();
        self.blocking(move |s| s.delete_all(&user)).await
    }

    async fn list(
        &self,
        user: &UserId,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<Note>, NotesError> {
        let user = user.clone();
        self.blocking(move |s| s.list(&user, limit, offset)).await
    }

    async fn count(&self, user: &UserId) -> Result<u64, NotesError> {
        let user = user.clone();
        self.blocking(move |s| s.count(&user)).await
    }

    async fn generation(&self, user: &UserId) -> Result<u64, NotesError> {
        if let Some(read) = self.generation_now(user) {
            return read;
        }
        let user = user.clone();
        self.blocking(move |s| s.generation(&user)).await
    }

    async fn still_current(
        &self,
        user: &UserId,
        versions: &[NoteVersion],
    ) -> Result<bool, NotesError> {
        let (user, versions) = (user.clone(), versions.to_vec());
        self.blocking(move |s| s.still_current(&user, &versions))
            .await
    }

    async fn search(
        &self,
        user: &UserId,
        query: &str,
        k: usize,
    ) -> Result<SearchResult, NotesError> {
        if let Some(found) = self.search_now(user, query, k) {
            return found;
        }
        let (user, query) = (user.clone(), query.to_owned());
        self.blocking(move |s| s.search(&user, &query, k)).await
    }

    async fn upsert_files(
        &self,
        user: &UserId,
        files: Vec<NoteFile>,
    ) -> Result<BatchReport, NotesError> {
        let user = user.clone();
        self.blocking(move |s| s.upsert_files(&user, &files)).await
    }

    async fn index_written(&self, commit: bool) -> Result<(), NotesError> {
        self.blocking(move |s| s.index_written(commit)).await
    }

    async fn finish(&self) -> Result<(), NotesError> {
        self.blocking(|s| s.index().finish_merges()).await
    }
}
