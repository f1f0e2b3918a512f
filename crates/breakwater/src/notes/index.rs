//! The notes' search index: tantivy (block-max WAND top-k over compressed postings), derived
//! from the `notes` table and kept in step with it through the `note_changes` log.
//!
//! The database stays the only truth. Every write of a note appends its rowid to
//! `note_changes` in the writing transaction (triggers, so no code path can forget). Before a
//! search, the index applies every change up to the sequence number the search's snapshot
//! sees, and commits that number with it (tantivy's commit payload). So a search always sees
//! its own snapshot's notes — including writes by another process, such as `breakwater
//! ingest` next to a running server — and a crash between a database commit and an index
//! commit only leaves changes to replay. A lost, foreign or unreadable index is rebuilt from
//! the notes.
//!
//! Ranking is this user's alone. Every indexed word is prefixed with its owner, so a term's
//! postings, and the document frequency bm25 takes from them, hold only that user's notes;
//! the note count and average length come from the user's own notes too
//! ([`UserScope`]). Another user's writes change neither the candidates nor the scores, and
//! the final scores are recomputed exactly, in a fixed order, so they do not even move in the
//! last bit when the segments are merged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use rusqlite::{Connection, OptionalExtension, params};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{Bm25StatisticsProvider, BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenStream, SimpleTokenizer,
    Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tantivy::{
    DocAddress, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TERMINATED,
    TantivyDocument, Term,
};

use super::NotesError;
use crate::user::UserId;

/// bm25's term-frequency saturation and length normalisation (the usual values; tantivy's).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Candidates taken from the index beyond `k` before the exact rescoring, so that the
/// index's rounding (f32 scores, quantised lengths) cannot push a true top-k note out.
const CANDIDATE_MARGIN: usize = 8;
/// The indexing memory budget: tantivy flushes a segment when it is used up.
const WRITER_BUDGET_BYTES: usize = 64 << 20;
const WRITER_THREADS: usize = 2;
/// Words longer than this many bytes are not indexed (hashes, base64, pasted junk).
const MAX_WORD_BYTES: usize = 256;
/// Separates the owner from the word in an indexed term; in neither a user id nor a word.
const OWNER_SEPARATOR: char = '\u{1f}';
/// The log is pruned once the index holds this many more changes.
const PRUNE_EVERY: i64 = 1024;
/// Per-user statistics kept for this many users before the table is cleared.
const STATS_CACHE_USERS: usize = 4096;

/// The analyser both the notes and the questions go through: words are runs of
/// alphanumerics, lower-cased, accents folded, English-stemmed ("feeding" finds "feed").
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analysed words of `text`, with their byte offsets in it.
pub(crate) fn analyse(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().clone());
    }
    tokens
}

#[derive(Clone, Copy)]
struct Fields {
    rowid: Field,
    owner: Field,
    text: Field,
}

/// The name the owner-prefixing tokenizer is registered under.
const OWNED_WORDS: &str = "owned_words";
const ROWID: &str = "rowid";

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Frequencies without positions: bm25 needs no more, and the index stays small.
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(OWNED_WORDS)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        rowid: builder.add_u64_field(ROWID, INDEXED | FAST),
        owner: builder.add_text_field("owner", STRING),
        text: builder.add_text_field("text", words),
    };
    (builder.build(), fields)
}

/// A searcher and the last change of the log it holds.
#[derive(Clone)]
struct Snapshot {
    searcher: Searcher,
    seq: i64,
}

/// One user's share of the index, as bm25 needs it.
#[derive(Clone, Copy, Debug, Default)]
struct UserTotals {
    docs: u64,
    tokens: u64,
}

/// A note found for a question: its rowid and its relevance in `0..=1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Ranked {
    pub rowid: i64,
    pub relevance: f64,
}

/// The writer of the index, and the last change of the log it was given (committed or not).
struct Keeper {
    writer: IndexWriter,
    staged: i64,
    /// No note with a higher rowid was ever given to the writer, so adding one needs no
    /// delete first (a bulk ingest then queues no delete per note).
    max_rowid: i64,
}

