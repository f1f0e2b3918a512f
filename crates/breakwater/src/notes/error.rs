//! What can go wrong in the notes store, one variant per thing a caller can act on.

use std::path::PathBuf;

/// An error from the notes store, search or ingest.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    /// The note does not exist for this user.
    ///
    /// A note that belongs to another user is reported the same way, so its existence is
    /// never revealed.
    #[error("the note was not found")]
    NotFound,
    /// A field of a note is out of bounds (the caller's input is wrong).
    #[error("the note's {field} is invalid: {reason}")]
    Invalid {
        /// The field at fault: `"title"` or `"body"`.
        field: &'static str,
        /// What is wrong with it, as a sentence fragment.
        reason: String,
    },
    /// The database file could not be opened or prepared.
    #[error("could not open the notes database at {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database file was written by a newer Breakwater with a schema this one does not
    /// know.
    #[error(
        "the notes database has schema version {found}, newer than version {supported} that this build understands"
    )]
    UnsupportedSchema {
        /// The `user_version` found in the file.
        found: i64,
        /// The newest version this build can use.
        supported: i64,
    },
    /// A query or write failed inside SQLite.
    #[error("the notes database failed: {0}")]
    Db(#[from] rusqlite::Error),
    /// The search index (a directory beside the database file) failed to read or write.
    #[error("the notes search index failed: {0}")]
    Index(String),
    /// PostgreSQL refused a statement or the connection failed.
    #[error("PostgreSQL failed: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had in time (the pool's wait, connect or recycle
    /// deadline passed, or the pool is closed).
    #[error("no PostgreSQL connection: {0}")]
    Pool(String),
    /// The notes store is down or slow, and its breaker (`postgres`) refuses calls for now;
    /// nothing was read or written.
    #[error("the notes store is unavailable ({reason}); retry in {retry_after_seconds} s")]
    Unavailable {
        /// Whole seconds until the store's breaker lets a trial through (at least 1).
        retry_after_seconds: u64,
        /// Why: the circuit is open, or the call ran past the store's deadline.
        reason: String,
    },
    /// A path given to ingest does not exist or cannot be read.
    #[error("could not read {}: {source}", path.display())]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

impl NotesError {
    /// Builds a [`NotesError::Invalid`] for `field`.
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        NotesError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
