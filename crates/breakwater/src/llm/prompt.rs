//! The grounded prompt: the user's excerpts, then the question.

use std::fmt::Write as _;

use crate::notes::Excerpt;

const SYSTEM: &str = "You answer questions using only the user's notes below. \
If the notes do not contain the answer, say so plainly. \
Refer to the notes by their titles. Be concise.";

/// What the LLM is asked: instructions, the excerpts that ground the answer, the question.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// Standing instructions (the chat `system` message).
    pub system: String,
    /// The excerpts and the question (the chat `user` message).
    pub user: String,
}

impl Prompt {
    /// Builds the prompt for `question` grounded in `excerpts`.
    ///
    /// ```
    /// use breakwater::llm::Prompt;
    /// let p = Prompt::grounded("What opens the circuit?", &[]);
    /// assert!(p.user.ends_with("Question: What opens the circuit?"));
    /// ```
    pub fn grounded(question: &str, excerpts: &[Excerpt]) -> Self {
        let mut user = String::from("Notes:\n");
        if excerpts.is_empty() {
            user.push_str("(no note matches this question)\n");
        }
        for (i, e) in excerpts.iter().enumerate() {
            // Writing to a String cannot fail.
            let _ = writeln!(user, "[{}] {}: {}", i + 1, e.title, e.excerpt);
        }
        let _ = write!(user, "\nQuestion: {}", question.trim());
        Self {
            system: SYSTEM.to_owned(),
            user,
        }
    }

    /// The whole prompt as one text, for the text-generation API.
    pub fn as_text(&self) -> String {
        format!("{}\n\n{}\n\nAnswer:", self.system, self.user)
    }
}
