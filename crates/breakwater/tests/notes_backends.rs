//! One suite for every notes store: CRUD, isolation between users, generations, validation,
//! ranking, hostile queries and concurrency, run against SQLite and against a real
//! PostgreSQL (a fresh database per test; see `pg_common`).

mod pg_common;

use std::sync::Arc;

use breakwater::notes::{
    MAX_BODY_BYTES, MAX_SEARCH_RESULTS, MAX_TITLE_CHARS, NoteVersion, NotesError, NotesStore,
    PgNotes, SharedNotes,
};
use breakwater::user::UserId;
use pg_common::TestDatabase;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// What keeps a backend's data alive for the test: its folder or its database.
enum Keep {
    Dir(#[allow(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Database(#[allow(dead_code, reason = "held for its Drop")] TestDatabase),
}

async fn sqlite() -> (Keep, SharedNotes) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("notes.db")).expect("open store");
    (Keep::Dir(dir), Arc::new(store))
}

async fn postgres() -> Option<(Keep, SharedNotes)> {
    let database = TestDatabase::create().await?;
    let store = PgNotes::connect(database.url(), std::time::Duration::from_secs(5))
        .await
        .expect("connect and migrate");
    Some((Keep::Database(database), Arc::new(store)))
}

/// Each test, once per backend: `<test>::sqlite` and `<test>::postgres`.
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (_keep, store) = super::sqlite().await;
                super::$test(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((_keep, store)) = super::postgres().await {
                    super::$test(store).await;
                }
            }
        }
    )*};
}

on_every_backend!(
    create_get_update_delete_round_trip,
    update_with_nothing_to_change_returns_the_note_without_writing,
    another_users_note_is_not_found_for_get_update_and_delete,
    another_users_notes_never_appear_in_list_count_or_search,
    list_is_newest_first_and_pages_with_limit_and_offset,
    generation_starts_at_zero_and_bumps_on_create_update_and_delete,
    generation_does_not_move_on_reads_or_on_other_users_writes,
    failed_writes_do_not_bump_the_generation,
    validation_errors_name_the_field,
    limits_are_inclusive,
    the_more_relevant_note_ranks_first,
    a_title_match_is_found_and_shows_the_body,
    another_users_writes_never_change_a_users_results,
    stemming_and_diacritics_are_folded,
    excerpts_come_from_the_body_without_markup,
    k_is_clamped_to_one_through_twenty,
    a_query_without_words_is_an_empty_result_with_the_generation,
    search_reports_the_generation_of_the_notes_it_read,
    deleted_and_updated_notes_are_reindexed,
    hostile_queries_return_ok,
    arbitrary_strings_never_make_search_fail,
    concurrent_searches_work_while_a_writer_writes,
    a_stale_answer_rests_on_notes_that_are_still_current,
    ingested_files_are_added_updated_and_left_alone,
);

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("valid user id")
}

/// Three notes of alice's: two about a starter, one about taxes.
async fn seed(store: &SharedNotes) -> UserId {
    let alice = user("alice");
    for (title, body) in [
        (
            "Sourdough starter",
            "Feed the starter with flour and water every day.",
        ),
        (
            "Garden",
            "Water the tomatoes; the starter plants need shade.",
        ),
        ("Taxes", "File the return before April."),
    ] {
        store.create(&alice, title, body).await.expect("create");
    }
    alice
}

