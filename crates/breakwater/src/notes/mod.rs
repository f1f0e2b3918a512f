//! The notes of every user, their full-text retrieval, and ingest from files.
//!
//! [`NotesStore`] keeps notes in one SQLite file (WAL mode, one writer and a few readers) with
//! a tantivy search index beside it, caught up from a change log that triggers keep.
//! [`NotesStore::search`] returns bm25-ranked excerpts of one user's notes together with that
//! user's notes *generation*, a counter that every write of the user's notes increases, so
//! an answer cache keyed on it goes stale exactly when the notes change. [`ingest`] turns Markdown and text files into notes,
//! idempotently.
//!
//! Every operation takes the acting [`UserId`](crate::user::UserId) and never sees another
//! user's notes.
//!
//! ```
//! use breakwater::notes::NotesStore;
//! use breakwater::user::UserId;
//!
//! let dir = tempfile::tempdir()?;
//! let store = NotesStore::open(&dir.path().join("notes.db"))?;
//! let user = UserId::parse("alice")?;
//! store.create(&user, "Circuit breakers", "A breaker opens after five failures in a row.")?;
//!
//! let result = store.search(&user, "when does the breaker open?", 5)?;
//! assert_eq!(result.generation, 1);
//! assert_eq!(result.excerpts[0].title, "Circuit breakers");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod error;
mod files;
mod guard;
mod index;
mod ingest;
mod note;
mod pool;
mod postgres;
mod query;
mod schema;
mod search;
mod store;

pub use backend::{BatchReport, Notes, SharedNotes};
pub use error::NotesError;
pub use files::NoteFile;
pub use guard::Guarded;
pub use ingest::{IngestReport, ingest};
pub use note::{MAX_BODY_BYTES, MAX_TITLE_CHARS, Note};
pub use postgres::PgNotes;
pub use search::{Excerpt, MAX_SEARCH_RESULTS, NoteVersion, SearchResult};
pub use store::NotesStore;

/// The name of the breaker in front of a PostgreSQL notes store.
pub const POSTGRES_BREAKER: &str = "postgres";

/// Opens the notes store the configuration names: PostgreSQL at `database_url` (behind its
/// breaker `postgres`, each call within `deadline`) when set, else the SQLite file `db`.
///
/// # Errors
///
/// When the store cannot be opened or its schema cannot be brought up to date.
pub async fn open(
    db: &std::path::Path,
    database_url: Option<&str>,
    deadline: std::time::Duration,
    observer: Option<std::sync::Arc<dyn breaker::Listener>>,
) -> Result<SharedNotes, NotesError> {
    let Some(url) = database_url else {
        return Ok(std::sync::Arc::new(
            NotesStore::open_async(db.to_owned()).await?,
        ));
    };
    let store = PgNotes::connect(url, deadline).await?;
    let guarded = Guarded::new(
        std::sync::Arc::new(store),
        POSTGRES_BREAKER,
        deadline,
        std::iter::once(std::sync::Arc::new(crate::metrics::BreakerMetrics) as _)
            .chain(observer)
            .collect(),
    )
    .map_err(|e| NotesError::Pool(e.to_string()))?;
    Ok(std::sync::Arc::new(guarded))
}
