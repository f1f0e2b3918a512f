"""The benchmark's notes and questions: generated, deterministic, never downloaded.

10,000 Markdown notes spread over several users. Each note has a topic; its words are a mix
of English function words, the topic's own words and a long tail of made-up words drawn
with a Zipf-Mandelbrot law, so that, as in real notes, a few words are in thousands of notes and
most are in a handful. Questions are built from the words of a random note, so every
question matches some notes (the `excerpts` fallback has something to give).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 20251122

FUNCTION_WORDS = (
    "the a an and or but of to in on for with at by from about as into over after before "
    "under again then once here there when where why how all any both each few more most "
    "other some such no not only own same so than too very can will just should now is are "
    "was were be been being have has had do does did this that these those it its we our "
    "they their i my me you your"
).split()

TOPICS = {
    "cooking": "bread flour starter dough oven yeast butter sauce garlic onion roast simmer "
    "knead crust recipe spice pepper salt broth pasta",
    "garden": "tomato seedling compost soil prune mulch basil harvest sprout water trellis "
    "fertilizer shade frost bulb weeding raised planter orchard",
    "programming": "rust compiler borrow closure trait async tokio thread mutex channel "
    "crate macro lifetime iterator vector benchmark profile allocator cache",
    "travel": "train ticket passport hotel luggage itinerary museum ferry airport visa "
    "hostel map border coast mountain village station booking",
    "health": "sleep running stretch protein vitamin doctor blood pressure knee yoga "
    "posture hydration cardio rest appointment dentist allergy",
    "finance": "budget invoice tax savings pension mortgage rent expense receipt interest "
    "stock bond dividend insurance salary refund ledger",
    "music": "guitar chord scale piano rhythm tempo melody practice metronome string "
    "harmony lyric concert vinyl bass drum tuning",
    "reading": "novel chapter author poetry essay library quote review fiction history "
    "biography translation margin bookmark series shelf",
    "work": "meeting deadline roadmap review hiring onboarding incident retro sprint "
    "release outage oncall design proposal budget quarter",
    "home": "kitchen boiler paint shelf plumber window curtain lamp carpet drill screw "
    "fridge laundry heater garage roof gutter",
    "family": "birthday school holiday grandma cousin gift dinner picnic wedding photo "
    "recital homework allowance vacation recipe",
    "science": "telescope comet orbit electron protein enzyme fossil glacier volcano "
    "neuron quantum entropy catalyst genome isotope",
}

QUESTION_TEMPLATES = (
    "What did I write about {a} and {b}?",
    "How do I {a} the {b}?",
    "Where are my notes on {a} {b} {c}?",
    "Summarise what I know about {a}, {b} and {c}.",
    "When did I last deal with {a} and {b}?",
    "Why did the {a} need {b}?",
    "Remind me about {a} {b}",
    "What was the plan for {a} with {b} and {c}?",
)


def made_up_words(rng: random.Random, count: int) -> list[str]:
    """`count` distinct pronounceable made-up words (the long tail of a vocabulary)."""
    onsets = "b c d f g h k l m n p r s t v z br tr st pl gr sk sl ch sh th".split()
    vowels = "a e i o u ai ea io ou".split()
    codas = ["", "", "n", "r", "l", "s", "t", "m", "nd", "rk", "st"]
    words: set[str] = set()
    while len(words) < count:
        syllables = rng.choice((2, 2, 3, 3, 4))
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        words.add(word + rng.choice(codas))
    return sorted(words)


def zipf_weights(n: int, s: float = 1.0, offset: int = 10) -> list[float]:
    """Zipf-Mandelbrot weights: the most common made-up word is in about 40% of the notes
    (like "use" or "time" in English), the median one in a few dozen."""
    return [1.0 / ((rank + offset) ** s) for rank in range(1, n + 1)]


class Corpus:
    """Generates notes and questions from one seed."""

    def __init__(self, seed: int = SEED, tail_words: int = 4000):
        self.rng = random.Random(seed)
        self.tail = made_up_words(self.rng, tail_words)
        self.rng.shuffle(self.tail)
        self.tail_cum = _cumulative(zipf_weights(len(self.tail)))
        self.topics = {name: words.split() for name, words in TOPICS.items()}
        self.topic_words = {w for words in self.topics.values() for w in words}

    def _tail_word(self) -> str:
        return self.rng.choices(self.tail, cum_weights=self.tail_cum, k=1)[0]

    def _sentence(self, topic: list[str]) -> list[str]:
        words = []
        for _ in range(self.rng.randint(8, 16)):
            roll = self.rng.random()
            if roll < 0.40:
                words.append(self.rng.choice(FUNCTION_WORDS))
            elif roll < 0.70:
                words.append(self.rng.choice(topic))
            else:
                words.append(self._tail_word())
        return words

    def note(self, index: int) -> tuple[str, str, list[str]]:
        """Title, Markdown text and content words of note `index`."""
        topic_name = self.rng.choice(sorted(self.topics))
        topic = self.topics[topic_name]
        title_words = [self.rng.choice(topic), self._tail_word(), self._tail_word()]
        title = f"{topic_name.capitalize()}: {' '.join(title_words)} ({index})"
        paragraphs, content = [], set(title_words)
        for _ in range(self.rng.randint(2, 4)):
            sentences = [self._sentence(topic) for _ in range(self.rng.randint(2, 5))]
            for s in sentences:
                content.update(w for w in s if w not in FUNCTION_WORDS)
            paragraphs.append(" ".join(" ".join(s).capitalize() + "." for s in sentences))
        bullets = [f"- {self.rng.choice(topic)} {self._tail_word()}" for _ in range(3)]
        text = f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n\n" + "\n".join(bullets) + "\n"
        return title, text, sorted(content)

    def question(self, content: list[str]) -> str:
        """A question about three words of one note, usually led by a topic word (people
        ask about "the sourdough starter", not only about rare words)."""
        a, b, c = self.rng.sample(content, 3) if len(content) >= 3 else (content * 3)[:3]
        topical = [w for w in content if w in self.topic_words]
        if topical and self.rng.random() < 0.7:
            a = self.rng.choice(topical)
        return self.rng.choice(QUESTION_TEMPLATES).format(a=a, b=b, c=c)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def write_corpus(
    notes_dir: Path, notes: int, users: list[str], questions: int, seed: int = SEED
) -> list[str]:
    """Writes `notes` Markdown files under `notes_dir/<user>/` (round-robin over `users`)
    and returns `questions` distinct questions built from random notes' words."""
    corpus = Corpus(seed)
    contents: list[list[str]] = []
    for user in users:
        (notes_dir / user).mkdir(parents=True, exist_ok=True)
    for i in range(notes):
        _, text, content = corpus.note(i)
        (notes_dir / users[i % len(users)] / f"note-{i:05d}.md").write_text(text)
        contents.append(content)
    asked: list[str] = []
    seen: set[str] = set()
    for _ in range(questions * 20):
        if len(asked) == questions:
            break
        q = corpus.question(corpus.rng.choice(contents))
        if q.lower() not in seen:
            seen.add(q.lower())
            asked.append(q)
    return asked