async fn create_get_update_delete_round_trip(store: SharedNotes) {
    let alice = user("alice");

    let created = store
        .create(&alice, "  Bread  ", "Flour, water, salt.")
        .await
        .expect("create");
    assert_eq!(created.title, "Bread", "title is stored trimmed");
    assert_eq!(created.user_id, "alice");
    assert_eq!(created.source, None);
    assert_eq!(created.id.len(), 32);
    assert!(
        created
            .id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );

    assert_eq!(store.get(&alice, &created.id).await.expect("get"), created);

    let renamed = store
        .update(&alice, &created.id, Some("Sourdough"), None)
        .await
        .expect("update title");
    assert_eq!(renamed.title, "Sourdough");
    assert_eq!(renamed.body, "Flour, water, salt.");
    assert_eq!(renamed.created_at, created.created_at);
    let rewritten = store
        .update(
            &alice,
            &created.id,
            None,
            Some("Flour, water, salt, starter."),
        )
        .await
        .expect("update body");
    assert_eq!(rewritten.title, "Sourdough");
    assert_eq!(rewritten.body, "Flour, water, salt, starter.");
    assert_eq!(
        store.get(&alice, &created.id).await.expect("get"),
        rewritten
    );

    store.delete(&alice, &created.id).await.expect("delete");
    assert!(matches!(
        store.get(&alice, &created.id).await,
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.delete(&alice, &created.id).await,
        Err(NotesError::NotFound)
    ));
}

async fn update_with_nothing_to_change_returns_the_note_without_writing(store: SharedNotes) {
    let alice = user("alice");
    let note = store.create(&alice, "t", "b").await.expect("create");
    let before = store.generation(&alice).await.expect("generation");

    assert_eq!(
        store
            .update(&alice, &note.id, None, None)
            .await
            .expect("update"),
        note
    );
    assert_eq!(store.generation(&alice).await.expect("generation"), before);
}

async fn another_users_note_is_not_found_for_get_update_and_delete(store: SharedNotes) {
    let alice = user("alice");
    let mallory = user("mallory");
    let note = store
        .create(&alice, "Secret", "The vault code is 1234.")
        .await
        .expect("create");

    assert!(matches!(
        store.get(&mallory, &note.id).await,
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.update(&mallory, &note.id, Some("pwned"), None).await,
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.delete(&mallory, &note.id).await,
        Err(NotesError::NotFound)
    ));
    assert_eq!(
        store.get(&alice, &note.id).await.expect("still there"),
        note
    );
}

async fn another_users_notes_never_appear_in_list_count_or_search(store: SharedNotes) {
    let alice = user("alice");
    let mallory = user("mallory");
    store
        .create(&alice, "Secret", "The vault code is 1234.")
        .await
        .expect("create");

    assert!(store.list(&mallory, 100, 0).await.expect("list").is_empty());
    assert_eq!(store.count(&mallory).await.expect("count"), 0);
    let result = store
        .search(&mallory, "vault code secret", 20)
        .await
        .expect("search");
    assert!(result.excerpts.is_empty());
    assert_eq!(result.generation, 0);
}

async fn list_is_newest_first_and_pages_with_limit_and_offset(store: SharedNotes) {
    let alice = user("alice");
    let mut ids = Vec::new();
    for i in 0..5 {
        let note = store.create(&alice, &format!("n{i}"), "body").await;
        ids.push(note.expect("create").id);
    }

    let all: Vec<String> = store
        .list(&alice, 10, 0)
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);

    let page: Vec<String> = store
        .list(&alice, 2, 1)
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(page, newest_first[1..3]);
    assert!(store.list(&alice, 0, 0).await.expect("list").is_empty());
    assert!(
        store
            .list(&alice, usize::MAX, usize::MAX)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.count(&alice).await.expect("count"), 5);
}

async fn generation_starts_at_zero_and_bumps_on_create_update_and_delete(store: SharedNotes) {
    let alice = user("alice");
    assert_eq!(store.generation(&alice).await.expect("generation"), 0);

    let note = store.create(&alice, "t", "b").await.expect("create");
    let after_create = store.generation(&alice).await.expect("generation");
    assert!(after_create > 0);

    store
        .update(&alice, &note.id, Some("t2"), None)
        .await
        .expect("update");
    let after_update = store.generation(&alice).await.expect("generation");
    assert!(after_update > after_create);

    store.delete(&alice, &note.id).await.expect("delete");
    assert!(store.generation(&alice).await.expect("generation") > after_update);
}

