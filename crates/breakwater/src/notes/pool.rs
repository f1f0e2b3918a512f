//! The store's connections: one writer, a few readers.
//!
//! SQLite allows one writer at a time, so the writer sits behind a single mutex. In WAL mode
//! readers never wait for it, so a handful of read-only connections let searches run in
//! parallel with each other and with a write.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use rusqlite::{Connection, OpenFlags};

use super::{NotesError, schema};

/// How many read-only connections a store keeps.
pub(crate) const READERS: usize = 4;

/// The writer connection and the reader connections of one database file.
pub(crate) struct Connections {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Where the next reader search starts, so load spreads round-robin.
    next_reader: AtomicUsize,
}

impl Connections {
    /// Opens the writer (creating the file and the schema) and then the readers.
    pub(crate) fn open(path: &Path) -> Result<Connections, NotesError> {
        let open_err = |source| NotesError::Open {
            path: path.to_owned(),
            source,
        };
        let mut writer = Connection::open(path).map_err(open_err)?;
        schema::configure_writer(&writer).map_err(open_err)?;
        schema::migrate(&mut writer)?;

        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
                schema::configure_reader(&conn).map_err(open_err)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>, NotesError>>()?;

        Ok(Connections {
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The writer connection, waiting for any other write to finish.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere cannot leave the connection half-written: an open
        // `Transaction` rolls back when dropped, so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free reader connection if there is one, else waits for one.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        let (free, start) = self.free_reader();
        free.unwrap_or_else(|| {
            self.readers[start]
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
    }

    /// A reader connection that is free right now, if any: never waits.
    pub(crate) fn try_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        self.free_reader().0
    }

    /// A free reader, if any, and where the search for one started.
    fn free_reader(&self) -> (Option<MutexGuard<'_, Connection>>, usize) {
        // Relaxed is enough: the counter only spreads load, it guards nothing.
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        for i in 0..self.readers.len() {
            match self.readers[(start + i) % self.readers.len()].try_lock() {
                Ok(guard) => return (Some(guard), start),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return (Some(poisoned.into_inner()), start);
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        (None, start)
    }
}
