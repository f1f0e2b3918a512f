//! A note, the bounds every note must respect, and its content hash.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::NotesError;

/// The longest title accepted, in characters, after trimming surrounding whitespace.
pub const MAX_TITLE_CHARS: usize = 300;

/// The largest body accepted, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 1_000_000;

/// One note of one user, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Note {
    /// Opaque id: 32 lowercase hex characters.
    pub id: String,
    /// The owner's user id.
    pub user_id: String,
    /// Title, trimmed, 1 to 300 characters.
    pub title: String,
    /// Body text, 1 to 1,000,000 bytes.
    pub body: String,
    /// The canonical path of the file it was ingested from; `None` for notes made via the API.
    pub source: Option<String>,
    /// When the note was created, RFC 3339 UTC with milliseconds.
    pub created_at: String,
    /// When the note was last changed, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

/// The columns [`Note::from_row`] reads, in order.
pub(crate) const NOTE_COLUMNS: &str = "id, user_id, title, body, source, created_at, updated_at";

impl Note {
    /// Reads a note from a row selected with [`NOTE_COLUMNS`].
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
        Ok(Note {
            id: row.get(0)?,
            user_id: row.get(1)?,
            title: row.get(2)?,
            body: row.get(3)?,
            source: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
        })
    }
}

/// Checks a title and returns it trimmed, as it will be stored.
pub(crate) fn validate_title(title: &str) -> Result<&str, NotesError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(NotesError::invalid("title", "it must not be empty"));
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        return Err(NotesError::invalid(
            "title",
            format!("it is {chars} characters long; the limit is {MAX_TITLE_CHARS}"),
        ));
    }
    Ok(title)
}

/// Checks a body; it is stored as given.
pub(crate) fn validate_body(body: &str) -> Result<&str, NotesError> {
    // A blank body has nothing to retrieve, so it is refused like an empty one.
    if body.trim().is_empty() {
        return Err(NotesError::invalid("body", "it must not be empty or blank"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(NotesError::invalid(
            "body",
            format!(
                "it is {} bytes long; the limit is {MAX_BODY_BYTES}",
                body.len()
            ),
        ));
    }
    Ok(body)
}

/// The sha256 of a note's title and body, hex-encoded.
///
/// The title's length goes first so that no two (title, body) pairs share an input.
pub(crate) fn content_hash(title: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update((title.len() as u64).to_le_bytes());
    hasher.update(title.as_bytes());
    hasher.update(body.as_bytes());
    format!("{:x}", hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_trimmed_and_bounded_in_characters() {
        assert_eq!(validate_title("  hi \n").ok(), Some("hi"));
        assert!(validate_title(" \t ").is_err());
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(validate_title(&"é".repeat(MAX_TITLE_CHARS + 1)).is_err());
    }

    #[test]
    fn body_is_bounded_in_bytes() {
        assert!(validate_body(&"a".repeat(MAX_BODY_BYTES)).is_ok());
        assert!(validate_body(&"a".repeat(MAX_BODY_BYTES + 1)).is_err());
        assert!(validate_body("").is_err());
    }

    #[test]
    fn hash_separates_title_from_body() {
        assert_ne!(content_hash("ab", "c"), content_hash("a", "bc"));
        assert_eq!(content_hash("a", "b").len(), 64);
    }
}
