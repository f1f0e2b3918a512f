//! Retrieval against one user's note count: a search (top 5 with excerpts) on the corpus
//! of `bench/breakwater_bench/store_curve.py` (the same generator and seed), and its
//! quality (recall@5, MRR) printed once per size.
//!
//! `cargo bench -p breakwater --bench retrieval` (1,000 and 10,000 notes; set
//! `RETRIEVAL_BENCH_NOTES=1000,10000,100000` for more).

#[path = "corpus/mod.rs"]
mod corpus;

use std::hint::black_box;
use std::io::Write;
use std::time::Duration;

use breakwater::notes::NotesStore;
use breakwater::user::UserId;
use corpus::{Corpus, quality};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// The seed of `examples/retrieval_curve.rs`, so the figures are comparable.
const SEED: u64 = 14;

fn sizes() -> Vec<usize> {
    std::env::var("RETRIEVAL_BENCH_NOTES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000])
}

fn store(corpus: &Corpus, user: &UserId) -> (tempfile::TempDir, NotesStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = NotesStore::open(&dir.path().join("bench.db")).expect("store opens");
    for note in &corpus.notes {
        store
            .create(user, &note.title, &note.body)
            .expect("note stored");
    }
    (dir, store)
}

fn retrieval(c: &mut Criterion) {
    let user = UserId::parse("solo").expect("valid");
    let mut group = c.benchmark_group("search");
    for notes in sizes() {
        let corpus = Corpus::generate(SEED, notes, 400, 200);
        let (_dir, store) = store(&corpus, &user);
        let ranked: Vec<Vec<usize>> = corpus
            .targets
            .iter()
            .map(|t| {
                let found = store.search(&user, &t.question, 10).expect("search");
                found
                    .excerpts
                    .iter()
                    .filter_map(|e| Corpus::note_of(&e.title))
                    .collect()
            })
            .collect();
        let (recall, mrr) = quality(&corpus.targets, &ranked);
        let _ = writeln!(
            std::io::stderr(),
            "search/{notes}: recall@5 {recall:.3}, MRR {mrr:.3} ({} questions)",
            corpus.targets.len()
        );
        let mut i = 0;
        group.bench_with_input(BenchmarkId::from_parameter(notes), &notes, |b, _| {
            b.iter(|| {
                i = (i + 1) % corpus.questions.len();
                black_box(
                    store
                        .search(&user, &corpus.questions[i], 5)
                        .expect("search"),
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = retrieval
}
criterion_main!(benches);
