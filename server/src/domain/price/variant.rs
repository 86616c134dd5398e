//! The pricing variant of an event: what a per-unit fee depends on besides the model.
//!
//! Some units cost a different amount per unit depending on how the call was made:
//! Perplexity's per-request search fee by search context size (`low`, `medium`,
//! `high`), a generated image by quality and size (`hd/1024x1024`, `1024x1024`), a
//! second of video by resolution (`720p`, `4k`). An event names its variant; a rate
//! card lists per-unit rates per variant ([`super::rates::RateCard::variants`]).
//!
//! A variant is written in one canonical spelling, so that the event's and the card's
//! compare as plain strings: lower case, ASCII letters, digits and `.`, `_`, `-`, with
//! `/` between parts (quality before size); an image size is `WIDTHxHEIGHT` (LiteLLM's
//! `1024-x-1024` is read as `1024x1024`). At most [`Variant::MAX_LEN`] characters.

use std::fmt;

/// A canonical pricing variant (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant(String);

impl Variant {
    /// Longest variant accepted.
    pub const MAX_LEN: usize = 64;

    /// Parses a variant as a user or a provider writes it: surrounding spaces are
    /// dropped, letters are lowered, `-x-` between digits and `X` become `x`. Anything
    /// else outside the canonical alphabet is refused with the reason.
    pub fn parse(text: &str) -> Result<Variant, String> {
        let lowered = text.trim().to_ascii_lowercase().replace("-x-", "x");
        if lowered.is_empty() {
            return Err("a variant must not be empty".into());
        }
        if lowered.len() > Self::MAX_LEN {
            return Err(format!(
                "a variant has at most {} characters",
                Self::MAX_LEN
            ));
        }
        if let Some(bad) = lowered
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
        {
            return Err(format!(
                "`{bad}` is not allowed in a variant (letters, digits, `.`, `_`, `-`, and `/` between parts)"
            ));
        }
        if lowered.split('/').any(str::is_empty) {
            return Err("a variant's parts, separated by `/`, must not be empty".into());
        }
        Ok(Variant(lowered))
    }

    /// The canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_spellings() {
        let ok = |s: &str| Variant::parse(s).map(|v| v.0);
        assert_eq!(ok(" Low ").as_deref(), Ok("low"));
        assert_eq!(ok("HD/1024-x-1792").as_deref(), Ok("hd/1024x1792"));
        assert_eq!(ok("1024X1024").as_deref(), Ok("1024x1024"));
        assert_eq!(ok("4K").as_deref(), Ok("4k"));
        assert!(ok("").is_err());
        assert!(ok("hd//1024x1024").is_err());
        assert!(ok("/low").is_err());
        assert!(ok("low medium").is_err());
        assert!(ok(&"a".repeat(65)).is_err());
    }
}