def write_bodies(path: Path, questions: list[str], users: list[str], seed: int,
                 streamed: float = 0.0) -> int:
    """One JSON request body per line: every (question, user) pair, shuffled; the share
    `streamed` of them ask for a streamed answer (`"stream": true`).

    The load tool picks lines at random, so a run asks each pair about equally often and
    the cache holds some of the answers but not all.
    """
    rng = random.Random(seed)
    bodies = [
        json.dumps({"query": q, "user_id": u, **({"stream": True} if rng.random() < streamed
                                                  else {})}, separators=(",", ":"))
        for q in questions
        for u in users
    ]
    rng.shuffle(bodies)
    path.write_text("\n".join(bodies) + "\n")
    return len(bodies)


def write_chat_bodies(path: Path, questions: list[str]) -> None:
    """Chat-completion bodies shaped like the ones Breakwater sends (a system prompt, five
    excerpts, the question), for the baseline that calls fake-llm directly."""
    rng = random.Random(3)
    lines = []
    for q in questions:
        words = q.rstrip("?.").split()
        notes = "\n".join(
            f"[{i}] Note {rng.randint(1, 9999)}: …" + " ".join(rng.choices(words, k=32)) + "…"
            for i in range(1, 6))
        lines.append(json.dumps({
            "model": "bench",
            "messages": [
                {"role": "system", "content": "Answer only from the user's notes below."},
                {"role": "user", "content": f"Notes:\n{notes}\n\nQuestion: {q}"},
            ],
            "max_tokens": 512, "temperature": 0.2, "stream": False,
        }, separators=(",", ":"), ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")
