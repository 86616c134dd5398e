//! The one boundary where a budget's webhook secret is sealed for storage and opened
//! for signing: XChaCha20-Poly1305 under the master key (the same [`Keyring`] that
//! seals provider credentials), bound to the budget's id so a sealed secret copied to
//! another budget does not open. Stored as `aead:<key id>:<base64 nonce+ciphertext>`;
//! the key id lets a rotated key keep opening older secrets. The API never returns the
//! secret — only whether one is set.

use crate::domain::error::{Error, Result};
use crate::domain::ids::BudgetId;
use crate::domain::keyring::{Keyring, Sealed};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const SCHEME: &str = "aead:";

fn context(budget: BudgetId) -> Vec<u8> {
    let mut c = b"aispend budget webhook secret ".to_vec();
    c.extend_from_slice(budget.0.as_bytes());
    c
}

/// The stored form of a secret.
pub fn seal(keyring: &Keyring, budget: BudgetId, secret: &str) -> Result<String> {
    seal_with(keyring, &context(budget), secret)
}

/// The stored form of a secret bound to `context` (another owner than a budget, e.g. a
/// notification channel).
pub fn seal_with(keyring: &Keyring, context: &[u8], secret: &str) -> Result<String> {
    let sealed = keyring
        .seal(secret, context)
        .map_err(|e| Error::internal("sealing a webhook secret", e))?;
    Ok(format!(
        "{SCHEME}{}:{}",
        sealed.key_id,
        STANDARD.encode(&sealed.bytes)
    ))
}

/// The id of the key a stored secret was sealed under.
pub fn key_id(stored: &str) -> Option<&str> {
    stored
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id)
}

/// The start of every secret sealed under key `key_id` (for finding the others).
pub fn prefix_for(key_id: &str) -> String {
    format!("{SCHEME}{key_id}:")
}

/// The secret from its stored form.
pub fn open(keyring: &Keyring, budget: BudgetId, stored: &str) -> Result<String> {
    open_with(keyring, &context(budget), stored)
}

/// The secret from its stored form, sealed with [`seal_with`] under `context`.
pub fn open_with(keyring: &Keyring, context: &[u8], stored: &str) -> Result<String> {
    let undecodable =
        |e: String| Error::internal("opening a stored webhook secret", anyhow::anyhow!(e));
    let (key_id, encoded) = stored
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| undecodable("unknown sealing scheme".into()))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| undecodable(e.to_string()))?;
    keyring
        .open(
            &Sealed {
                bytes,
                key_id: key_id.to_owned(),
            },
            context,
        )
        .map_err(|e| Error::internal("opening a stored webhook secret", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_under_the_master_key_bound_to_the_budget() {
        let keyring = Keyring::from_key(&[7u8; 32]);
        let (a, b) = (BudgetId::generate(), BudgetId::generate());
        let sealed = seal(&keyring, a, "whsec-0123456789abcdef").unwrap();
        assert!(sealed.starts_with("aead:"));
        assert!(
            !sealed.contains("whsec"),
            "the stored form does not contain the secret"
        );
        assert_eq!(
            open(&keyring, a, &sealed).unwrap(),
            "whsec-0123456789abcdef"
        );
        assert!(open(&keyring, b, &sealed).is_err(), "bound to its budget");
        assert!(
            open(&Keyring::from_key(&[8u8; 32]), a, &sealed).is_err(),
            "needs the key"
        );
        assert!(open(&keyring, a, "plain:d2hzZWM=").is_err());
    }
}