/// The search index of one notes database.
pub(crate) struct SearchIndex {
    dir: PathBuf,
    fields: Fields,
    /// `None` while another process holds the index (a server, next to which `breakwater
    /// ingest` writes only the database): that process catches the index up.
    writer: Mutex<Option<Keeper>>,
    /// Whether this process keeps the index (`writer` is `Some` until `finish_merges`).
    keeps: bool,
    reader: IndexReader,
    current: RwLock<Snapshot>,
    /// The database this index was built from (`store_meta.id`): an index left beside a
    /// different file is rebuilt, not trusted.
    db_id: String,
    /// Each user's totals, under the notes generation they were counted at.
    totals: Mutex<HashMap<String, (u64, UserTotals)>>,
    /// The log is pruned up to here.
    pruned: AtomicI64,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn index_err(err: impl std::fmt::Display) -> NotesError {
    NotesError::Index(err.to_string())
}

/// Where the index of the database at `db` lives: a directory beside it.
pub(crate) fn index_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push("-index");
    db.with_file_name(name)
}

impl SearchIndex {
    /// Opens (or creates) the index beside the database at `db` and catches it up with
    /// what `conn` sees.
    pub(crate) fn open(db: &Path, conn: &Connection) -> Result<SearchIndex, NotesError> {
        let dir = index_dir(db);
        std::fs::create_dir_all(&dir).map_err(|source| NotesError::Io {
            path: dir.clone(),
            source,
        })?;
        let (schema, fields) = schema();
        let index = match open_index(&dir, &schema) {
            Ok(index) => index,
            Err(err) => {
                // Derived data: a damaged or incompatible index is rebuilt from the notes.
                tracing::warn!(dir = %dir.display(), error = %err, "rebuilding the search index");
                std::fs::remove_dir_all(&dir)
                    .and_then(|()| std::fs::create_dir_all(&dir))
                    .map_err(|source| NotesError::Io {
                        path: dir.clone(),
                        source,
                    })?;
                open_index(&dir, &schema).map_err(index_err)?
            }
        };
        index.tokenizers().register(OWNED_WORDS, OwnedWords::new());
        let writer = match index.writer_with_num_threads(WRITER_THREADS, WRITER_BUDGET_BYTES) {
            Ok(writer) => Some(writer),
            Err(tantivy::TantivyError::LockFailure(..)) => {
                tracing::info!(dir = %dir.display(), "the search index is kept by another process");
                None
            }
            Err(err) => return Err(index_err(err)),
        };
        let reader = index
            .reader_builder()
            .reload_policy(if writer.is_some() {
                ReloadPolicy::Manual
            } else {
                ReloadPolicy::OnCommitWithDelay
            })
            .try_into()
            .map_err(index_err)?;
        let db_id: String =
            conn.query_row("SELECT value FROM store_meta WHERE key = 'id'", [], |row| {
                row.get(0)
            })?;
        let seq = committed_seq(&index, &db_id).unwrap_or(-1);
        let writer = match writer {
            Some(writer) => Some(Keeper {
                writer,
                staged: seq,
                max_rowid: max_rowid(&reader.searcher())?,
            }),
            None => None,
        };
        let this = SearchIndex {
            dir,
            current: RwLock::new(Snapshot {
                searcher: reader.searcher(),
                seq,
            }),
            fields,
            keeps: writer.is_some(),
            writer: Mutex::new(writer),
            reader,
            db_id,
            totals: Mutex::new(HashMap::new()),
            pruned: AtomicI64::new(0),
        };
        this.searcher(conn)?;
        Ok(this)
    }

    /// A searcher that holds every change `conn`'s snapshot holds, catching the index up
    /// first when it is behind; and whether it holds exactly those (it may be newer, when
    /// another search caught it up further meanwhile).
    pub(crate) fn searcher(&self, conn: &Connection) -> Result<(Searcher, bool), NotesError> {
        let latest = latest_seq(conn)?;
        if let Some(current) = self.searcher_from(latest) {
            return Ok(current);
        }
        match self.catch_up_to(conn, latest, true)? {
            Some(searcher) => Ok(searcher),
            // Another process keeps the index and will catch it up; its commits reach this
            // reader by the reload policy.
            None => Ok((self.reader.searcher(), true)),
        }
    }

    /// [`Self::searcher`] when the index needs no catching up; `None` when it does.
    pub(crate) fn current_searcher(
        &self,
        conn: &Connection,
    ) -> Result<Option<(Searcher, bool)>, NotesError> {
        Ok(self.searcher_from(latest_seq(conn)?))
    }

