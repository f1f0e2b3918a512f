//! Any text is a valid question: the notes search never fails on what the query contains
//! (user text never becomes query syntax), and it only ever returns the asking user's notes.
#![no_main]

use std::sync::LazyLock;

use breakwater::notes::NotesStore;
use breakwater::user::UserId;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    _dir: tempfile::TempDir,
    store: NotesStore,
    alice: UserId,
    alices: Vec<String>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("notes.db")).expect("a store");
    let alice = UserId::parse("alice").expect("valid");
    let mallory = UserId::parse("mallory").expect("valid");
    let mut alices = Vec::new();
    for (title, body) in [
        (
            "Circuit breakers",
            "A breaker opens after five failures in a row.",
        ),
        (
            "Retries",
            "Retry with jittered exponential backoff; NEAR \"quotes\" OR * ^",
        ),
        ("Unicode", "Crème brûlée, 東京, emoji 🎉, ß and İ."),
    ] {
        alices.push(store.create(&alice, title, body).expect("created").id);
    }
    store
        .create(&mallory, "Secret", "breaker retries backoff unicode quotes")
        .expect("created");
    Fixture {
        _dir: dir,
        store,
        alice,
        alices,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let f = &*FIXTURE;
    let found = f
        .store
        .search(&f.alice, query, 20)
        .expect("any text is a valid search");
    for excerpt in &found.excerpts {
        assert!(
            f.alices.contains(&excerpt.note_id),
            "another user's note for {query:?}"
        );
    }
});
