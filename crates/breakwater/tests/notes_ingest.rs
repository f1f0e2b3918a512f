//! Ingest: files and folders become notes, idempotently.

use std::fs;
use std::path::{Path, PathBuf};

use breakwater::notes::{IngestReport, NotesError, NotesStore};
use breakwater::user::UserId;
use tempfile::TempDir;

/// A store in its own temp dir, and a separate temp dir holding the files to ingest.
struct Fixture {
    _db_dir: TempDir,
    files: TempDir,
    store: NotesStore,
    user: UserId,
}

impl Fixture {
    fn new() -> Fixture {
        let db_dir = tempfile::tempdir().expect("temp dir");
        let store = NotesStore::open(&db_dir.path().join("notes.db")).expect("open store");
        Fixture {
            _db_dir: db_dir,
            files: tempfile::tempdir().expect("temp dir"),
            store,
            user: UserId::parse("alice").expect("valid user"),
        }
    }

    fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.files.path().join(relative);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(&path, contents).expect("write file");
        path
    }

    fn ingest_all(&self) -> IngestReport {
        ingest(
            &self.store,
            &self.user,
            &[self.files.path().to_owned()],
            false,
        )
        .expect("ingest")
    }

    fn titles(&self) -> Vec<String> {
        let mut titles: Vec<String> = self
            .store
            .list(&self.user, 100, 0)
            .expect("list")
            .into_iter()
            .map(|n| n.title)
            .collect();
        titles.sort();
        titles
    }
}

/// [`breakwater::notes::ingest`] run to completion: these tests are about files, not async.
fn ingest(
    store: &NotesStore,
    user: &UserId,
    paths: &[PathBuf],
    show_progress: bool,
) -> Result<IngestReport, NotesError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(breakwater::notes::ingest(store, user, paths, show_progress))
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).expect("canonical path")
}

/// A folder with Markdown and text files at several depths and a file that is not text.
fn nested_folder(fx: &Fixture) {
    fx.write("top.md", "# Top heading\nSome text about kayaks.");
    fx.write("a/plain.txt", "No heading here, just paddles.");
    fx.write("a/b/deep.markdown", "intro\n\n# Deep title #\nbody");
    fx.write("a/b/picture.png", [0x89, b'P', b'N', b'G', 0, 1, 2]);
}

#[test]
fn a_nested_folder_adds_each_text_file_and_ignores_other_files() {
    let fx = Fixture::new();
    nested_folder(&fx);

    let report = fx.ingest_all();

    assert_eq!((report.added, report.updated, report.unchanged), (3, 0, 0));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(fx.titles(), ["Deep title", "Top heading", "plain"]);
}

#[test]
fn ingested_notes_record_their_canonical_source_and_are_searchable() {
    let fx = Fixture::new();
    let path = fx.write("top.md", "# Kayaks\nThe red kayak leaks.");

    fx.ingest_all();

    let notes = fx.store.list(&fx.user, 10, 0).expect("list");
    let expected = canonical(&path);
    assert_eq!(notes[0].source.as_deref(), expected.to_str());
    assert_eq!(notes[0].body, "# Kayaks\nThe red kayak leaks.");
    let found = fx
        .store
        .search(&fx.user, "leaking kayak", 5)
        .expect("search");
    assert_eq!(found.excerpts[0].note_id, notes[0].id);
}

#[test]
fn a_second_run_finds_everything_unchanged_and_keeps_the_generation() {
    let fx = Fixture::new();
    nested_folder(&fx);
    fx.ingest_all();
    let generation = fx.store.generation(&fx.user).expect("generation");

    let report = fx.ingest_all();

    assert_eq!((report.added, report.updated, report.unchanged), (0, 0, 3));
    assert_eq!(
        fx.store.generation(&fx.user).expect("generation"),
        generation
    );
    assert_eq!(fx.store.count(&fx.user).expect("count"), 3);
}

#[test]
fn an_edited_file_is_updated_in_place_and_bumps_the_generation() {
    let fx = Fixture::new();
    nested_folder(&fx);
    fx.ingest_all();
    let generation = fx.store.generation(&fx.user).expect("generation");

    fx.write("a/plain.txt", "Now about canoes.");
    let report = fx.ingest_all();

    assert_eq!((report.added, report.updated, report.unchanged), (0, 1, 2));
    assert!(fx.store.generation(&fx.user).expect("generation") > generation);
    assert_eq!(fx.store.count(&fx.user).expect("count"), 3);
    assert_eq!(
        fx.store
            .search(&fx.user, "canoes", 5)
            .expect("search")
            .excerpts
            .len(),
        1
    );
    assert!(
        fx.store
            .search(&fx.user, "paddles", 5)
            .expect("search")
            .excerpts
            .is_empty()
    );
}

#[test]
fn the_same_file_ingested_for_two_users_belongs_to_each() {
    let fx = Fixture::new();
    nested_folder(&fx);
    let bob = UserId::parse("bob").expect("valid user");

    fx.ingest_all();
    let report = ingest(&fx.store, &bob, &[fx.files.path().to_owned()], false).expect("ingest");

    assert_eq!(report.added, 3);
    assert_eq!(fx.store.count(&fx.user).expect("count"), 3);
}