    /// The searcher, if it holds every change up to `latest`, and whether exactly those.
    fn searcher_from(&self, latest: i64) -> Option<(Searcher, bool)> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (current.seq >= latest).then(|| (current.searcher.clone(), current.seq == latest))
    }

    /// Gives the writer every change `conn` sees that it does not have yet and, with
    /// `commit`, makes them searchable: then the searcher, and whether it holds exactly
    /// `conn`'s changes. `None` when another process keeps the index.
    ///
    /// Without `commit` the work is only staged: `breakwater ingest` stages each batch while
    /// it writes the next, and commits once at the end.
    pub(crate) fn catch_up(
        &self,
        conn: &Connection,
        commit: bool,
    ) -> Result<Option<(Searcher, bool)>, NotesError> {
        self.catch_up_to(conn, latest_seq(conn)?, commit)
    }

    /// [`Self::catch_up`] to `latest`, the last change `conn` sees.
    fn catch_up_to(
        &self,
        conn: &Connection,
        latest: i64,
        commit: bool,
    ) -> Result<Option<(Searcher, bool)>, NotesError> {
        let mut keeper = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(keeper) = keeper.as_mut() else {
            return Ok(None);
        };
        let (searcher, seq) = {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            (current.searcher.clone(), current.seq)
        };
        if seq >= latest {
            return Ok(Some((searcher, seq == latest)));
        }
        let from = keeper.staged;
        if from < latest {
            let logged: i64 = conn.query_row(
                "SELECT count(*) FROM note_changes WHERE seq > ?1 AND seq <= ?2",
                params![from, latest],
                |row| row.get(0),
            )?;
            let started = std::time::Instant::now();
            // From scratch when the index is new, foreign, or older than the log reaches.
            let applied = if from < 0 || logged != latest - from {
                self.rebuild(keeper, conn)?
            } else {
                self.apply(keeper, conn, from, latest)?
            };
            keeper.staged = latest;
            tracing::debug!(
                notes = applied,
                seq = latest,
                elapsed_ms = started.elapsed().as_millis(),
                "gave the search index the changed notes"
            );
        }
        if !commit {
            return Ok(Some((searcher, false)));
        }
        let mut prepared = keeper.writer.prepare_commit().map_err(index_err)?;
        prepared.set_payload(&format!("{} {}", self.db_id, keeper.staged));
        prepared.commit().map_err(index_err)?;
        self.reader.reload().map_err(index_err)?;
        let searcher = self.reader.searcher();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Snapshot {
            searcher: searcher.clone(),
            seq: keeper.staged,
        };
        Ok(Some((searcher, keeper.staged == latest)))
    }

    /// Waits for the segment merges under way and gives up the writer (tantivy abandons
    /// merges when its writer is dropped): see [`Notes::finish`](super::Notes::finish).
    pub(crate) fn finish_merges(&self) -> Result<(), NotesError> {
        let keeper = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(keeper) = keeper {
            keeper.writer.wait_merging_threads().map_err(index_err)?;
        }
        Ok(())
    }

    /// Replays the changes `from < seq <= to`: each changed note is removed and, if it
    /// still exists, indexed as it is now.
    fn apply(
        &self,
        keeper: &mut Keeper,
        conn: &Connection,
        from: i64,
        to: i64,
    ) -> Result<usize, NotesError> {
        let mut stmt = conn.prepare_cached(
            "SELECT c.note_rowid, n.user_id, n.title, n.body
             FROM (SELECT DISTINCT note_rowid FROM note_changes WHERE seq > ?1 AND seq <= ?2) AS c
             LEFT JOIN notes AS n ON n.rowid = c.note_rowid",
        )?;
        let mut rows = stmt.query(params![from, to])?;
        let mut applied = 0;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            if rowid <= keeper.max_rowid {
                let term = Term::from_field_u64(self.fields.rowid, rowid as u64);
                keeper.writer.delete_term(term);
            }
            let user: Option<String> = row.get(1)?;
            if let Some(user) = user {
                let doc = self.document(
                    rowid,
                    &user,
                    &row.get::<_, String>(2)?,
                    &row.get::<_, String>(3)?,
                );
                keeper.writer.add_document(doc).map_err(index_err)?;
                keeper.max_rowid = keeper.max_rowid.max(rowid);
            }
            applied += 1;
        }
        Ok(applied)
    }

    /// Indexes every note afresh.
    fn rebuild(&self, keeper: &mut Keeper, conn: &Connection) -> Result<usize, NotesError> {
        // Every document goes, so only the rowids added below will be in the index.
        keeper.writer.delete_all_documents().map_err(index_err)?;
        keeper.max_rowid = 0;
        let mut stmt = conn.prepare("SELECT rowid, user_id, title, body FROM notes")?;
        let mut rows = stmt.query([])?;
        let mut applied = 0;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let doc = self.document(
                rowid,
                &row.get::<_, String>(1)?,
                &row.get::<_, String>(2)?,
                &row.get::<_, String>(3)?,
            );
            keeper.writer.add_document(doc).map_err(index_err)?;
            keeper.max_rowid = keeper.max_rowid.max(rowid);
            applied += 1;
        }
        tracing::info!(notes = applied, "built the search index");
        Ok(applied)
    }

    fn document(&self, rowid: i64, user: &str, title: &str, body: &str) -> TantivyDocument {
        let mut doc = TantivyDocument::new();
        doc.add_u64(self.fields.rowid, rowid as u64);
        doc.add_text(self.fields.owner, user);
        // One field of title and body: bm25 then saturates a word's count over the whole
        // note, so a note holding every word of a question outranks one that has a single
        // word in its short title (measured: a title field of its own, weighted double, put
        // the target note in the top five for no question of the quality bench at 100,000
        // notes; the title written twice into this field cost recall@5 0.975 → 0.95; both
        // with the `retrieval_curve` example on a variant of this function). An ingested
        // file's heading is in its body too, so its title counts double anyway. The owner
        // leads the text for the tokenizer (`OwnedWords`), which prefixes every word with it.
        let mut text = String::with_capacity(user.len() + title.len() + body.len() + 2);
        text.push_str(user);
        text.push(OWNER_SEPARATOR);
        text.push_str(title);
        text.push('\n');
        text.push_str(body);
        doc.add_text(self.fields.text, text);
        doc
    }

    /// The top `k` notes of `user` for the analysed question `words`, best first (ties:
    /// the newer note first), on `searcher`. `generation` is the user's notes generation
    /// in the same snapshot: the user's totals are cached under it.
    pub(crate) fn search(
        &self,
        searcher: &Searcher,
        user: &UserId,
        generation: u64,
        words: &[String],
        k: usize,
    ) -> Result<Vec<Ranked>, NotesError> {
        let totals = self.totals(searcher, user, generation)?;
        if totals.docs == 0 || words.is_empty() {
            return Ok(Vec::new());
        }
        let scope = UserScope::new(searcher, &self.fields, user, words, totals)?;
        let clauses: Vec<(Occur, Box<dyn Query>)> = scope
            .terms
            .iter()
            .filter(|t| t.df > 0)
            .map(|t| {
                let query = TermQuery::new(t.term.clone(), IndexRecordOption::WithFreqs);
                (Occur::Should, Box::new(query) as Box<dyn Query>)
            })
            .collect();
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let candidates = searcher
            .search_with_statistics_provider(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(k + CANDIDATE_MARGIN),
                &scope,
            )
            .map_err(index_err)?;
        let mut addresses: Vec<DocAddress> = candidates.into_iter().map(|(_, a)| a).collect();
        addresses.sort();
        let mut ranked = scope.rescore(searcher, &self.fields, &addresses)?;
        ranked.sort_by(|a, b| {
            b.relevance
                .total_cmp(&a.relevance)
                .then(b.rowid.cmp(&a.rowid))
        });
        ranked.truncate(k);
        Ok(ranked)
    }

    /// Removes the log entries the index holds, now and then (the log would otherwise grow
    /// with every write). Only the process that keeps the index prunes; `conn` is the
    /// writer, called right after a write.
    pub(crate) fn prune_log(&self, conn: &Connection) -> rusqlite::Result<()> {
        let indexed = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .seq;
        let pruned = self.pruned.load(Ordering::Relaxed);
        if !self.keeps || indexed - pruned < PRUNE_EVERY {
            return Ok(());
        }
        conn.prepare_cached("DELETE FROM note_changes WHERE seq <= ?1")?
            .execute([indexed])?;
        self.pruned.store(indexed, Ordering::Relaxed);
        Ok(())
    }

    /// The number of `user`'s notes and of their words, counted over live documents only
    /// (tantivy's own counts include deleted ones until a merge, and merges happen when
    /// *other* users write). Only the user's own writes change them, and each moves the
    /// generation: so they are counted once per generation.
    fn totals(
        &self,
        searcher: &Searcher,
        user: &UserId,
        generation: u64,
    ) -> Result<UserTotals, NotesError> {
        if let Some(&(cached, totals)) = self
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user.as_str())
            && cached == generation
        {
            return Ok(totals);
        }
        let owner = Term::from_field_text(self.fields.owner, user.as_str());
        let mut totals = UserTotals::default();
        for segment in searcher.segment_readers() {
            let Some(mut postings) = segment
                .inverted_index(self.fields.owner)
                .map_err(index_err)?
                .read_postings(&owner, IndexRecordOption::Basic)
                .map_err(index_err)?
            else {
                continue;
            };
            let lens = segment
                .get_fieldnorms_reader(self.fields.text)
                .map_err(index_err)?;
            let alive = segment.alive_bitset();
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    totals.docs += 1;
                    totals.tokens += u64::from(lens.fieldnorm(doc));
                }
                doc = postings.advance();
            }
        }
        let mut cache = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= STATS_CACHE_USERS {
            cache.clear();
        }
        cache.insert(user.as_str().to_owned(), (generation, totals));
        Ok(totals)
    }
}

