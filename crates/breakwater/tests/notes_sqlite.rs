//! What only the SQLite store does: a file that outlives the process, clones sharing it,
//! its synchronous API used from threads while a writer writes. The behaviour every store
//! shares is in `notes_backends.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use breakwater::notes::{NotesError, NotesStore};
use breakwater::user::UserId;
use tempfile::TempDir;

fn open_store() -> (TempDir, NotesStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("notes.db")).expect("open store");
    (dir, store)
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
}

#[test]
fn notes_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.db");
    let alice = user("alice");
    let note = {
        let store = NotesStore::open(&path).expect("open");
        store
            .create(&alice, "kept", "across restarts")
            .expect("create")
    };

    let store = NotesStore::open(&path).expect("reopen is idempotent");
    assert_eq!(store.get(&alice, &note.id).expect("get"), note);
    assert_eq!(store.generation(&alice).expect("generation"), 1);
    assert_eq!(
        store
            .search(&alice, "restarts", 1)
            .expect("search")
            .excerpts
            .len(),
        1
    );
}

#[test]
fn a_clone_shares_the_same_database() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let clone = store.clone();
    let note = clone.create(&alice, "t", "b").expect("create");
    assert_eq!(store.get(&alice, &note.id).expect("get"), note);
}

#[test]
fn opening_a_path_in_a_missing_folder_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("missing").join("notes.db");
    let err = NotesStore::open(&path).expect_err("folder does not exist");
    assert!(matches!(err, NotesError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.db"), "{err}");
}

fn seeded() -> (TempDir, NotesStore, UserId) {
    let (dir, store) = open_store();
    let alice = user("alice");
    store
        .create(
            &alice,
            "Sourdough starter",
            "Feed the starter with flour and water every day.",
        )
        .expect("create");
    store
        .create(
            &alice,
            "Garden",
            "Water the tomatoes; the starter plants need shade.",
        )
        .expect("create");
    store
        .create(&alice, "Taxes", "File the return before April.")
        .expect("create");
    (dir, store, alice)
}

#[test]
fn concurrent_searches_work_while_a_writer_writes() {
    let (_dir, store, alice) = seeded();
    let writing = Arc::new(AtomicBool::new(true));

    let writer = {
        let store = store.clone();
        let alice = alice.clone();
        let writing = Arc::clone(&writing);
        thread::spawn(move || {
            for i in 0..200 {
                store
                    .create(&alice, &format!("Starter {i}"), "more starter notes")
                    .expect("create while others search");
            }
            writing.store(false, Ordering::Release);
        })
    };
    let searchers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            let alice = alice.clone();
            let writing = Arc::clone(&writing);
            thread::spawn(move || {
                let mut last_generation = 0;
                let mut searches = 0;
                while writing.load(Ordering::Acquire) || searches < 20 {
                    let result = store.search(&alice, "starter", 5).expect("search");
                    assert!(
                        result.generation >= last_generation,
                        "generations never go back"
                    );
                    assert!(!result.excerpts.is_empty());
                    last_generation = result.generation;
                    searches += 1;
                }
            })
        })
        .collect();

    writer.join().expect("writer thread");
    for searcher in searchers {
        searcher.join().expect("searcher thread");
    }
    assert_eq!(store.count(&alice).expect("count"), 203);
}
