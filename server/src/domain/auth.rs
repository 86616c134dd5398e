//! Who is calling, and what they may do.
//!
//! Tokens are random 40-character strings behind an `asp_` prefix; only their SHA-256
//! is stored. Scopes: `INGEST` may only record usage, `READ` may query, `ADMIN` may do
//! both and manage projects, tokens and prices. A token bound to a project sees and
//! writes only that project.

use crate::domain::error::{Context, Error, Result};
use crate::domain::ids::{ApiTokenId, ProjectId};
use crate::domain::time;
use crate::entity::api_token;
use rand::Rng;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A permission a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Record usage.
    Ingest,
    /// Query usage, prices, projects.
    Read,
    /// Everything, including managing projects, tokens and prices.
    Admin,
}

impl Scope {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "INGEST",
            Scope::Read => "READ",
            Scope::Admin => "ADMIN",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "INGEST" => Ok(Scope::Ingest),
            "READ" => Ok(Scope::Read),
            "ADMIN" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope `{other}`; expected INGEST, READ or ADMIN"
            )),
        }
    }
}

/// A set of scopes, stored as a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Builds a sorted, de-duplicated set.
    pub fn new(mut scopes: Vec<Scope>) -> Scopes {
        scopes.sort();
        scopes.dedup();
        Scopes(scopes)
    }

    /// Whether the set grants `scope` (`ADMIN` grants everything).
    pub fn grants(&self, scope: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&scope)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Scopes {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(Scope::from_str)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Scopes::new)
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No token, or a token that is wrong or revoked.
    Anonymous,
    /// The operator's bootstrap token (`AISPEND_ADMIN_TOKEN`): a global admin.
    Operator,
    /// A stored API token.
    Token {
        /// The token's id.
        id: ApiTokenId,
        /// The project it is bound to, if any.
        project: Option<ProjectId>,
        /// What it may do.
        scopes: Scopes,
    },
}

impl Principal {
    fn scopes_grant(&self, scope: Scope) -> Result<()> {
        match self {
            Principal::Anonymous => Err(Error::Unauthorized),
            Principal::Operator => Ok(()),
            Principal::Token { scopes, .. } if scopes.grants(scope) => Ok(()),
            Principal::Token { .. } => Err(Error::Forbidden(format!(
                "this token lacks the {} scope",
                scope.as_str()
            ))),
        }
    }

    /// The project this caller is confined to, if any.
    pub fn project(&self) -> Option<ProjectId> {
        match self {
            Principal::Token { project, .. } => *project,
            _ => None,
        }
    }

    /// Requires a scope, whatever the project.
    pub fn require(&self, scope: Scope) -> Result<()> {
        self.scopes_grant(scope)
    }