fn open_index(dir: &Path, schema: &Schema) -> tantivy::Result<Index> {
    let index = Index::open_or_create(MmapDirectory::open(dir)?, schema.clone())?;
    Ok(index)
}

/// The highest rowid of any document in `searcher`'s segments, deleted ones included.
fn max_rowid(searcher: &Searcher) -> Result<i64, NotesError> {
    let mut max = 0;
    for segment in searcher.segment_readers() {
        let rowids = segment.fast_fields().u64(ROWID).map_err(index_err)?;
        max = max.max(i64::try_from(rowids.max_value()).unwrap_or(i64::MAX));
    }
    Ok(max)
}

/// The log position the index at `index` was committed at, if it was built from `db_id`.
fn committed_seq(index: &Index, db_id: &str) -> Option<i64> {
    let payload = index.load_metas().ok()?.payload?;
    let (id, seq) = payload.split_once(' ')?;
    (id == db_id).then(|| seq.parse().ok()).flatten()
}

/// The last change the snapshot of `conn` holds (AUTOINCREMENT's counter: it never goes
/// back, even when the log is pruned).
fn latest_seq(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'note_changes'")?
        .query_row([], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The tokenizer of the index's one text field: the text is `owner \x1f words`, and every
/// word comes out analysed as [`analyzer`] does it and prefixed with the owner. Tantivy runs
/// it on its indexing threads, so analysis is spread over them. A word's analysis is
/// remembered: in notes, as in any text, most words are ones already seen. The stream writes
/// each term into one reused token, so indexing a word allocates nothing.
#[derive(Clone)]
struct OwnedWords {
    analyzer: TextAnalyzer,
    split: SimpleTokenizer,
    // foldhash: several times faster than SipHash on short words, and still seeded per
    // process, so crafted note text cannot make the table degrade.
    seen: foldhash::HashMap<String, Option<Box<str>>>,
}

/// Words whose analysis an [`OwnedWords`] remembers before it starts afresh.
const REMEMBERED_WORDS: usize = 200_000;

impl OwnedWords {
    fn new() -> OwnedWords {
        OwnedWords {
            analyzer: analyzer(),
            split: SimpleTokenizer::default(),
            seen: foldhash::HashMap::default(),
        }
    }
}

impl Tokenizer for OwnedWords {
    type TokenStream<'a> = OwnedTokens<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> OwnedTokens<'a> {
        let (owner, words) = text.split_once(OWNER_SEPARATOR).unwrap_or(("", text));
        if self.seen.len() > REMEMBERED_WORDS {
            self.seen.clear();
        }
        OwnedTokens {
            owner,
            words: self.split.token_stream(words),
            analyzer: &mut self.analyzer,
            seen: &mut self.seen,
            token: Token::default(),
            position: 0,
        }
    }
}

/// The owned words of one text, one at a time.
struct OwnedTokens<'a> {
    owner: &'a str,
    words: SimpleTokenStream<'a>,
    analyzer: &'a mut TextAnalyzer,
    seen: &'a mut foldhash::HashMap<String, Option<Box<str>>>,
    token: Token,
    position: usize,
}

impl TokenStream for OwnedTokens<'_> {
    fn advance(&mut self) -> bool {
        while self.words.advance() {
            let word = &self.words.token().text;
            if !self.seen.contains_key(word) {
                let analysed = analyse(self.analyzer, word).pop().map(|t| t.text.into());
                self.seen.insert(word.clone(), analysed);
            }
            // A word the analyser drops (too long) leaves no term.
            let Some(Some(analysed)) = self.seen.get(word) else {
                continue;
            };
            self.token.text.clear();
            push_owned_term(&mut self.token.text, self.owner, analysed);
            self.token.position = self.position;
            self.position += 1;
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

fn push_owned_term(term: &mut String, user: &str, word: &str) {
    term.push_str(user);
    term.push(OWNER_SEPARATOR);
    term.push_str(word);
}

fn owned_term(user: &str, word: &str) -> String {
    let mut term = String::with_capacity(user.len() + 1 + word.len());
    push_owned_term(&mut term, user, word);
    term
}

/// A word of the question, with its live document frequency among the user's notes.
struct ScopedTerm {
    term: Term,
    df: u64,
}

/// bm25's statistics, taken from one user's notes only.
struct UserScope {
    totals: UserTotals,
    terms: Vec<ScopedTerm>,
}

impl UserScope {
    fn new(
        searcher: &Searcher,
        fields: &Fields,
        user: &UserId,
        words: &[String],
        totals: UserTotals,
    ) -> Result<UserScope, NotesError> {
        let terms = words
            .iter()
            .map(|word| {
                let term = Term::from_field_text(fields.text, &owned_term(user.as_str(), word));
                let df = live_doc_freq(searcher, &term)?;
                Ok(ScopedTerm { term, df })
            })
            .collect::<Result<_, NotesError>>()?;
        Ok(UserScope { totals, terms })
    }

    fn idf(&self, df: u64) -> f64 {
        let n = self.totals.docs as f64;
        let df = df as f64;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// The exact bm25 of each candidate (sorted by address), as a share of the best score a
    /// note could have for this question (every word, saturated).
    fn rescore(
        &self,
        searcher: &Searcher,
        fields: &Fields,
        addresses: &[DocAddress],
    ) -> Result<Vec<Ranked>, NotesError> {
        let best: f64 = self.terms.iter().map(|t| self.idf(t.df) * (K1 + 1.0)).sum();
        let average_len = (self.totals.tokens as f64 / self.totals.docs as f64).max(1.0);
        let mut ranked = Vec::with_capacity(addresses.len());
        for chunk in addresses.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
            let segment = searcher.segment_reader(chunk[0].segment_ord);
            let fast = segment.fast_fields();
            let rowids = fast.u64(ROWID).map_err(index_err)?;
            let lens = segment
                .get_fieldnorms_reader(fields.text)
                .map_err(index_err)?;
            let inverted = segment.inverted_index(fields.text).map_err(index_err)?;
            let mut postings: Vec<Option<SegmentPostings>> = self
                .terms
                .iter()
                .map(|t| inverted.read_postings(&t.term, IndexRecordOption::WithFreqs))
                .collect::<Result<_, _>>()
                .map_err(index_err)?;
            for address in chunk {
                let doc = address.doc_id;
                let len = f64::from(lens.fieldnorm(doc));
                let norm = 1.0 - B + B * len / average_len;
                // Summed in the question's order, in f64: the same every time.
                let mut score = 0.0;
                for (term, postings) in self.terms.iter().zip(postings.iter_mut()) {
                    let Some(postings) = postings else { continue };
                    if postings.doc() > doc || postings.seek(doc) != doc {
                        continue;
                    }
                    let tf = f64::from(postings.term_freq());
                    score += self.idf(term.df) * tf * (K1 + 1.0) / (tf + K1 * norm);
                }
                ranked.push(Ranked {
                    rowid: rowids.first(doc).unwrap_or(0) as i64,
                    relevance: if best > 0.0 { score / best } else { 0.0 },
                });
            }
        }
        Ok(ranked)
    }
}

impl Bm25StatisticsProvider for UserScope {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.totals.tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.totals.docs)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        Ok(self
            .terms
            .iter()
            .find(|t| &t.term == term)
            .map_or(0, |t| t.df))
    }
}

/// How many live documents hold `term` (deleted ones excluded, unlike tantivy's count).
fn live_doc_freq(searcher: &Searcher, term: &Term) -> Result<u64, NotesError> {
    let mut df = 0;
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(term.field()).map_err(index_err)?;
        let Some(alive) = segment.alive_bitset() else {
            df += u64::from(inverted.doc_freq(term).map_err(index_err)?);
            continue;
        };
        if let Some(postings) = inverted
            .read_postings(term, IndexRecordOption::Basic)
            .map_err(index_err)?
        {
            df += u64::from(postings.doc_freq_given_deletes(alive));
        }
    }
    Ok(df)
}
