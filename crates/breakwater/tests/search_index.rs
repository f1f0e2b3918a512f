//! The SQLite store's search index (a tantivy directory beside the database file): derived
//! data that follows the database whoever writes it, and is rebuilt when it cannot be
//! trusted.

use std::path::{Path, PathBuf};

use breakwater::notes::{Notes, NotesStore, ingest};
use breakwater::user::UserId;

fn alice() -> UserId {
    UserId::parse("alice").expect("valid")
}

fn titles(store: &NotesStore, query: &str) -> Vec<String> {
    let found = store.search(&alice(), query, 20).expect("search");
    let mut titles: Vec<String> = found.excerpts.into_iter().map(|e| e.title).collect();
    titles.sort();
    titles
}

fn index_dir(db: &Path) -> PathBuf {
    db.with_file_name("notes.db-index")
}

/// A fresh folder, and the path of a database file in it.
fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("notes.db");
    (dir, db)
}

/// A store on `db` holding one note of Alice's, found: the index is committed.
fn with_kettle(db: &Path) -> NotesStore {
    let store = NotesStore::open(db).expect("open");
    store
        .create(&alice(), "Kettle", "descale with vinegar")
        .expect("create");
    assert_eq!(titles(&store, "descale"), ["Kettle"]);
    store
}

#[test]
fn writes_by_another_process_are_found_at_the_next_search() {
    let (_dir, db) = fresh();
    // The server keeps the index; a second store on the same file (as `breakwater ingest`
    // next to a running server) cannot take the index's writer lock, so it only writes the
    // database, and the keeper catches up from the change log.
    let server = with_kettle(&db);
    let other = NotesStore::open(&db).expect("open a second time");
    let added = other
        .create(&alice(), "Boiler", "descale the boiler yearly")
        .expect("create");
    assert_eq!(titles(&server, "descale"), ["Boiler", "Kettle"]);

    other
        .update(&alice(), &added.id, None, Some("bleed the radiators"))
        .expect("update");
    assert_eq!(titles(&server, "descale"), ["Kettle"]);
    assert_eq!(titles(&server, "radiators"), ["Boiler"]);
    other.delete(&alice(), &added.id).expect("delete");
    assert!(titles(&server, "radiators").is_empty());
}

#[test]
fn a_reused_rowid_never_brings_back_the_deleted_note() {
    // SQLite gives a new note the rowid of a deleted last one; the index must drop the old
    // document (indexing skips the delete only for rowids it never had).
    for search_between in [true, false] {
        let (_dir, db) = fresh();
        let store = NotesStore::open(&db).expect("open");
        let gone = store.create(&alice(), "Gone", "descale").expect("create");
        if search_between {
            assert_eq!(titles(&store, "descale"), ["Gone"]);
        }
        store.delete(&alice(), &gone.id).expect("delete");
        store.create(&alice(), "Kept", "radiators").expect("create");
        assert!(titles(&store, "descale").is_empty(), "{search_between}");
        assert_eq!(titles(&store, "radiators"), ["Kept"]);
    }
}

#[test]
fn an_edit_after_reopening_replaces_the_indexed_text() {
    let (_dir, db) = fresh();
    let kettle = with_kettle(&db)
        .list(&alice(), 1, 0)
        .expect("list")
        .remove(0);
    // A new process: what it knows of the index comes from the committed segments.
    let store = NotesStore::open(&db).expect("reopen");
    store
        .update(&alice(), &kettle.id, None, Some("fill with water"))
        .expect("update");
    assert!(titles(&store, "descale").is_empty());
    assert_eq!(titles(&store, "water"), ["Kettle"]);
}

