//! The retrieval benchmarks' corpus: seeded, generated on the fly, never downloaded.
//!
//! A 20,000-word vocabulary drawn with Zipf's law (s = 1), as word use in real text is: the
//! commonest word is in nearly every note, the median one in a handful. Each note has a
//! 3-word title and a body of 40–120 words. Two kinds of question:
//! - speed: 2–4 words drawn from the 3,000 commonest (what people ask about is common);
//! - quality: 3 distinct mid-frequency words (ranks 100–5,000) of one target note, which
//!   the search should rank among the top five.
//!
//! Shared by `benches/retrieval.rs` and `examples/retrieval_curve.rs`, so both measure the
//! same notes and questions.

#![allow(dead_code)] // each includer uses its own part

/// The vocabulary's size.
pub const VOCABULARY: usize = 20_000;
/// Speed questions draw from this many of the commonest words.
const COMMON: usize = 3_000;
/// Quality questions draw from words of these ranks.
const MID: std::ops::Range<usize> = 100..5_000;

/// splitmix64: a tiny, well-mixed generator, so the corpus is the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Word `rank` of the vocabulary (0 is the commonest): consonant-vowel syllables spelling
/// the rank, ending in `k` so that no English suffix rule stems two words into one.
pub fn word(rank: usize) -> String {
    const CONSONANTS: &[u8] = b"bdfglmnprstvz";
    const VOWELS: &[u8] = b"aiou";
    let base = CONSONANTS.len() * VOWELS.len();
    let mut n = rank;
    let mut out = String::new();
    for _ in 0..3 {
        let syllable = n % base;
        out.push(CONSONANTS[syllable / VOWELS.len()] as char);
        out.push(VOWELS[syllable % VOWELS.len()] as char);
        n /= base;
    }
    out.push('k');
    out
}

/// One generated note.
pub struct Note {
    pub title: String,
    pub body: String,
    /// The vocabulary ranks of the body's words.
    ranks: Vec<usize>,
}

/// A quality question and the note it was made from.
pub struct Target {
    pub question: String,
    pub note: usize,
}

/// Notes and questions from one seed.
pub struct Corpus {
    pub notes: Vec<Note>,
    pub questions: Vec<String>,
    pub targets: Vec<Target>,
}

impl Corpus {
    /// `notes` notes, `questions` speed questions, `targets` quality questions.
    pub fn generate(seed: u64, notes: usize, questions: usize, targets: usize) -> Corpus {
        let mut rng = Rng::new(seed);
        let vocabulary: Vec<String> = (0..VOCABULARY).map(word).collect();
        let mut cumulative = Vec::with_capacity(VOCABULARY);
        let mut total = 0.0;
        for rank in 0..VOCABULARY {
            total += 1.0 / (rank + 1) as f64;
            cumulative.push(total);
        }
        let zipf = |rng: &mut Rng| {
            let x = rng.unit() * total;
            cumulative.partition_point(|&c| c <= x).min(VOCABULARY - 1)
        };
        let notes: Vec<Note> = (0..notes)
            .map(|i| {
                let title: Vec<&str> = (0..3)
                    .map(|_| vocabulary[zipf(&mut rng)].as_str())
                    .collect();
                let len = 40 + rng.below(81);
                let ranks: Vec<usize> = (0..len).map(|_| zipf(&mut rng)).collect();
                let words: Vec<&str> = ranks.iter().map(|&r| vocabulary[r].as_str()).collect();
                Note {
                    // The number names the note in a search result's title.
                    title: format!("{} #{i}", title.join(" ")),
                    body: format!("{}.", words.join(" ")),
                    ranks,
                }
            })
            .collect();
        let questions = (0..questions)
            .map(|_| {
                let n = 2 + rng.below(3);
                let words: Vec<&str> = (0..n)
                    .map(|_| vocabulary[rng.below(COMMON)].as_str())
                    .collect();
                words.join(" ")
            })
            .collect();
        let mut chosen = Vec::with_capacity(targets);
        for _ in 0..targets * 20 {
            if chosen.len() == targets || notes.is_empty() {
                break;
            }
            let note = rng.below(notes.len());
            let mut mid: Vec<usize> = notes[note]
                .ranks
                .iter()
                .copied()
                .filter(|r| MID.contains(r))
                .collect();
            mid.sort_unstable();
            mid.dedup();
            if mid.len() < 3 {
                continue;
            }
            let mut words = Vec::with_capacity(3);
            while words.len() < 3 {
                let pick = mid.swap_remove(rng.below(mid.len()));
                words.push(vocabulary[pick].as_str());
            }
            chosen.push(Target {
                question: words.join(" "),
                note,
            });
        }
        Corpus {
            notes,
            questions,
            targets: chosen,
        }
    }

    /// The note number in a search result's title (`… #123`).
    pub fn note_of(title: &str) -> Option<usize> {
        title.rsplit_once('#')?.1.parse().ok()
    }
}

/// recall@5 and mean reciprocal rank of `ranked` (for each target, the note numbers the
/// search returned, best first).
pub fn quality(targets: &[Target], ranked: &[Vec<usize>]) -> (f64, f64) {
    let mut hits = 0;
    let mut reciprocal = 0.0;
    for (target, found) in targets.iter().zip(ranked) {
        if let Some(position) = found.iter().position(|&n| n == target.note) {
            reciprocal += 1.0 / (position + 1) as f64;
            if position < 5 {
                hits += 1;
            }
        }
    }
    let n = targets.len().max(1) as f64;
    (f64::from(hits) / n, reciprocal / n)
}
