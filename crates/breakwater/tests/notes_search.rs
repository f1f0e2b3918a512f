//! Retrieval: ranking, per-user isolation, hostile queries, concurrency.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use breakwater::notes::{MAX_SEARCH_RESULTS, NotesStore};
use breakwater::user::UserId;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tempfile::TempDir;

fn open_store() -> (TempDir, NotesStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("notes.db")).expect("open store");
    (dir, store)
}

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
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
fn the_more_relevant_note_ranks_first() {
    let (_dir, store, alice) = seeded();

    let result = store
        .search(&alice, "how do I feed my sourdough starter?", 5)
        .expect("search");

    let titles: Vec<&str> = result.excerpts.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["Sourdough starter", "Garden"]);
    assert!(result.excerpts[0].score > result.excerpts[1].score);
    assert!(
        result.excerpts.iter().all(|e| e.score > 0.0),
        "higher is better"
    );
}

#[test]
fn a_title_match_outranks_the_same_word_in_a_body() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    store
        .create(&alice, "Notes", "Something about kayaks.")
        .expect("create");
    let titled = store
        .create(&alice, "Kayaks", "Something about boats.")
        .expect("create");

    let result = store.search(&alice, "kayaks", 5).expect("search");

    assert_eq!(result.excerpts[0].note_id, titled.id);
    assert_eq!(
        result.excerpts[0].excerpt, "Something about boats.",
        "a title-only match still shows the body"
    );
}

#[test]
fn stemming_and_diacritics_are_folded() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    store
        .create(&alice, "Café", "We were running late.")
        .expect("create");

    assert_eq!(
        store
            .search(&alice, "cafe", 5)
            .expect("search")
            .excerpts
            .len(),
        1
    );
    assert_eq!(
        store
            .search(&alice, "runs", 5)
            .expect("search")
            .excerpts
            .len(),
        1
    );
}

#[test]
fn excerpts_come_from_the_body_without_markup() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let body = format!(
        "{} the kayak is red. {}",
        "filler ".repeat(100),
        "more ".repeat(100)
    );
    store.create(&alice, "Boats", &body).expect("create");

    let result = store.search(&alice, "kayak", 1).expect("search");
    let excerpt = &result.excerpts[0].excerpt;

    assert!(excerpt.contains("kayak"), "{excerpt}");
    assert!(excerpt.contains('…'), "a cut passage is marked: {excerpt}");
    assert!(
        !excerpt.contains('<') && !excerpt.contains('['),
        "{excerpt}"
    );
    assert!(excerpt.split_whitespace().count() <= 40, "{excerpt}");
}

#[test]
fn k_is_clamped_to_one_through_twenty() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    for i in 0..25 {
        store
            .create(&alice, &format!("n{i}"), "common word")
            .expect("create");
    }

    assert_eq!(
        store
            .search(&alice, "common", 0)
            .expect("search")
            .excerpts
            .len(),
        1
    );
    assert_eq!(
        store
            .search(&alice, "common", 1000)
            .expect("search")
            .excerpts
            .len(),
        MAX_SEARCH_RESULTS
    );
}

#[test]
fn a_query_without_words_is_an_empty_result_with_the_generation() {
    let (_dir, store, alice) = seeded();

    let result = store.search(&alice, "  ?! the of  ", 5).expect("search");

    assert!(result.excerpts.is_empty());
    assert_eq!(
        result.generation,
        store.generation(&alice).expect("generation")
    );
}

#[test]
fn search_reports_the_generation_of_the_notes_it_read() {
    let (_dir, store, alice) = seeded();
    let before = store.search(&alice, "starter", 5).expect("search");

    store
        .create(&alice, "Starter culture", "starter starter")
        .expect("create");
    let after = store.search(&alice, "starter", 5).expect("search");

    assert!(after.generation > before.generation);
    assert_eq!(after.excerpts.len(), before.excerpts.len() + 1);
}

#[test]
fn deleted_and_updated_notes_are_reindexed() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let note = store.create(&alice, "Old", "zebra").expect("create");

    store
        .update(&alice, &note.id, None, Some("giraffe"))
        .expect("update");
    assert!(
        store
            .search(&alice, "zebra", 5)
            .expect("search")
            .excerpts
            .is_empty()
    );
    assert_eq!(
        store
            .search(&alice, "giraffe", 5)
            .expect("search")
            .excerpts
            .len(),
        1
    );

    store.delete(&alice, &note.id).expect("delete");
    assert!(
        store
            .search(&alice, "giraffe", 5)
            .expect("search")
            .excerpts
            .is_empty()
    );
}

#[test]
fn hostile_queries_return_ok() {
    let (_dir, store, alice) = seeded();
    let long = "starter ".repeat(1300);
    let hostile = [
        "\"",
        "\"unbalanced",
        "\"\"",
        "starter AND",
        "OR OR OR",
        "NOT starter",
        "NEAR(starter water",
        "NEAR(starter water, 2)",
        "star*",
        "*",
        "^starter",
        "title:starter",
        "body: water",
        "notes_fts:water",
        "((starter",
        "starter))",
        "{title body}: water",
        "- starter",
        "+",
        "🦀🍞 starter 🦀",
        "'; DROP TABLE notes; --",
        "\" OR 1=1 --",
        "\0starter\0",
        "starter\u{301}",
        "\u{202e}retrats",
        "\u{345} \u{345}\u{345}",
        "Ⅷ ² ½ ٣ 𝟎",
        "ǅ ß ﬁ İ",
        long.as_str(),
    ];
    for query in hostile {
        let result = store.search(&alice, query, 5);
        assert!(result.is_ok(), "{query:?} gave {result:?}");
    }
    assert_eq!(
        store.count(&alice).expect("count"),
        3,
        "the notes are all still there"
    );
    assert_eq!(
        store
            .search(&alice, &long, 5)
            .expect("search")
            .excerpts
            .len(),
        2
    );
}

#[test]
fn arbitrary_strings_never_make_search_fail() {
    let (_dir, store, alice) = seeded();
    let strategy = prop_oneof![
        any::<String>(),
        "[\"*^:(){}+\\-' a-zA-Z0-9]{0,40}",
        proptest::collection::vec(
            prop_oneof![
                Just("AND"),
                Just("OR"),
                Just("NOT"),
                Just("NEAR("),
                Just("\""),
                Just("*"),
                Just("^"),
                Just(":"),
                Just("("),
                Just(")"),
                Just("starter"),
                Just("title:"),
                Just("é"),
                Just("\u{301}"),
                Just("🦀"),
                Just(" "),
            ],
            0..20,
        )
        .prop_map(|parts| parts.concat()),
    ];
    let mut runner = TestRunner::new(Config::with_cases(512));
    runner
        .run(&strategy, |query| {
            let result = store.search(&alice, &query, 5);
            prop_assert!(result.is_ok(), "{:?} gave {:?}", query, result);
            Ok(())
        })
        .expect("search never fails on user text");
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