#[test]
fn ingests_run_one_after_another_leave_the_index_merged() {
    // As `breakwater ingest` does it: each run a process of its own, which finishes the
    // store before it exits. Without that, tantivy drops the merges each commit starts and
    // every run adds a segment for every later search to visit.
    let (dir, db) = fresh();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for run in 0..12 {
        let folder = dir.path().join(format!("run{run}"));
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::write(folder.join("n.md"), format!("# Run {run}\nkettle {run}")).expect("write");
        let store = NotesStore::open(&db).expect("open");
        runtime.block_on(async {
            ingest(&store, &alice(), &[folder], false)
                .await
                .expect("ingest");
            store.finish().await.expect("finish");
        });
    }
    let meta = std::fs::read_to_string(index_dir(&db).join("meta.json")).expect("meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("json");
    let segments = meta["segments"].as_array().expect("segments").len();
    assert!(segments < 8, "{segments} segments after 12 runs");
    assert_eq!(
        titles(&NotesStore::open(&db).expect("open"), "kettle").len(),
        12
    );
}

#[test]
fn a_lost_index_is_rebuilt_from_the_notes() {
    let (_dir, db) = fresh();
    {
        let store = with_kettle(&db);
        store
            .create(&alice(), "Bread", "feed the starter")
            .expect("create");
        assert_eq!(titles(&store, "descale starter"), ["Bread", "Kettle"]);
    }
    std::fs::remove_dir_all(index_dir(&db)).expect("remove the index");
    let store = NotesStore::open(&db).expect("reopen");
    assert_eq!(titles(&store, "descale starter"), ["Bread", "Kettle"]);
}

#[test]
fn an_index_left_beside_another_database_is_not_trusted() {
    let (dir, db) = fresh();
    drop(with_kettle(&db));
    // A new database file in the old one's place, with the old index beside it: the same
    // change numbers, other notes.
    for file in ["notes.db", "notes.db-wal", "notes.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(file));
    }
    let store = NotesStore::open(&db).expect("open the new file");
    store
        .create(&alice(), "Garden", "water the tomatoes")
        .expect("create");
    assert!(
        titles(&store, "descale").is_empty(),
        "the old file's note is gone"
    );
    assert_eq!(titles(&store, "tomatoes"), ["Garden"]);
}

#[test]
fn a_damaged_index_is_rebuilt() {
    let (_dir, db) = fresh();
    drop(with_kettle(&db));
    std::fs::write(index_dir(&db).join("meta.json"), b"{ not json").expect("damage");
    let store = NotesStore::open(&db).expect("reopen");
    assert_eq!(titles(&store, "descale"), ["Kettle"]);
}

#[test]
fn the_change_log_is_pruned_and_search_stays_right() {
    let (_dir, db) = fresh();
    let store = NotesStore::open(&db).expect("open");
    let mut last = None;
    for i in 0..1_500 {
        let note = store
            .create(&alice(), &format!("Note {i}"), &format!("entry number{i}"))
            .expect("create");
        if i % 100 == 0 {
            // Each search commits the index up to here, which lets the next write prune.
            assert_eq!(titles(&store, &format!("number{i}")), [format!("Note {i}")]);
        }
        last = Some(note);
    }
    let conn = rusqlite::Connection::open(&db).expect("open directly");
    let logged: i64 = conn
        .query_row("SELECT count(*) FROM note_changes", [], |row| row.get(0))
        .expect("count");
    assert!(logged < 1_500, "the log was pruned: {logged} entries left");
    store
        .delete(&alice(), &last.expect("written").id)
        .expect("delete");
    assert!(titles(&store, "number1499").is_empty());
    assert_eq!(titles(&store, "number1498"), ["Note 1498"]);
    assert_eq!(store.count(&alice()).expect("count"), 1_499);
}

#[test]
fn a_search_now_runs_only_on_an_index_that_needs_no_catching_up() {
    let (_dir, db) = fresh();
    let store = with_kettle(&db);
    let now = |query| {
        store
            .search_now(&alice(), query, 5)
            .map(|found| found.expect("search").excerpts.len())
    };
    assert_eq!(now("descale"), Some(1), "the index is current");
    assert_eq!(now("   "), Some(0), "no searchable word");
    // A write the index does not hold yet: indexing it is left to the blocking pool.
    store
        .create(&alice(), "Boiler", "descale the boiler yearly")
        .expect("create");
    assert_eq!(now("descale"), None);
    assert_eq!(titles(&store, "descale"), ["Boiler", "Kettle"]);
    assert_eq!(now("descale"), Some(2), "caught up by the search before");
}