async fn generation_does_not_move_on_reads_or_on_other_users_writes(store: SharedNotes) {
    let alice = user("alice");
    let bob = user("bob");
    let note = store
        .create(&alice, "t", "body words")
        .await
        .expect("create");
    let before = store.generation(&alice).await.expect("generation");

    store.get(&alice, &note.id).await.expect("get");
    store.list(&alice, 10, 0).await.expect("list");
    store.count(&alice).await.expect("count");
    store.search(&alice, "body", 5).await.expect("search");
    store.create(&bob, "t", "b").await.expect("bob writes");

    assert_eq!(store.generation(&alice).await.expect("generation"), before);
}

async fn failed_writes_do_not_bump_the_generation(store: SharedNotes) {
    let alice = user("alice");
    let note = store.create(&alice, "t", "b").await.expect("create");
    let before = store.generation(&alice).await.expect("generation");

    assert!(
        store
            .update(&alice, &note.id, Some(" "), None)
            .await
            .is_err()
    );
    assert!(
        store
            .update(&alice, "no-such-id", Some("x"), None)
            .await
            .is_err()
    );
    assert!(store.delete(&alice, "no-such-id").await.is_err());

    assert_eq!(store.generation(&alice).await.expect("generation"), before);
}

async fn validation_errors_name_the_field(store: SharedNotes) {
    let alice = user("alice");
    let field_of = |err: NotesError| match err {
        NotesError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    };

    let cases = [
        ("", "body", "title"),
        ("   \n", "body", "title"),
        (&*"x".repeat(MAX_TITLE_CHARS + 1), "body", "title"),
        ("title", "", "body"),
        ("title", " \t\n", "body"),
        ("title", &*"x".repeat(MAX_BODY_BYTES + 1), "body"),
    ];
    for (title, body, field) in cases {
        let err = store
            .create(&alice, title, body)
            .await
            .expect_err("invalid input");
        assert!(err.to_string().contains(field), "{err}");
        assert_eq!(field_of(err), field);
    }

    let note = store.create(&alice, "ok", "ok").await.expect("create");
    let err = store
        .update(&alice, &note.id, None, Some(""))
        .await
        .expect_err("empty body");
    assert_eq!(field_of(err), "body");
    assert_eq!(store.count(&alice).await.expect("count"), 1);
}

async fn limits_are_inclusive(store: SharedNotes) {
    let alice = user("alice");
    store
        .create(
            &alice,
            &"é".repeat(MAX_TITLE_CHARS),
            &"x".repeat(MAX_BODY_BYTES),
        )
        .await
        .expect("title and body at their limits are accepted");
}

async fn the_more_relevant_note_ranks_first(store: SharedNotes) {
    let alice = seed(&store).await;

    let result = store
        .search(&alice, "how do I feed my sourdough starter?", 5)
        .await
        .expect("search");

    let titles: Vec<&str> = result.excerpts.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(titles, ["Sourdough starter", "Garden"]);
    assert!(result.excerpts[0].score > result.excerpts[1].score);
    assert!(
        result.excerpts.iter().all(|e| e.score > 0.0),
        "higher is better"
    );
}

async fn a_title_match_is_found_and_shows_the_body(store: SharedNotes) {
    let alice = user("alice");
    let in_body = store
        .create(&alice, "Notes", "Something about kayaks.")
        .await
        .expect("create");
    let titled = store
        .create(&alice, "Kayaks", "Something about boats.")
        .await
        .expect("create");

    let result = store.search(&alice, "kayaks", 5).await.expect("search");

    let mut found: Vec<&str> = result.excerpts.iter().map(|e| e.note_id.as_str()).collect();
    found.sort_unstable();
    let mut expected = [in_body.id.as_str(), titled.id.as_str()];
    expected.sort_unstable();
    assert_eq!(found, expected);
    let title_only = result
        .excerpts
        .iter()
        .find(|e| e.note_id == titled.id)
        .expect("found");
    assert_eq!(
        title_only.excerpt, "Something about boats.",
        "a title-only match still shows the body"
    );
}

