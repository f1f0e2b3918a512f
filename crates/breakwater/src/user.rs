//! Who a request acts for.
//!
//! Every note, search and cached answer belongs to exactly one [`UserId`]. The id is parsed
//! once at the edge (HTTP body, CLI flag) so the rest of the code can rely on it being short
//! and made of safe characters: it ends up in SQL parameters, cache keys, logs and metrics.
//!
//! ```
//! use breakwater::user::UserId;
//!
//! let user = UserId::parse("alice@example.com")?;
//! assert_eq!(user.as_str(), "alice@example.com");
//! assert_eq!(UserId::default().as_str(), "default");
//! assert!(UserId::parse("bob smith").is_err());
//! # Ok::<(), breakwater::user::InvalidUserId>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest user id accepted, in characters.
pub const MAX_USER_ID_LEN: usize = 128;

/// The user id used when a request names none.
const DEFAULT_USER_ID: &str = "default";

/// A validated user id: 1 to 128 characters of `A-Z a-z 0-9 _ . @ : -`.
///
/// Serialises as a plain JSON string; deserialising validates like [`UserId::parse`].
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// Why a string is not a valid [`UserId`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserId {
    /// The id is the empty string.
    #[error("the user id is empty; it needs at least one character")]
    Empty,
    /// The id is longer than [`MAX_USER_ID_LEN`] characters.
    #[error("the user id is {len} characters long; the limit is {MAX_USER_ID_LEN}")]
    TooLong {
        /// The length of the rejected id, in characters.
        len: usize,
    },
    /// The id contains a character outside the allowed set.
    #[error(
        "the user id contains {ch:?} at position {position}; only letters A-Z a-z, digits and _ . @ : - are allowed"
    )]
    InvalidChar {
        /// The first offending character.
        ch: char,
        /// Its position, counted in characters from 0.
        position: usize,
    },
}

impl UserId {
    /// Parses and validates a user id.
    ///
    /// # Errors
    ///
    /// [`InvalidUserId`] when the id is empty, longer than 128 characters, or contains a
    /// character other than ASCII letters, digits and `_ . @ : -`.
    pub fn parse(s: &str) -> Result<UserId, InvalidUserId> {
        if s.is_empty() {
            return Err(InvalidUserId::Empty);
        }
        if let Some((position, ch)) = s.chars().enumerate().find(|&(_, c)| !is_allowed(c)) {
            return Err(InvalidUserId::InvalidChar { ch, position });
        }
        // Only ASCII is left, so bytes and characters agree.
        if s.len() > MAX_USER_ID_LEN {
            return Err(InvalidUserId::TooLong { len: s.len() });
        }
        Ok(UserId(s.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | ':' | '-')
}

impl Default for UserId {
    /// The user `"default"`, for requests that name no user.
    fn default() -> Self {
        UserId(DEFAULT_USER_ID.to_owned())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserId {
    type Err = InvalidUserId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserId::parse(s)
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserId::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(user: UserId) -> String {
        user.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        let id = "Az09_.@:-";
        assert_eq!(UserId::parse(id).map(|u| u.to_string()), Ok(id.to_owned()));
    }

    #[test]
    fn accepts_exactly_the_maximum_length() {
        assert!(UserId::parse(&"a".repeat(MAX_USER_ID_LEN)).is_ok());
    }

    #[test]
    fn rejects_empty_too_long_and_foreign_characters() {
        assert_eq!(UserId::parse(""), Err(InvalidUserId::Empty));
        assert_eq!(
            UserId::parse(&"a".repeat(MAX_USER_ID_LEN + 1)),
            Err(InvalidUserId::TooLong {
                len: MAX_USER_ID_LEN + 1
            })
        );
        assert_eq!(
            UserId::parse("al ice"),
            Err(InvalidUserId::InvalidChar {
                ch: ' ',
                position: 2
            })
        );
        assert!(UserId::parse("é").is_err());
        assert!(UserId::parse("a/b").is_err());
    }

    #[test]
    fn error_message_names_the_problem() {
        let err = UserId::parse("a b").expect_err("space is not allowed");
        assert!(err.to_string().contains("' '"), "{err}");
    }

    #[test]
    fn serialises_as_a_plain_string_and_validates_on_the_way_in() {
        let user = UserId::parse("alice").expect("valid");
        assert_eq!(
            serde_json::to_string(&user).expect("serialise"),
            "\"alice\""
        );
        let back: UserId = serde_json::from_str("\"alice\"").expect("deserialise");
        assert_eq!(back, user);
        assert!(serde_json::from_str::<UserId>("\"a b\"").is_err());
    }
}
