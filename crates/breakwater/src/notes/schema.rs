//! The database schema and how each connection is configured.
//!
//! The schema is versioned with `PRAGMA user_version`; [`migrate`] brings a file up to
//! [`SCHEMA_VERSION`] and is a no-op on a file that is already there.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::NotesError;

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 2;

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

/// Bytes of the file a reader maps into memory.
const READER_MMAP_BYTES: i64 = 256 << 20;
/// A reader's page cache, in KiB (negative: SQLite's unit for "kibibytes").
const READER_CACHE_KIB: i64 = -32 * 1024;

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

/// The owner token of `user` in the full-text index (see [`MIGRATE_V2`]).
pub(crate) fn owner_token(user: &str) -> String {
    let hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
    format!("u{hex}0")
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
        tracing::info!(version = 1, "created the notes schema");
    }
    if found < 2 {
        tx.execute_batch(MIGRATE_V2)?;
        tracing::info!(version = 2, "indexed each note's owner for search");
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
        let mut conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA_V1)?;
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute(
            "INSERT INTO notes (user_id, title, body, content_hash) VALUES ('al.ice', 't', 'sourdough', 'h')",
            [],
        )?;
        migrate(&mut conn)?;
        let found: i64 = conn.query_row(
            "SELECT count(*) FROM notes_fts WHERE notes_fts MATCH ?1",
            [format!(
                "owner : \"{}\" AND \"sourdough\"",
                owner_token("al.ice")
            )],
            |row| row.get(0),
        )?;
        assert_eq!(found, 1);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        assert_eq!(version, SCHEMA_VERSION);
        Ok(())
    }

    #[test]
    fn the_owner_token_matches_what_sqlite_computes() -> Result<(), NotesError> {
        let conn = Connection::open_in_memory()?;
        let user = "Bob_1@x:y-z.";
        let sql: String = conn.query_row("SELECT 'u' || lower(hex(?1)) || '0'", [user], |row| {
            row.get(0)
        })?;
        assert_eq!(sql, owner_token(user));
        Ok(())
    }
}