/// The privacy half of ranking: with bm25 statistics over every user's notes, one user could
/// measure what others write (Eve's score fell from 2.93 to 0.57 when Mallory wrote the word
/// 12 times). Eve's results must not change by a byte, whatever Mallory writes, edits or
/// deletes, and however the index's segments are merged meanwhile.
async fn another_users_writes_never_change_a_users_results(store: SharedNotes) {
    let (eve, mallory) = (user("eve"), user("mallory"));
    let mut eves = Vec::new();
    for i in 0..8 {
        let body = format!(
            "Descale the kettle{} with vinegar; {} cups of water.",
            " again".repeat(i % 3),
            i + 1
        );
        eves.push(
            store
                .create(&eve, &format!("Kettle {i}"), &body)
                .await
                .expect("create"),
        );
    }
    // A deleted note of Eve's stays in the index's segments until a merge drops it.
    store.delete(&eve, &eves[3].id).await.expect("delete");
    let question = "how do I descale the kettle with vinegar";
    let results = |store: SharedNotes| {
        let eve = eve.clone();
        async move {
            let found = store.search(&eve, question, 10).await.expect("search");
            serde_json::to_string(&found.excerpts).expect("serialise")
        }
    };
    let before = results(Arc::clone(&store)).await;
    assert!(before.contains("Kettle"), "{before}");

    let mut malloreys = Vec::new();
    for i in 0..40 {
        let note = store
            .create(
                &mallory,
                &format!("kettle {i}"),
                "kettle kettle descale vinegar kettle",
            )
            .await
            .expect("create");
        // Each search commits what was written: many small segments, and merges.
        store.search(&mallory, "kettle", 5).await.expect("search");
        if i % 3 == 0 {
            store
                .update(&mallory, &note.id, None, Some("vinegar everywhere"))
                .await
                .expect("update");
        }
        malloreys.push(note);
    }
    for note in malloreys.iter().step_by(4) {
        store.delete(&mallory, &note.id).await.expect("delete");
    }
    store
        .delete_all(&user("nobody"))
        .await
        .expect("delete nothing");

    assert_eq!(results(Arc::clone(&store)).await, before);
}

async fn stemming_and_diacritics_are_folded(store: SharedNotes) {
    let alice = user("alice");
    store
        .create(&alice, "Café", "We were running late.")
        .await
        .expect("create");

    assert_eq!(
        store
            .search(&alice, "cafe", 5)
            .await
            .expect("search")
            .excerpts
            .len(),
        1
    );
    assert_eq!(
        store
            .search(&alice, "runs", 5)
            .await
            .expect("search")
            .excerpts
            .len(),
        1
    );
}

async fn excerpts_come_from_the_body_without_markup(store: SharedNotes) {
    let alice = user("alice");
    let body = format!(
        "{} the kayak is red. {}",
        "filler ".repeat(100),
        "more ".repeat(100)
    );
    store.create(&alice, "Boats", &body).await.expect("create");

    let result = store.search(&alice, "kayak", 1).await.expect("search");
    let excerpt = &result.excerpts[0].excerpt;

    assert!(excerpt.contains("kayak"), "{excerpt}");
    assert!(excerpt.contains('…'), "a cut passage is marked: {excerpt}");
    assert!(
        !excerpt.contains('<') && !excerpt.contains('['),
        "{excerpt}"
    );
    assert!(excerpt.split_whitespace().count() <= 40, "{excerpt}");
}

async fn k_is_clamped_to_one_through_twenty(store: SharedNotes) {
    let alice = user("alice");
    for i in 0..25 {
        store
            .create(&alice, &format!("n{i}"), "common word")
            .await
            .expect("create");
    }

    assert_eq!(
        store
            .search(&alice, "common", 0)
            .await
            .expect("search")
            .excerpts
            .len(),
        1
    );
    assert_eq!(
        store
            .search(&alice, "common", 1000)
            .await
            .expect("search")
            .excerpts
            .len(),
        MAX_SEARCH_RESULTS
    );
}

async fn a_query_without_words_is_an_empty_result_with_the_generation(store: SharedNotes) {
    let alice = seed(&store).await;

    let result = store
        .search(&alice, "  ?! the of  ", 5)
        .await
        .expect("search");

    assert!(result.excerpts.is_empty());
    assert_eq!(
        result.generation,
        store.generation(&alice).await.expect("generation")
    );
}

