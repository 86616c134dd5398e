//! The one boundary where a budget's webhook secret is sealed for storage and opened
//! for signing.
//!
//! There is no at-rest encryption in this branch yet: the secret is stored encoded
//! with a `plain:` tag. When the credentials module (AEAD under the master key) is
//! available, [`seal`] and [`open`] are the only functions to change: `open` keeps
//! reading `plain:` values, and `seal` writes the new tagged form, so existing rows
//! keep working and are re-sealed on their next update. The API never returns the
//! secret either way — only whether one is set.

use crate::domain::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PLAIN: &str = "plain:";

/// The stored form of a secret.
pub fn seal(secret: &str) -> Result<String> {
    Ok(format!("{PLAIN}{}", STANDARD.encode(secret.as_bytes())))
}

/// The secret from its stored form.
pub fn open(stored: &str) -> Result<String> {
    let undecodable =
        |e: String| Error::internal("opening a stored webhook secret", anyhow::anyhow!(e));
    let Some(encoded) = stored.strip_prefix(PLAIN) else {
        return Err(undecodable("unknown sealing scheme".into()));
    };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| undecodable(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| undecodable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_tagged() {
        let sealed = seal("whsec-0123456789abcdef").unwrap();
        assert!(sealed.starts_with("plain:"));
        assert!(!sealed.contains("whsec"));
        assert_eq!(open(&sealed).unwrap(), "whsec-0123456789abcdef");
        assert!(open("aead:v1:xyz").is_err());
    }
}
