//! What retrieval costs with 10,000 notes over 10 users: one bm25 search with excerpts.
//!
//! `cargo bench -p breakwater --bench retrieval`

use std::hint::black_box;
use std::time::Duration;

use breakwater::notes::NotesStore;
use breakwater::user::UserId;
use criterion::{Criterion, criterion_group, criterion_main};

const NOTES: usize = 10_000;
const USERS: usize = 10;

/// A deterministic word list: a few common words, a long tail of rare ones (xorshift).
struct Words(u64);

impl Words {
    fn next(&mut self) -> String {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // Squaring a uniform number skews it towards the low ranks: a few frequent words.
        let unit = (self.0 % 10_000) as f64 / 10_000.0;
        format!("w{}", (unit * unit * 5_000.0) as u32)
    }

    fn text(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(" ")
    }
}

fn store() -> (tempfile::TempDir, NotesStore, Vec<UserId>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("bench.db")).expect("store opens");
    let users: Vec<UserId> = (0..USERS)
        .map(|u| UserId::parse(&format!("user{u}")).expect("valid"))
        .collect();
    let mut words = Words(0x9E37_79B9_7F4A_7C15);
    for i in 0..NOTES {
        let (title, body) = (words.text(4), words.text(120));
        store
            .create(&users[i % USERS], &title, &body)
            .expect("note stored");
    }
    (dir, store, users)
}

fn retrieval(c: &mut Criterion) {
    let (_dir, store, users) = store();
    let mut words = Words(42);
    let questions: Vec<String> = (0..64)
        .map(|_| format!("What did I write about {}?", words.text(3)))
        .collect();
    let mut i = 0;
    c.bench_function("search/10k notes/top 5", |b| {
        b.iter(|| {
            i = (i + 1) % questions.len();
            let found = store.search(&users[i % USERS], &questions[i], 5);
            black_box(found.expect("search works"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = retrieval
}
criterion_main!(benches);