async fn search_reports_the_generation_of_the_notes_it_read(store: SharedNotes) {
    let alice = seed(&store).await;
    let before = store.search(&alice, "starter", 5).await.expect("search");

    store
        .create(&alice, "Starter culture", "starter starter")
        .await
        .expect("create");
    let after = store.search(&alice, "starter", 5).await.expect("search");

    assert!(after.generation > before.generation);
    assert_eq!(after.excerpts.len(), before.excerpts.len() + 1);
}

async fn deleted_and_updated_notes_are_reindexed(store: SharedNotes) {
    let alice = user("alice");
    let note = store.create(&alice, "Old", "zebra").await.expect("create");

    store
        .update(&alice, &note.id, None, Some("giraffe"))
        .await
        .expect("update");
    assert!(
        store
            .search(&alice, "zebra", 5)
            .await
            .expect("search")
            .excerpts
            .is_empty()
    );
    assert_eq!(
        store
            .search(&alice, "giraffe", 5)
            .await
            .expect("search")
            .excerpts
            .len(),
        1
    );

    store.delete(&alice, &note.id).await.expect("delete");
    assert!(
        store
            .search(&alice, "giraffe", 5)
            .await
            .expect("search")
            .excerpts
            .is_empty()
    );
}

async fn hostile_queries_return_ok(store: SharedNotes) {
    let alice = seed(&store).await;
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
        let result = store.search(&alice, query, 5).await;
        assert!(result.is_ok(), "{query:?} gave {result:?}");
    }
    assert_eq!(
        store.count(&alice).await.expect("count"),
        3,
        "the notes are all still there"
    );
    assert_eq!(
        store
            .search(&alice, &long, 5)
            .await
            .expect("search")
            .excerpts
            .len(),
        2
    );
}

