//! Ingest: Markdown and text files become notes, idempotently.
//!
//! A file is keyed by its canonical path (`source`) per user. Running ingest again adds new
//! files, rewrites changed ones and leaves identical ones untouched, so an unchanged folder
//! does not move the user's generation and cached answers stay valid.

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::backend::{BatchReport, Notes};
use super::files::{self, NoteFile};
use super::note::{content_hash, validate_body, validate_title};
use super::schema::new_note_id;
use super::{NotesError, NotesStore};
use crate::user::UserId;

/// Files written per transaction: large enough to amortise the commit, small enough that
/// the writer lock is released often for API writes.
const BATCH_FILES: usize = 512;

/// What an ingest run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    /// Files that became new notes.
    pub added: usize,
    /// Files whose note existed with other content and was rewritten.
    pub updated: usize,
    /// Files whose note already held exactly this content.
    pub unchanged: usize,
    /// Files and folders passed over, with the reason (unreadable, not UTF-8, empty, …).
    pub skipped: Vec<(PathBuf, String)>,
}

/// What happened to one file.
pub(crate) enum Outcome {
    Added,
    Updated,
    Unchanged,
}

impl BatchReport {
    pub(crate) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Added => self.added += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }
}

/// Ingests the `.md`, `.markdown` and `.txt` files at `paths` (files or folders, walked
/// recursively) as notes of `user`.
///
/// The title is the first `# ` heading, else the file name without extension; the body is
/// the whole file. Re-running is idempotent. With `show_progress`, a progress bar is drawn
/// on stderr when it is a terminal.
///
/// ```
/// use breakwater::notes::{NotesStore, ingest};
/// use breakwater::user::UserId;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("bread.md"), "# Bread\nFlour, water, salt.")?;
/// let store = NotesStore::open(&dir.path().join("notes.db"))?;
///
/// let report = ingest(&store, &UserId::default(), &[dir.path().to_owned()], false).await?;
/// assert_eq!(report.added, 1);
/// let again = ingest(&store, &UserId::default(), &[dir.path().to_owned()], false).await?;
/// assert_eq!(again.unchanged, 1);
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`NotesError::Io`] naming the path when one of `paths` does not exist (checked for all
/// of them before anything is written); [`NotesError::Db`] when a write fails (batches
/// already committed stay). A file that cannot be read, is not UTF-8, is empty or too large
/// is not an error: it is listed in [`IngestReport::skipped`].
pub async fn ingest(
    store: &dyn Notes,
    user: &UserId,
    paths: &[PathBuf],
    show_progress: bool,
) -> Result<IngestReport, NotesError> {
    let found = files::collect(paths)?;
    let mut report = IngestReport {
        skipped: found.skipped,
        ..IngestReport::default()
    };
    let progress = progress_bar(found.files.len(), show_progress);

    // A pipeline of three stages: batch n+1 is read (here) while batch n is written and
    // batch n-1 is indexed (both on the store's threads).
    let mut batches = found.files.chunks(BATCH_FILES);
    // A batch's notes, and the files passed over with the reason.
    let read = |batch: &[PathBuf]| {
        let mut notes = Vec::with_capacity(batch.len());
        let mut skipped = Vec::new();
        for path in batch {
            progress.set_message(path.display().to_string());
            match files::read_note_file(path).and_then(checked) {
                Ok(note) => notes.push(note),
                Err(reason) => {
                    skipped.push((path.clone(), reason));
                    progress.inc(1);
                }
            }
        }
        (notes, skipped)
    };
    let mut next = batches.next().map(read);
    let mut indexing = false;
    while let Some((notes, skipped)) = next {
        report.skipped.extend(skipped);
        let written = notes.len() as u64;
        let index = async {
            if indexing {
                store.index_written(false).await
            } else {
                Ok(())
            }
        };
        let write = async {
            let batch = store.upsert_files(user, notes).await?;
            progress.inc(written);
            Ok::<_, NotesError>(batch)
        };
        // Files are read before their batch is written, so disk I/O never holds a write open.
        let (indexed, written, read_next) =
            futures::join!(index, write, async { batches.next().map(read) });
        indexed?;
        let written = written?;
        report.added += written.added;
        report.updated += written.updated;
        report.unchanged += written.unchanged;
        next = read_next;
        indexing = true;
    }
    progress.set_message("indexing");
    store.index_written(true).await?;
    progress.finish_and_clear();
    tracing::info!(
        user = %user,
        added = report.added,
        updated = report.updated,
        unchanged = report.unchanged,
        skipped = report.skipped.len(),
        "ingested notes"
    );
    Ok(report)
}

impl NotesStore {
    /// [`Notes::upsert_files`] for SQLite: one immediate transaction on the writer.
    pub(crate) fn upsert_files(
        &self,
        user: &UserId,
        notes: &[NoteFile],
    ) -> Result<BatchReport, NotesError> {
        let mut report = BatchReport::default();
        let mut conn = self.conns().writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for note in notes {
            report.count(upsert(&tx, user, note)?);
        }
        tx.commit()?;
        self.wrote(&conn)?;
        Ok(report)
    }
}

/// Applies the store's bounds, so a file that breaks them is skipped with the reason.
fn checked(note: NoteFile) -> Result<NoteFile, String> {
    validate_title(&note.title).map_err(|e| e.to_string())?;
    validate_body(&note.body).map_err(|e| e.to_string())?;
    Ok(note)
}

fn upsert(tx: &Transaction<'_>, user: &UserId, note: &NoteFile) -> Result<Outcome, NotesError> {
    let hash = content_hash(&note.title, &note.body);
    let existing: Option<String> = tx
        .prepare_cached("SELECT content_hash FROM notes WHERE user_id = ?1 AND source = ?2")?
        .query_row(params![user.as_str(), note.source], |row| row.get(0))
        .optional()?;
    match existing {
        // Not touching the row keeps the generation, so cached answers stay fresh.
        Some(old) if old == hash => Ok(Outcome::Unchanged),
        Some(_) => {
            tx.prepare_cached(
                "UPDATE notes SET title = ?1, body = ?2, content_hash = ?3,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE user_id = ?4 AND source = ?5",
            )?
            .execute(params![
                note.title,
                note.body,
                hash,
                user.as_str(),
                note.source
            ])?;
            Ok(Outcome::Updated)
        }
        None => {
            tx.prepare_cached(concat!(
                "INSERT INTO notes (id, user_id, title, body, source, content_hash) VALUES (",
                new_note_id!(),
                ", ?1, ?2, ?3, ?4, ?5)"
            ))?
            .execute(params![
                user.as_str(),
                note.title,
                note.body,
                note.source,
                hash
            ])?;
            Ok(Outcome::Added)
        }
    }
}

fn progress_bar(len: usize, show: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    if show && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} files {elapsed} {wide_msg}")
        {
            bar.set_style(style);
        }
    }
    bar
}
