//! The database schema and how each connection is configured.
//!
//! The schema is versioned with `PRAGMA user_version`; [`migrate`] brings a file up to
//! [`SCHEMA_VERSION`] and is a no-op on a file that is already there.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::NotesError;

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 3;

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

/// The SQL of a new note's id: 32 hex digits, its creation time in milliseconds first and
/// then 80 random bits. Time first puts each new id at the end of the id index, as its rowid
/// is, where random ids dirtied a page of that index per note (a 100,000-note ingest: 5.6 s
/// against 7.0 s). A macro, so that statements can `concat!` it.
macro_rules! new_note_id {
    () => {
        "printf('%012x', CAST(round(unixepoch('subsec') * 1000) AS INTEGER)) || lower(hex(randomblob(10)))"
    };
}
pub(crate) use new_note_id;

/// Bytes of the file a reader maps into memory.
const READER_MMAP_BYTES: i64 = 256 << 20;
/// A reader's page cache, in KiB (negative: SQLite's unit for "kibibytes").
const READER_CACHE_KIB: i64 = -32 * 1024;

/// The writer's page cache, in KiB.
const WRITER_CACHE_KIB: i64 = -64 * 1024;

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
    // A batch of ingested notes dirties more pages than the default 2 MB cache holds; a
    // spilled page is written to the WAL again at commit (measured: 7.6 pages written per
    // note ingested with the default).
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    Ok(())
}

/// Configures a read-only connection.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Searches read many index pages: map the file instead of copying each page through a
    // read() system call (measured: most of a search's time was in the kernel), and keep
    // more of the index in the connection's own page cache.
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Version 2: the full-text index also holds each note's owner as one token, so a search
/// intersects "this user's notes" inside FTS5 instead of ranking every user's matches and
/// filtering afterwards (measured: a search over 10,000 notes of 10 users got several times
/// cheaper). The token is `u`, the hex of the user id, and `0`: one alphanumeric word that
/// the porter stemmer leaves alone (it ends in a digit) and no two users share.
const MIGRATE_V2: &str = r#"
ALTER TABLE notes ADD COLUMN owner TEXT
    GENERATED ALWAYS AS ('u' || lower(hex(user_id)) || '0') VIRTUAL;

DROP TRIGGER IF EXISTS notes_fts_ai;
DROP TRIGGER IF EXISTS notes_fts_ad;
DROP TRIGGER IF EXISTS notes_fts_au;
DROP TABLE IF EXISTS notes_fts;

CREATE VIRTUAL TABLE notes_fts USING fts5(
    title, body, owner,
    content = 'notes', content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO notes_fts (notes_fts) VALUES ('rebuild');

CREATE TRIGGER notes_fts_ai AFTER INSERT ON notes BEGIN
    INSERT INTO notes_fts (rowid, title, body, owner)
        VALUES (new.rowid, new.title, new.body, new.owner);
END;
CREATE TRIGGER notes_fts_ad AFTER DELETE ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, title, body, owner)
        VALUES ('delete', old.rowid, old.title, old.body, old.owner);
END;
CREATE TRIGGER notes_fts_au AFTER UPDATE OF title, body, user_id ON notes BEGIN
    INSERT INTO notes_fts (notes_fts, rowid, title, body, owner)
        VALUES ('delete', old.rowid, old.title, old.body, old.owner);
    INSERT INTO notes_fts (rowid, title, body, owner)
        VALUES (new.rowid, new.title, new.body, new.owner);
END;
"#;

/// Version 3: search moves to a tantivy index beside the file (see `index.rs`), fed by a log
/// of changed notes that triggers append to in every writing transaction; the FTS5 index goes
/// (measured: at 100,000 notes it ranked every matching note, 76 ms at p99, and its bm25
/// statistics spanned every user's notes). `store_meta.id` names this file, so an index
/// built from another file is never trusted.
const MIGRATE_V3: &str = r#"
DROP TRIGGER IF EXISTS notes_fts_ai;
DROP TRIGGER IF EXISTS notes_fts_ad;
DROP TRIGGER IF EXISTS notes_fts_au;
DROP TABLE IF EXISTS notes_fts;

CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO store_meta (key, value) VALUES ('id', lower(hex(randomblob(16))));

-- AUTOINCREMENT: a sequence number is never reused, even after the log is pruned.
CREATE TABLE note_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    note_rowid INTEGER NOT NULL
);
CREATE TRIGGER notes_log_ai AFTER INSERT ON notes BEGIN
    INSERT INTO note_changes (note_rowid) VALUES (new.rowid);
END;
CREATE TRIGGER notes_log_ad AFTER DELETE ON notes BEGIN
    INSERT INTO note_changes (note_rowid) VALUES (old.rowid);
END;
CREATE TRIGGER notes_log_au AFTER UPDATE OF title, body, user_id ON notes BEGIN
    INSERT INTO note_changes (note_rowid) VALUES (new.rowid);
END;
"#;

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
        tracing::info!(version = 1, "created the notes schema");
    }
    if found < 2 {
        tx.execute_batch(MIGRATE_V2)?;
        tracing::info!(version = 2, "indexed each note's owner for search");
    }
    if found < 3 {
        tx.execute_batch(MIGRATE_V3)?;
        tracing::info!(version = 3, "moved search to the tantivy index");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_is_upgraded_and_its_notes_stay_searchable() -> Result<(), NotesError> {
        let dir = tempfile::tempdir().map_err(|source| NotesError::Io {
            path: "tempdir".into(),
            source,
        })?;
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path)?;
            conn.execute_batch(SCHEMA_V1)?;
            conn.pragma_update(None, "user_version", 1)?;
            conn.execute(
                "INSERT INTO notes (user_id, title, body, content_hash) VALUES ('al.ice', 't', 'sourdough', 'h')",
                [],
            )?;
        }
        let store = crate::notes::NotesStore::open(&path)?;
        let user = crate::user::UserId::parse("al.ice").expect("valid");
        assert_eq!(store.search(&user, "sourdough", 5)?.excerpts.len(), 1);
        let conn = Connection::open(&path)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        assert_eq!(version, SCHEMA_VERSION);
        Ok(())
    }
}
