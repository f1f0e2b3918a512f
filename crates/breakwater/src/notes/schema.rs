//! The database schema and how each connection is configured.
//!
//! The schema is versioned with `PRAGMA user_version`; [`migrate`] brings a file up to
//! [`SCHEMA_VERSION`] and is a no-op on a file that is already there.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::NotesError;

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for another writer (e.g. a CLI ingest next to the server).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1: notes, their full-text index, and the per-user write generation.
///
/// Triggers keep `notes_fts` and `user_generation` in step with `notes` inside the writing
/// transaction, so no code path can write a note and forget either.
const SCHEMA_V1: &str = r#"
CREATE TABLE IF NOT EXISTS notes (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(16)))),
    user_id      TEXT NOT NULL,
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    source       TEXT,
    content_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (user_id, source)
);

-- Serves both "this user's notes" and "newest first".
CREATE INDEX IF NOT EXISTS notes_user_created ON notes (user_id, created_at);

CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(
    title, body,
    content = 'notes', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER IF NOT EXISTS notes_fts_ai AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_fts_ad AFTER DELETE ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS notes_fts_au AFTER UPDATE OF title, body ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
    INSERT INTO notes_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;

CREATE TABLE IF NOT EXISTS user_generation (
    user_id    TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS notes_gen_ai AFTER INSERT ON notes BEGIN
    INSERT INTO user_generation (user_id, generation) VALUES (new.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
CREATE TRIGGER IF NOT EXISTS notes_gen_ad AFTER DELETE ON notes BEGIN
    INSERT INTO user_generation (user_id, generation) VALUES (old.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
CREATE TRIGGER IF NOT EXISTS notes_gen_au AFTER UPDATE ON notes BEGIN
    INSERT INTO user_generation (user_id, generation) VALUES (new.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
-- A note moved between users (not done by the API today) changes the old owner's notes too.
CREATE TRIGGER IF NOT EXISTS notes_gen_au_owner AFTER UPDATE OF user_id ON notes
    WHEN old.user_id IS NOT new.user_id BEGIN
    INSERT INTO user_generation (user_id, generation) VALUES (old.user_id, 1)
        ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1;
END;
"#;

/// Configures the writer connection: WAL, durable enough, foreign keys, busy timeout.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets the readers keep reading while the writer writes; the mode is stored in the
    // file, so readers opened afterwards get it too.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL mode; reads will wait for writes");
    }
    // NORMAL is safe in WAL mode: a power loss may drop the last commits, never corrupt.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Configures a read-only connection.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Creates or upgrades the schema to [`SCHEMA_VERSION`]; idempotent.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), NotesError> {
    // IMMEDIATE: two processes opening a fresh file at once must not both create it.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(NotesError::UnsupportedSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < 1 {
        tx.execute_batch(SCHEMA_V1)?;
        tracing::info!(version = SCHEMA_VERSION, "created the notes schema");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
