//! The retrieval curve's in-process half, driven by `bench/breakwater_bench/store_curve.py`.
//!
//! ```text
//! retrieval_curve write DIR NOTES [USERS]  # the seeded corpus as files: DIR/notes/solo/*.md,
//!                                          # and USERS-1 others of NOTES each: DIR/notes/u*/
//! retrieval_curve measure NOTES STORE      # STORE: a SQLite file, or postgres://…
//! ```
//!
//! `measure` opens a store into which `breakwater ingest` put the corpus of `write` (same
//! seed, same size), asks its speed questions one at a time (the search alone, no HTTP) and
//! its quality questions, and prints one JSON line: search p50/p99 in ms, recall@5, MRR.

#[path = "../benches/corpus/mod.rs"]
mod corpus;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use breakwater::notes::{Notes, NotesStore, PgNotes};
use breakwater::user::UserId;
use corpus::{Corpus, quality};

/// The seed of every published figure.
const SEED: u64 = 14;
const QUESTIONS: usize = 400;
const TARGETS: usize = 200;

fn corpus(notes: usize) -> Corpus {
    Corpus::generate(SEED, notes, QUESTIONS, TARGETS)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: retrieval_curve write DIR NOTES [USERS] | measure NOTES STORE";
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", dir, notes] => write(PathBuf::from(dir), notes.parse()?, 1),
        ["write", dir, notes, users] => write(PathBuf::from(dir), notes.parse()?, users.parse()?),
        ["measure", notes, store] => measure(notes.parse()?, store).await,
        _ => Err(usage.into()),
    }
}

fn write(dir: PathBuf, notes: usize, users: usize) -> Result<(), Box<dyn std::error::Error>> {
    let corpus = corpus(notes);
    write_notes(&dir.join("notes").join("solo"), &corpus)?;
    // The crowd: same vocabulary, other seeds, so every word of the measured user's
    // questions is in other users' notes too.
    for user in 1..users {
        let crowd = Corpus::generate(SEED + user as u64, notes, 0, 0);
        write_notes(&dir.join("notes").join(format!("u{user:03}")), &crowd)?;
    }
    std::fs::write(
        dir.join("questions.txt"),
        corpus.questions.join("\n") + "\n",
    )?;
    Ok(())
}

fn write_notes(dir: &std::path::Path, corpus: &Corpus) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, note) in corpus.notes.iter().enumerate() {
        std::fs::write(
            dir.join(format!("note-{i:06}.md")),
            format!("# {}\n\n{}\n", note.title, note.body),
        )?;
    }
    Ok(())
}

async fn measure(notes: usize, store: &str) -> Result<(), Box<dyn std::error::Error>> {
    let corpus = corpus(notes);
    // Opening catches the index up with what `breakwater ingest` wrote: timed on its own.
    let started = Instant::now();
    let store: Box<dyn Notes> = if store.starts_with("postgres://") {
        Box::new(PgNotes::connect(store, Duration::from_secs(10)).await?)
    } else {
        Box::new(NotesStore::open_async(PathBuf::from(store)).await?)
    };
    let catch_up_s = started.elapsed().as_secs_f64();
    let user = UserId::parse("solo")?;
    for q in corpus.questions.iter().take(50) {
        store.search(&user, q, 5).await?;
    }
    let mut times = Vec::with_capacity(corpus.questions.len());
    for q in &corpus.questions {
        let started = Instant::now();
        store.search(&user, q, 5).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let mut ranked = Vec::with_capacity(corpus.targets.len());
    for target in &corpus.targets {
        let found = store.search(&user, &target.question, 10).await?;
        ranked.push(
            found
                .excerpts
                .iter()
                .filter_map(|e| Corpus::note_of(&e.title))
                .collect::<Vec<_>>(),
        );
    }
    let (recall5, mrr) = quality(&corpus.targets, &ranked);
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    let line = serde_json::json!({
        "notes": notes,
        "store": store.backend(),
        "catch_up_s": catch_up_s,
        "search_p50_ms": at(0.50),
        "search_p99_ms": at(0.99),
        "recall_at_5": recall5,
        "mrr": mrr,
        "targets": corpus.targets.len(),
    });
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}