#[test]
fn single_files_can_be_named_and_a_file_named_twice_is_taken_once() {
    let fx = Fixture::new();
    let md = fx.write("one.md", "# One\nfirst");
    let txt = fx.write("two.txt", "second");

    let report = ingest(&fx.store, &fx.user, &[md.clone(), txt, md], false).expect("ingest");

    assert_eq!(report.added, 2);
    assert_eq!(fx.titles(), ["One", "two"]);
}

#[test]
fn a_missing_path_is_an_io_error_naming_it_and_nothing_is_written() {
    let fx = Fixture::new();
    nested_folder(&fx);
    let missing = fx.files.path().join("no-such-notes");

    let err = ingest(
        &fx.store,
        &fx.user,
        &[fx.files.path().to_owned(), missing.clone()],
        false,
    )
    .expect_err("missing path");

    match &err {
        NotesError::Io { path, .. } => assert_eq!(path, &missing),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err.to_string().contains("no-such-notes"), "{err}");
    assert_eq!(fx.store.count(&fx.user).expect("count"), 0);
}

#[test]
fn empty_non_utf8_and_unsupported_files_are_skipped_with_a_reason() {
    let fx = Fixture::new();
    fx.write("good.md", "# Good\ntext");
    let empty = fx.write("empty.md", "  \n\n");
    let binary = fx.write("latin1.txt", [b'c', b'a', b'f', 0xE9]);
    let named_png = fx.write("image.png", [0x89, b'P', b'N', b'G']);

    let mut paths = vec![fx.files.path().to_owned(), named_png.clone()];
    paths.sort();
    let report = ingest(&fx.store, &fx.user, &paths, false).expect("ingest");

    assert_eq!(report.added, 1);
    let reason_for = |path: &Path| {
        let path = canonical(path);
        report
            .skipped
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, reason)| reason.clone())
            .unwrap_or_else(|| panic!("{} not skipped: {:?}", path.display(), report.skipped))
    };
    assert!(reason_for(&empty).contains("empty"));
    assert!(reason_for(&binary).contains("UTF-8"));
    assert!(reason_for(&named_png).contains(".md"));
    assert_eq!(report.skipped.len(), 3);
}

#[test]
fn hidden_entries_are_ignored_in_folders() {
    let fx = Fixture::new();
    fx.write("visible.md", "# Visible\ntext");
    fx.write(".git/notes.md", "# Hidden\ntext");
    fx.write(".draft.md", "# Draft\ntext");

    let report = fx.ingest_all();

    assert_eq!(report.added, 1);
    assert_eq!(fx.titles(), ["Visible"]);
}

#[test]
fn a_long_heading_is_cut_to_the_title_limit() {
    let fx = Fixture::new();
    fx.write("long.md", format!("# {}\nbody", "word ".repeat(200)));

    let report = fx.ingest_all();

    assert_eq!(report.added, 1);
    assert!(fx.titles()[0].chars().count() <= 300);
}

#[cfg(unix)]
#[test]
fn symlinked_folders_are_not_followed_so_a_cycle_terminates() {
    let fx = Fixture::new();
    fx.write("a/note.md", "# Note\ntext");
    std::os::unix::fs::symlink(fx.files.path(), fx.files.path().join("a/loop")).expect("symlink");
    std::os::unix::fs::symlink(
        fx.files.path().join("a/note.md"),
        fx.files.path().join("alias.md"),
    )
    .expect("symlink");

    let report = fx.ingest_all();

    assert_eq!(report.added, 1, "the file and its alias are one note");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
}

#[test]
fn a_folder_of_many_batches_is_written_and_indexed_whole() {
    // Ingest writes in batches of 512 while it reads the next and indexes the last; the
    // second batch here is all empty files, so it writes nothing.
    let fx = Fixture::new();
    for i in 0..1300 {
        let body = if (512..1024).contains(&i) {
            String::new()
        } else {
            format!("# Note {i}\nword{i} shared")
        };
        fx.write(&format!("n{i:04}.md"), body);
    }

    let report = fx.ingest_all();

    assert_eq!((report.added, report.skipped.len()), (788, 512));
    assert_eq!(fx.store.count(&fx.user).expect("count"), 788);
    for word in ["word0", "word511", "word1024", "word1299"] {
        let found = fx.store.search(&fx.user, word, 5).expect("search");
        assert_eq!(found.excerpts.len(), 1, "{word}");
    }
    assert!(
        fx.store
            .search(&fx.user, "word600", 5)
            .expect("search")
            .excerpts
            .is_empty()
    );
    assert_eq!(fx.ingest_all().unchanged, 788);
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_skipped_not_fatal() {
    use std::os::unix::fs::PermissionsExt;

    let fx = Fixture::new();
    fx.write("ok.md", "# Ok\ntext");
    let locked = fx.write("locked.md", "# Locked\ntext");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&locked).is_ok() {
        // Running as root: permissions do not stop reading, nothing to test.
        return;
    }

    let report = fx.ingest_all();

    assert_eq!(report.added, 1);
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].1.contains("could not read"),
        "{:?}",
        report.skipped
    );
}
