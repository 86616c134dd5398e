//! The master key that encrypts credentials at rest, and the AEAD around it.
//!
//! The key comes from `AISPEND_MASTER_KEY` (base64, 32 bytes) or from
//! `<data_dir>/master.key`, created on first start with mode 0600. Each ciphertext is
//! stored with the id of the key that made it (the first 8 hex digits of the key's
//! SHA-256), so keys can rotate: when `AISPEND_MASTER_KEY` is set and a different key
//! file is also present, both are loaded, the environment's key encrypts, and secrets
//! under the file's key still decrypt until they are re-entered.
//!
//! Encryption is XChaCha20-Poly1305 with a random 192-bit nonce per secret, and the
//! credential id as associated data, so a ciphertext cannot be moved to another row.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// Length of a master key.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

/// Name of the key file in the data directory.
pub const KEY_FILE: &str = "master.key";

/// One master key and its id.
struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    fn new(bytes: &[u8; KEY_BYTES]) -> MasterKey {
        let digest = Sha256::digest(bytes);
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        MasterKey {
            id,
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

/// The loaded master keys: the current one (encrypts) and older ones (decrypt only).
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keyring(current {}, {} previous)",
            self.current.id,
            self.previous.len()
        )
    }
}

/// A secret, encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Nonce, then ciphertext and tag.
    pub bytes: Vec<u8>,
    /// The id of the key that sealed it.
    pub key_id: String,
}

fn decode_key(text: &str, source: &str) -> anyhow::Result<[u8; KEY_BYTES]> {
    let bytes = BASE64.decode(text.trim()).map_err(|_| {
        anyhow::anyhow!("{source} is not base64 (generate one with `openssl rand -base64 32`)")
    })?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "{source} must decode to {KEY_BYTES} bytes, not {}",
            bytes.len()
        )
    })
}

impl Keyring {
    /// A keyring of one key (tests, tools).
    pub fn from_key(key: &[u8; KEY_BYTES]) -> Keyring {
        Keyring {
            current: MasterKey::new(key),
            previous: Vec::new(),
        }
    }

    /// Loads the key from `AISPEND_MASTER_KEY` (`env_key`) or the key file in
    /// `data_dir`, creating the file (mode 0600) when neither exists.
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> anyhow::Result<Keyring> {
        let file = data_dir.join(KEY_FILE);
        let from_file = if file.exists() {
            Some(read_key_file(&file)?)
        } else {
            None
        };
        match env_key.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => {
                let current = MasterKey::new(&decode_key(text, "AISPEND_MASTER_KEY")?);
                let previous = from_file
                    .map(|k| MasterKey::new(&k))
                    .filter(|k| k.id != current.id)
                    .into_iter()
                    .collect();
                Ok(Keyring { current, previous })
            }
            None => match from_file {
                Some(key) => Ok(Keyring::from_key(&key)),
                None => {
                    let key = create_key_file(&file)?;
                    tracing::info!(path = %file.display(), "created a master key for credentials (mode 0600); back it up with the database");
                    Ok(Keyring::from_key(&key))
                }
            },
        }
    }

    /// The id of the key that encrypts new secrets.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Encrypts a secret, binding it to `context` (the credential id).
    pub fn seal(&self, secret: &str, context: &[u8]) -> anyhow::Result<Sealed> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: context,
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting a secret failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend(ciphertext);
        Ok(Sealed {
            bytes,
            key_id: self.current.id.clone(),
        })
    }

    /// Decrypts a secret sealed under any loaded key.
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> anyhow::Result<String> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the secret was encrypted under master key {}, which is not loaded",
                    sealed.key_id
                )
            })?;
        if sealed.bytes.len() < NONCE_BYTES {
            anyhow::bail!("the stored secret is truncated");
        }
        let (nonce, ciphertext) = sealed.bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored secret is truncated"))?;
        let plain = key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("the stored secret does not decrypt (wrong key or tampered row)")
            })?;
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("the stored secret is not text"))
    }
}

fn read_key_file(path: &PathBuf) -> anyhow::Result<[u8; KEY_BYTES]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the master key file {}: {e}", path.display()))?;
    decode_key(&text, &format!("the master key file {}", path.display()))
}

fn create_key_file(path: &PathBuf) -> anyhow::Result<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("creating the master key file {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", BASE64.encode(key)).as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

/// Replaces the key file in `data_dir` with `key_text` (base64 of 32 bytes), mode
/// 0600, atomically (a new file renamed over the old one): after a rotation, the old
/// key is gone and the data directory holds the key every secret is sealed under.
pub fn replace_key_file(data_dir: &Path, key_text: &str) -> anyhow::Result<PathBuf> {
    let key = decode_key(key_text, "AISPEND_MASTER_KEY")?;
    let path = data_dir.join(KEY_FILE);
    let fresh = data_dir.join(format!("{KEY_FILE}.new"));
    let _ = std::fs::remove_file(&fresh);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&fresh)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", fresh.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", BASE64.encode(key)).as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&fresh, &path)
        .map_err(|e| anyhow::anyhow!("replacing {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_context() {
        let ring = Keyring::from_key(&[7; 32]);
        let sealed = ring.seal("sk-admin-abcdef123456", b"id-1").unwrap();
        assert!(!sealed.bytes.windows(6).any(|w| w == b"abcdef"));
        assert_eq!(
            ring.open(&sealed, b"id-1").unwrap(),
            "sk-admin-abcdef123456"
        );
        assert!(ring.open(&sealed, b"id-2").is_err());
        let other = Keyring::from_key(&[8; 32]);
        assert!(
            other
                .open(&sealed, b"id-1")
                .unwrap_err()
                .to_string()
                .contains(&sealed.key_id)
        );
        assert_ne!(
            ring.seal("x", b"c").unwrap().bytes,
            ring.seal("x", b"c").unwrap().bytes
        );
    }

    #[test]
    fn creates_a_private_key_file_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = Keyring::load(None, dir.path()).unwrap();
        assert_eq!(first.current_id(), again.current_id());
        let sealed = first.seal("old secret", b"c").unwrap();
        let new_key = BASE64.encode([9u8; 32]);
        let rotated = Keyring::load(Some(&new_key), dir.path()).unwrap();
        assert_ne!(rotated.current_id(), first.current_id());
        assert_eq!(rotated.open(&sealed, b"c").unwrap(), "old secret");
        assert!(Keyring::load(Some("not base64!"), dir.path()).is_err());
        assert!(Keyring::load(Some(&BASE64.encode([1u8; 16])), dir.path()).is_err());
    }
}
