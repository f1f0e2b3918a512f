//! The notes store: CRUD, isolation between users, generations, validation.

use breakwater::notes::{MAX_BODY_BYTES, MAX_TITLE_CHARS, NotesError, NotesStore};
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
fn create_get_update_delete_round_trip() {
    let (_dir, store) = open_store();
    let alice = user("alice");

    let created = store
        .create(&alice, "  Bread  ", "Flour, water, salt.")
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

    assert_eq!(store.get(&alice, &created.id).expect("get"), created);

    let renamed = store
        .update(&alice, &created.id, Some("Sourdough"), None)
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
        .expect("update body");
    assert_eq!(rewritten.title, "Sourdough");
    assert_eq!(rewritten.body, "Flour, water, salt, starter.");
    assert_eq!(store.get(&alice, &created.id).expect("get"), rewritten);

    store.delete(&alice, &created.id).expect("delete");
    assert!(matches!(
        store.get(&alice, &created.id),
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.delete(&alice, &created.id),
        Err(NotesError::NotFound)
    ));
}

#[test]
fn update_with_nothing_to_change_returns_the_note_without_writing() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let note = store.create(&alice, "t", "b").expect("create");
    let before = store.generation(&alice).expect("generation");

    assert_eq!(
        store.update(&alice, &note.id, None, None).expect("update"),
        note
    );
    assert_eq!(store.generation(&alice).expect("generation"), before);
}

#[test]
fn another_users_note_is_not_found_for_get_update_and_delete() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let mallory = user("mallory");
    let note = store
        .create(&alice, "Secret", "The vault code is 1234.")
        .expect("create");

    assert!(matches!(
        store.get(&mallory, &note.id),
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.update(&mallory, &note.id, Some("pwned"), None),
        Err(NotesError::NotFound)
    ));
    assert!(matches!(
        store.delete(&mallory, &note.id),
        Err(NotesError::NotFound)
    ));
    assert_eq!(store.get(&alice, &note.id).expect("still there"), note);
}

#[test]
fn another_users_notes_never_appear_in_list_count_or_search() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let mallory = user("mallory");
    store
        .create(&alice, "Secret", "The vault code is 1234.")
        .expect("create");

    assert!(store.list(&mallory, 100, 0).expect("list").is_empty());
    assert_eq!(store.count(&mallory).expect("count"), 0);
    let result = store
        .search(&mallory, "vault code secret", 20)
        .expect("search");
    assert!(result.excerpts.is_empty());
    assert_eq!(result.generation, 0);
}

#[test]
fn list_is_newest_first_and_pages_with_limit_and_offset() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let ids: Vec<String> = (0..5)
        .map(|i| {
            store
                .create(&alice, &format!("n{i}"), "body")
                .expect("create")
                .id
        })
        .collect();

    let all: Vec<String> = store
        .list(&alice, 10, 0)
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(all, newest_first);

    let page: Vec<String> = store
        .list(&alice, 2, 1)
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(page, newest_first[1..3]);
    assert!(store.list(&alice, 0, 0).expect("list").is_empty());
    assert!(
        store
            .list(&alice, usize::MAX, usize::MAX)
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.count(&alice).expect("count"), 5);
}

#[test]
fn generation_starts_at_zero_and_bumps_on_create_update_and_delete() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    assert_eq!(store.generation(&alice).expect("generation"), 0);

    let note = store.create(&alice, "t", "b").expect("create");
    let after_create = store.generation(&alice).expect("generation");
    assert!(after_create > 0);

    store
        .update(&alice, &note.id, Some("t2"), None)
        .expect("update");
    let after_update = store.generation(&alice).expect("generation");
    assert!(after_update > after_create);

    store.delete(&alice, &note.id).expect("delete");
    assert!(store.generation(&alice).expect("generation") > after_update);
}

#[test]
fn generation_does_not_move_on_reads_or_on_other_users_writes() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let bob = user("bob");
    let note = store.create(&alice, "t", "body words").expect("create");
    let before = store.generation(&alice).expect("generation");

    store.get(&alice, &note.id).expect("get");
    store.list(&alice, 10, 0).expect("list");
    store.count(&alice).expect("count");
    store.search(&alice, "body", 5).expect("search");
    store.create(&bob, "t", "b").expect("bob writes");

    assert_eq!(store.generation(&alice).expect("generation"), before);
}

#[test]
fn failed_writes_do_not_bump_the_generation() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    let note = store.create(&alice, "t", "b").expect("create");
    let before = store.generation(&alice).expect("generation");

    assert!(store.update(&alice, &note.id, Some(" "), None).is_err());
    assert!(store.update(&alice, "no-such-id", Some("x"), None).is_err());
    assert!(store.delete(&alice, "no-such-id").is_err());

    assert_eq!(store.generation(&alice).expect("generation"), before);
}

#[test]
fn validation_errors_name_the_field() {
    let (_dir, store) = open_store();
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
            .expect_err("invalid input");
        assert!(err.to_string().contains(field), "{err}");
        assert_eq!(field_of(err), field);
    }

    let note = store.create(&alice, "ok", "ok").expect("create");
    let err = store
        .update(&alice, &note.id, None, Some(""))
        .expect_err("empty body");
    assert_eq!(field_of(err), "body");
    assert_eq!(store.count(&alice).expect("count"), 1);
}

#[test]
fn limits_are_inclusive() {
    let (_dir, store) = open_store();
    let alice = user("alice");
    store
        .create(
            &alice,
            &"é".repeat(MAX_TITLE_CHARS),
            &"x".repeat(MAX_BODY_BYTES),
        )
        .expect("title and body at their limits are accepted");
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
