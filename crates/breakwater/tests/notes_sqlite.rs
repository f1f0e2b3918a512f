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

/// Milliseconds since the Unix epoch of a `created_at` (`YYYY-MM-DDTHH:MM:SS.fffZ`).
fn epoch_ms(stamp: &str) -> i64 {
    let field = |range: std::ops::Range<usize>| stamp[range].parse::<i64>().expect("a number");
    let (y, m, d) = (field(0..4), field(5..7), field(8..10));
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (March-based years).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = field(11..13) * 3600 + field(14..16) * 60 + field(17..19);
    (days * 86_400 + seconds) * 1000 + field(20..23)
}

#[test]
fn a_note_id_starts_with_its_creation_time_so_new_ids_sort_last() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    for title in ["first", "second", "third"] {
        let note = store.create(&alice, title, "body").expect("create");
        assert_eq!(note.id.len(), 32, "{}", note.id);
        assert!(
            note.id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{}",
            note.id
        );
        let ms = i64::from_str_radix(&note.id[..12], 16).expect("hex");
        assert_eq!(ms, epoch_ms(&note.created_at), "{note:?}");
    }
    assert_eq!(epoch_ms("1970-01-01T00:00:00.001Z"), 1);
    assert_eq!(epoch_ms("2026-12-02T15:10:25.897Z"), 1_796_224_225_897);
}