    /// Requires a scope on one project.
    pub fn require_on(&self, scope: Scope, project: ProjectId) -> Result<()> {
        self.scopes_grant(scope)?;
        match self.project() {
            Some(own) if own != project => Err(Error::Forbidden(
                "this token is bound to another project".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Requires an admin that is not bound to a project.
    pub fn require_global_admin(&self) -> Result<()> {
        self.scopes_grant(Scope::Admin)?;
        if self.project().is_some() {
            return Err(Error::Forbidden(
                "only an admin token that is not bound to a project may do this".into(),
            ));
        }
        Ok(())
    }

    /// For a read: the projects the caller may see among those asked for. An empty
    /// result means "all projects" for an unbound caller.
    pub fn readable_projects(&self, requested: &[ProjectId]) -> Result<Vec<ProjectId>> {
        self.scopes_grant(Scope::Read)?;
        match self.project() {
            None => Ok(requested.to_vec()),
            Some(own) if requested.iter().all(|p| *p == own) => Ok(vec![own]),
            Some(_) => Err(Error::Forbidden(
                "this token may only read its own project".into(),
            )),
        }
    }
}

/// Prefix of every token aispend issues, so secret scanners can recognise one.
pub const TOKEN_PREFIX: &str = "asp_";

/// Generates a fresh token text: `asp_` and 40 random base-62 characters (238 bits).
pub fn generate_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A recognisable, non-secret hint of a token: its first eight characters.
pub fn token_hint(token: &str) -> String {
    let head: String = token.chars().take(8).collect();
    format!("{head}…")
}

/// How long a resolved token is trusted before it is looked up again. Revocation in
/// this process takes effect at once; in another process sharing the database, within
/// this time.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// How often `last_used_at` is written for a busy token.
const LAST_USED_EVERY: i64 = 5 * 60 * 1_000_000;

/// Most valid tokens kept in the cache; past it, expired entries go first, then the
/// oldest. Only tokens that resolved to a principal are cached, so random guesses
/// cannot fill it (or flush the entries of real clients).
const CACHE_CAPACITY: usize = 10_000;

/// Resolves bearer tokens to principals, with a short-lived cache so ingest does not
/// read the token table on every request.
pub struct Authenticator {
    operator_hash: Option<String>,
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
    /// Bumped on every revocation in this process, so long-lived connections
    /// (websockets, streamed exports) check their token again at once.
    revocations: tokio::sync::watch::Sender<u64>,
}

impl Authenticator {
    /// `operator_token` is `AISPEND_ADMIN_TOKEN`, if set.
    pub fn new(operator_token: Option<&str>) -> Self {
        Self {
            operator_hash: operator_token.map(hash_token),
            cache: Mutex::new(HashMap::new()),
            revocations: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever a token is revoked in this process. Revocations by another
    /// process sharing the database are seen within [`Self::recheck_interval`].
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    /// How often a long-lived connection should check its token again to notice a
    /// revocation made by another process (the cache's lifetime).
    pub fn recheck_interval() -> Duration {
        CACHE_TTL
    }

    /// Whether an operator token is configured.
    pub fn has_operator_token(&self) -> bool {
        self.operator_hash.is_some()
    }

    /// Resolves a bearer token (or its absence) to a principal. A wrong or revoked
    /// token is anonymous: every operation then fails with `UNAUTHORIZED`.
    pub async fn authenticate(
        &self,
        conn: &impl ConnectionTrait,
        token: Option<&str>,
    ) -> Result<Principal> {
        self.resolve(conn, token, true).await
    }

    /// Like [`Self::authenticate`], reading the token table even when the token is
    /// cached: a long-lived connection's periodic check sees a revocation made by
    /// another process at once.
    pub async fn authenticate_fresh(
        &self,
        conn: &impl ConnectionTrait,
        token: Option<&str>,
    ) -> Result<Principal> {
        self.resolve(conn, token, false).await
    }

    async fn resolve(
        &self,
        conn: &impl ConnectionTrait,
        token: Option<&str>,
        use_cache: bool,
    ) -> Result<Principal> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Principal::Anonymous);
        };
        let hash = hash_token(token);
        if self.operator_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Principal::Operator);
        }
        if use_cache && let Some(hit) = self.cached(&hash) {
            return Ok(hit);
        }
        let row = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash.as_str()))
            .one(conn)
            .await
            .context("looking up an API token")?;
        let principal = match row {
            Some(row) if row.revoked_at.is_none() => {
                let now = time::to_micros(time::now());
                if row.last_used_at.is_none_or(|t| now - t > LAST_USED_EVERY) {
                    api_token::Entity::update(api_token::ActiveModel {
                        id: Set(row.id),
                        last_used_at: Set(Some(now)),
                        ..Default::default()
                    })
                    .exec(conn)
                    .await
                    .context("recording when a token was last used")?;
                }
                Principal::Token {
                    id: ApiTokenId(row.id),
                    project: row.project_id.map(ProjectId),
                    scopes: row.scopes.parse().map_err(|e: String| {
                        Error::internal("decoding token scopes", anyhow::anyhow!(e))
                    })?,
                }
            }
            _ => Principal::Anonymous,
        };
        if matches!(principal, Principal::Token { .. })
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            }
            if cache.len() >= CACHE_CAPACITY
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
            cache.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }

    /// How many tokens are cached (for tests of the cache's bounds).
    pub fn cached_tokens(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn cached(&self, hash: &str) -> Option<Principal> {
        let cache = self.cache.lock().ok()?;
        let (principal, at) = cache.get(hash)?;
        (at.elapsed() < CACHE_TTL).then(|| principal.clone())
    }

    /// Forgets every cached token (after a revocation) and tells long-lived
    /// connections to check their tokens again.
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
        self.revocations.send_modify(|generation| *generation += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(project: Option<ProjectId>, scopes: &[Scope]) -> Principal {
        Principal::Token {
            id: ApiTokenId::generate(),
            project,
            scopes: Scopes::new(scopes.to_vec()),
        }
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = generate_token();
        assert!(a.starts_with("asp_") && a.len() == 44);
        assert_ne!(a, generate_token());
        assert_eq!(hash_token(&a).len(), 64);
        assert!(!hash_token(&a).contains(&a[4..]));
    }

    #[test]
    fn ingest_may_only_record() {
        let p = ProjectId::generate();
        let ingest = token(Some(p), &[Scope::Ingest]);
        assert!(ingest.require_on(Scope::Ingest, p).is_ok());
        assert_eq!(ingest.require(Scope::Read).unwrap_err().code(), "FORBIDDEN");
    }

    #[test]
    fn a_bound_token_stays_in_its_project() {
        let (p, q) = (ProjectId::generate(), ProjectId::generate());
        let t = token(Some(p), &[Scope::Admin]);
        assert_eq!(
            t.require_on(Scope::Ingest, q).unwrap_err().code(),
            "FORBIDDEN"
        );
        assert_eq!(t.readable_projects(&[]).unwrap(), vec![p]);
        assert_eq!(t.readable_projects(&[q]).unwrap_err().code(), "FORBIDDEN");
        assert_eq!(t.require_global_admin().unwrap_err().code(), "FORBIDDEN");
    }

    #[test]
    fn nobody_is_unauthorized() {
        assert_eq!(
            Principal::Anonymous
                .require(Scope::Ingest)
                .unwrap_err()
                .code(),
            "UNAUTHORIZED"
        );
    }

    #[test]
    fn scopes_round_trip_through_text() {
        let s: Scopes = "READ, ingest,READ".parse().unwrap();
        assert_eq!(s.to_string(), "INGEST,READ");
        assert!("READ,WRITE".parse::<Scopes>().is_err());
    }
}