async fn arbitrary_strings_never_make_search_fail(store: SharedNotes) {
    let alice = seed(&store).await;
    let strategy = prop_oneof![
        any::<String>(),
        "[\"*^:(){}+\\-'&|!<> a-zA-Z0-9]{0,40}",
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
                Just("&"),
                Just("|"),
                Just("!"),
                Just("<->"),
                Just(":*"),
                Just("'"),
                Just("\\"),
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
    // The queries are drawn up front: proptest's runner is synchronous, the store is not.
    let mut runner = TestRunner::deterministic();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    for _ in 0..cases {
        let query = strategy.new_tree(&mut runner).expect("a query").current();
        let result = store.search(&alice, &query, 5).await;
        assert!(result.is_ok(), "{query:?} gave {result:?}");
    }
}

async fn concurrent_searches_work_while_a_writer_writes(store: SharedNotes) {
    let alice = seed(&store).await;
    let writer = {
        let (store, alice) = (Arc::clone(&store), alice.clone());
        tokio::spawn(async move {
            for i in 0..100 {
                store
                    .create(&alice, &format!("Starter {i}"), "more starter notes")
                    .await
                    .expect("create while others search");
            }
        })
    };
    let searchers: Vec<_> = (0..4)
        .map(|_| {
            let (store, alice) = (Arc::clone(&store), alice.clone());
            tokio::spawn(async move {
                let mut last_generation = 0;
                for _ in 0..30 {
                    let result = store.search(&alice, "starter", 5).await.expect("search");
                    assert!(
                        result.generation >= last_generation,
                        "generations never go back"
                    );
                    assert!(!result.excerpts.is_empty());
                    last_generation = result.generation;
                }
            })
        })
        .collect();
    writer.await.expect("writer task");
    for searcher in searchers {
        searcher.await.expect("searcher task");
    }
    assert_eq!(store.count(&alice).await.expect("count"), 103);
}

async fn a_stale_answer_rests_on_notes_that_are_still_current(store: SharedNotes) {
    let alice = seed(&store).await;
    let found = store.search(&alice, "starter", 5).await.expect("search");
    assert!(
        store
            .still_current(&alice, &found.versions)
            .await
            .expect("check")
    );
    assert!(
        !store.still_current(&alice, &[]).await.expect("check"),
        "an answer resting on nothing is not served from memory"
    );
    assert!(
        !store
            .still_current(&user("mallory"), &found.versions)
            .await
            .expect("check"),
        "another user's notes do not count"
    );
    let first = &found.versions[0];
    store
        .update(&alice, &first.note_id, None, Some("Feed it rye."))
        .await
        .expect("edit");
    assert!(
        !store
            .still_current(&alice, &found.versions)
            .await
            .expect("check")
    );
    let edited = NoteVersion {
        note_id: first.note_id.clone(),
        content_hash: store
            .search(&alice, "rye", 1)
            .await
            .expect("search")
            .versions[0]
            .content_hash
            .clone(),
    };
    assert!(
        store
            .still_current(&alice, std::slice::from_ref(&edited))
            .await
            .expect("check")
    );
    store.delete(&alice, &first.note_id).await.expect("delete");
    assert!(!store.still_current(&alice, &[edited]).await.expect("check"));
}

async fn ingested_files_are_added_updated_and_left_alone(store: SharedNotes) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("bread.md"), "# Bread\nFlour, water, salt.").expect("write");
    std::fs::write(dir.path().join("kayak.txt"), "The kayak is red.").expect("write");
    let alice = user("alice");
    let paths = [dir.path().to_owned()];

    let first = breakwater::notes::ingest(&*store, &alice, &paths, false)
        .await
        .expect("ingest");
    assert_eq!((first.added, first.updated, first.unchanged), (2, 0, 0));
    let generation = store.generation(&alice).await.expect("generation");

    let again = breakwater::notes::ingest(&*store, &alice, &paths, false)
        .await
        .expect("ingest");
    assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 2));
    assert_eq!(
        store.generation(&alice).await.expect("generation"),
        generation,
        "an unchanged folder keeps cached answers fresh"
    );

    std::fs::write(dir.path().join("kayak.txt"), "The kayak is blue.").expect("write");
    let edited = breakwater::notes::ingest(&*store, &alice, &paths, false)
        .await
        .expect("ingest");
    assert_eq!((edited.added, edited.updated, edited.unchanged), (0, 1, 1));
    assert!(store.generation(&alice).await.expect("generation") > generation);
    let found = store.search(&alice, "kayak blue", 5).await.expect("search");
    assert_eq!(found.excerpts.len(), 1);
    assert!(found.excerpts[0].excerpt.contains("blue"));
    assert_eq!(
        store.count(&user("bob")).await.expect("count"),
        0,
        "ingested for alice only"
    );
}

#[tokio::test]
async fn a_postgres_database_is_migrated_once_and_keeps_its_notes() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let deadline = std::time::Duration::from_secs(5);
    let first = PgNotes::connect(database.url(), deadline)
        .await
        .expect("create");
    let alice = user("alice");
    let note = breakwater::notes::Notes::create(&first, &alice, "kept", "across restarts")
        .await
        .expect("create");
    // Three replicas starting at once: the migration lock lets one create, the rest find it.
    let (a, b, c) = tokio::join!(
        PgNotes::connect(database.url(), deadline),
        PgNotes::connect(database.url(), deadline),
        PgNotes::connect(database.url(), deadline),
    );
    let again: SharedNotes = Arc::new(a.expect("reopen"));
    b.expect("reopen");
    c.expect("reopen");
    assert_eq!(again.get(&alice, &note.id).await.expect("get"), note);
    assert_eq!(
        again
            .search(&alice, "restarts", 1)
            .await
            .expect("search")
            .excerpts
            .len(),
        1
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_an_error_within_the_deadline() {
    // Nothing listens on port 1; the connect fails at once or at the deadline.
    let err = PgNotes::connect(
        "postgres://postgres@127.0.0.1:1/none",
        std::time::Duration::from_millis(500),
    )
    .await
    .expect_err("no server");
    assert!(
        matches!(err, NotesError::Pool(_) | NotesError::Postgres(_)),
        "{err:?}"
    );
}
