//! Provider credentials: an admin key or token per provider, with an optional base-URL
//! override and provider options (e.g. GitHub's `organization`).
//!
//! The secret is encrypted at rest ([`Keyring`]) and never leaves the server: reads
//! return a masked hint (`sk-ad…f3Qa`), errors and logs never contain it, and it is
//! decrypted only to hand it to the plugin call that needs it ([`material`]).
//!
//! The domain does not know the plugin host: it talks to it through
//! [`CredentialGateway`], which `plugins::PluginHost` implements.

use crate::domain::auth::{Principal, Scope};
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{CredentialId, ProjectId};
use crate::domain::keyring::{Keyring, Sealed};
use crate::domain::provider::Provider;
use crate::domain::{project, time};
use crate::entity::credential;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr,
};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// Whether a credential is known to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    /// The plugin's check passed.
    Valid,
    /// The provider rejected it (401/403).
    Invalid,
    /// Not checked yet, or the check could not decide (provider down, plugin cannot check).
    Unverified,
}

impl CredentialStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Valid => "VALID",
            CredentialStatus::Invalid => "INVALID",
            CredentialStatus::Unverified => "UNVERIFIED",
        }
    }

    fn parse(s: &str) -> Result<CredentialStatus> {
        match s {
            "VALID" => Ok(CredentialStatus::Valid),
            "INVALID" => Ok(CredentialStatus::Invalid),
            "UNVERIFIED" => Ok(CredentialStatus::Unverified),
            other => Err(Error::internal(
                "decoding a credential status",
                anyhow::anyhow!("unknown status {other}"),
            )),
        }
    }
}

/// A secret in memory. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself: only for the plugin call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", secret_hint(&self.0))
    }
}

/// A recognisable, non-secret hint: the first five and last four characters of a long
/// secret (`sk-ad…f3Qa`), less of a short one, nothing of a very short one.
pub fn secret_hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=7 => (0, 0),
        8..=15 => (2, 2),
        _ => (5, 4),
    };
    let head: String = chars[..head].iter().collect();
    let tail: String = chars[n - tail..].iter().collect();
    format!("{head}…{tail}")
}

/// What a plugin call gets: the decrypted secret, the base URL and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialMaterial {
    /// The secret.
    pub secret: Secret,
    /// Base-URL override.
    pub base_url: Option<String>,
    /// Options, sorted by key.
    pub options: Vec<(String, String)>,
}

/// The outcome of a plugin's credential check.
#[derive(Debug)]
pub enum CredentialCheck {
    /// It works.
    Valid,
    /// The provider rejected it.
    Invalid(String),
    /// Could not decide (the reason is recorded as the last error).
    Unverified(String),
    /// The plugin itself failed (crash, limit): recorded, and the call fails.
    Failed(Error),
}

/// What the credential service needs from the plugin host.
pub trait CredentialGateway {
    /// Whether a plugin exists for this provider.
    fn declared(&self, provider: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Whether a base-URL override is one the provider's plugin may reach.
    fn check_base_url(
        &self,
        provider: &str,
        base_url: &str,
    ) -> impl Future<Output = std::result::Result<(), String>> + Send;
    /// Runs the plugin's credential check.
    fn validate(
        &self,
        provider: &str,
        material: &CredentialMaterial,
    ) -> impl Future<Output = CredentialCheck> + Send;
}

/// A stored credential, as the API shows it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Id.
    pub id: CredentialId,
    /// Provider (the plugin id).
    pub provider: Provider,
    /// Unique per provider.
    pub label: String,
    /// The project its reports belong to, if any.
    pub project: Option<ProjectId>,
    /// Masked hint of the secret.
    pub secret_hint: String,
    /// Id of the master key that encrypted it.
    pub key_id: String,
    /// Base-URL override.
    pub base_url: Option<String>,
    /// Options.
    pub options: BTreeMap<String, String>,
    /// Status.
    pub status: CredentialStatus,
    /// When it was last checked.
    pub last_validated_at: Option<DateTime<Utc>>,
    /// The last check's error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<credential::Model> for Credential {
    type Error = Error;
    fn try_from(m: credential::Model) -> Result<Credential> {
        Ok(Credential {
            id: CredentialId(m.id),
            provider: Provider::parse(&m.provider).ok_or_else(|| {
                Error::internal(
                    "decoding a credential",
                    anyhow::anyhow!("bad stored provider"),
                )
            })?,
            label: m.label,
            project: m.project_id.map(ProjectId),
            secret_hint: m.secret_hint,
            key_id: m.secret_key_id,
            base_url: m.base_url,
            options: serde_json::from_str(&m.options).context("decoding credential options")?,
            status: CredentialStatus::parse(&m.status)?,
            last_validated_at: m.last_validated_at.map(time::from_micros),
            last_error: m.last_error,
            created_at: time::from_micros(m.created_at),
            updated_at: time::from_micros(m.updated_at),
        })
    }
}

/// Most options on a credential.
pub const MAX_OPTIONS: usize = 32;

/// A new credential as the client sent it.
#[derive(Debug, Clone, Default)]
pub struct RawNewCredential {
    /// Provider name.
    pub provider: String,
    /// Label.
    pub label: String,
    /// The secret.
    pub secret: String,
    /// Base-URL override.
    pub base_url: Option<String>,
    /// A JSON object of string values.
    pub options: Option<serde_json::Value>,
    /// Project id, already parsed.
    pub project: Option<ProjectId>,
}

/// A validated new credential (before the plugin-dependent checks).
#[derive(Debug, Clone)]
pub struct NewCredential {
    provider: Provider,
    label: String,
    secret: Secret,
    base_url: Option<String>,
    options: BTreeMap<String, String>,
    project: Option<ProjectId>,
}

fn parse_label(raw: &str, errors: &mut Vec<FieldError>) -> String {
    let label = raw.trim();
    if label.is_empty() || label.chars().count() > 100 {
        errors.push(FieldError::new("label", "must be 1 to 100 characters"));
    } else if let Some(problem) =
        crate::domain::text::problem(label, crate::domain::text::TextKind::Identifier)
    {
        errors.push(FieldError::new("label", problem));
    }
    label.to_owned()
}

fn parse_secret(raw: &str, errors: &mut Vec<FieldError>) -> Secret {
    let secret = raw.trim();
    if secret.is_empty() || secret.len() > 4_096 || secret.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "secret",
            "must be 1 to 4096 characters without control characters",
        ));
    }
    Secret::new(secret)
}

fn parse_base_url(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let url = raw.map(str::trim).filter(|u| !u.is_empty())?;
    let url = url.trim_end_matches('/').to_owned();
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://"))
        || url.len() > 500
        || url.contains(char::is_whitespace)
    {
        errors.push(FieldError::new(
            "baseUrl",
            "must be an https:// URL (http:// only for a loopback host the operator allows)",
        ));
    } else if url.contains('?')
        || url.contains('#')
        || url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.contains('@'))
    {
        errors.push(FieldError::new(
            "baseUrl",
            "must not contain a query, a fragment or credentials",
        ));
    }
    Some(url)
}

fn parse_options(
    raw: Option<&serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match raw {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            if map.len() > MAX_OPTIONS {
                errors.push(FieldError::new(
                    "options",
                    format!("at most {MAX_OPTIONS} options"),
                ));
            }
            for (k, v) in map {
                let key = k.trim();
                if key.is_empty() || key.len() > 64 {
                    errors.push(FieldError::new(
                        "options",
                        "option names must be 1 to 64 characters",
                    ));
                    continue;
                }
                match v {
                    serde_json::Value::String(s) if s.len() <= 1_000 => {
                        out.insert(key.to_owned(), s.trim().to_owned());
                    }
                    _ => errors.push(FieldError::new(
                        format!("options.{key}"),
                        "must be a string of at most 1000 characters",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "options",
            "must be a JSON object of strings, e.g. {\"organization\": \"acme\"}",
        )),
    }
    out
}

impl RawNewCredential {
    /// Checks every field at once.
    pub fn parse(&self) -> Result<NewCredential> {
        let mut errors = Vec::new();
        let provider = Provider::parse(&self.provider);
        if provider.is_none() {
            errors.push(FieldError::new("provider", "is not a provider name"));
        }
        let label = parse_label(&self.label, &mut errors);
        let secret = parse_secret(&self.secret, &mut errors);
        let base_url = parse_base_url(self.base_url.as_deref(), &mut errors);
        let options = parse_options(self.options.as_ref(), &mut errors);
        match provider {
            Some(provider) if errors.is_empty() => Ok(NewCredential {
                provider,
                label,
                secret,
                base_url,
                options,
                project: self.project,
            }),
            _ => Err(Error::InvalidInput(errors)),
        }
    }
}

/// Changes to a credential; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RawCredentialUpdate {
    /// New label.
    pub label: Option<String>,
    /// New secret (re-encrypted under the current key; status back to UNVERIFIED).
    pub secret: Option<String>,
    /// New base URL; `Some(None)` or an empty string removes the override.
    pub base_url: Option<Option<String>>,
    /// New options (replace all).
    pub options: Option<serde_json::Value>,
}

fn authorize(principal: &Principal, project: Option<ProjectId>) -> Result<()> {
    match project {
        None => principal.require_global_admin(),
        Some(p) => principal.require_on(Scope::Admin, p),
    }
}

async fn check_with_plugin(
    gateway: &impl CredentialGateway,
    provider: &Provider,
    base_url: Option<&str>,
) -> Result<()> {
    if !gateway.declared(provider.as_str()).await? {
        return Err(Error::invalid(
            "provider",
            format!("no plugin is installed for the provider `{provider}`"),
        ));
    }
    if let Some(url) = base_url {
        gateway
            .check_base_url(provider.as_str(), url)
            .await
            .map_err(|m| Error::invalid("baseUrl", m))?;
    }
    Ok(())
}

fn options_json(options: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(options).context("encoding credential options")
}

fn sealed(m: &credential::Model) -> Sealed {
    Sealed {
        bytes: m.secret_ciphertext.clone(),
        key_id: m.secret_key_id.clone(),
    }
}

/// Stores a credential (admins; a project-bound admin only for its project). Its
/// status starts `UNVERIFIED`; call [`validate`] to check it.
pub async fn add(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    keyring: &Keyring,
    gateway: &impl CredentialGateway,
    new: NewCredential,
) -> Result<Credential> {
    authorize(principal, new.project)?;
    if let Some(p) = new.project
        && project::find(conn, p).await?.is_none()
    {
        return Err(Error::invalid("projectId", "no such project"));
    }
    check_with_plugin(gateway, &new.provider, new.base_url.as_deref()).await?;
    let id = CredentialId::generate();
    let now = time::now();
    let sealed = keyring
        .seal(new.secret.expose(), id.0.as_bytes())
        .context("encrypting a credential")?;
    let row = credential::ActiveModel {
        id: Set(id.0),
        provider: Set(new.provider.as_str().to_owned()),
        label: Set(new.label.clone()),
        project_id: Set(new.project.map(|p| p.0)),
        secret_ciphertext: Set(sealed.bytes),
        secret_key_id: Set(sealed.key_id),
        secret_hint: Set(secret_hint(new.secret.expose())),
        base_url: Set(new.base_url.clone()),
        options: Set(options_json(&new.options)?),
        status: Set(CredentialStatus::Unverified.as_str().to_owned()),
        last_validated_at: Set(None),
        last_error: Set(None),
        created_at: Set(time::to_micros(now)),
        updated_at: Set(time::to_micros(now)),
    };
    match credential::Entity::insert(row)
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(Error::Conflict(format!(
                "a {} credential labelled `{}` already exists",
                new.provider, new.label
            )));
        }
        Err(e) => return Err(Error::internal("storing a credential", e)),
    }
    tracing::info!(credential = %id, provider = %new.provider, "credential added");
    find_visible(conn, principal, id).await
}

async fn row(conn: &impl ConnectionTrait, id: CredentialId) -> Result<credential::Model> {
    credential::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a credential")?
        .ok_or(Error::NotFound { what: "credential" })
}

/// The row, if the caller administers it (else `NOT_FOUND`, so ids do not leak).
async fn visible_row(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: CredentialId,
) -> Result<credential::Model> {
    principal.require(Scope::Admin)?;
    let m = row(conn, id).await?;
    if let Some(own) = principal.project()
        && m.project_id != Some(own.0)
    {
        return Err(Error::NotFound { what: "credential" });
    }
    Ok(m)
}

async fn find_visible(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: CredentialId,
) -> Result<Credential> {
    Credential::try_from(visible_row(conn, principal, id).await?)
}

/// One credential.
pub async fn get(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: CredentialId,
) -> Result<Credential> {
    find_visible(conn, principal, id).await
}

/// Credentials the caller administers, by provider and label.
pub async fn list(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<Credential>> {
    principal.require(Scope::Admin)?;
    let mut query = credential::Entity::find()
        .order_by_asc(credential::Column::Provider)
        .order_by_asc(credential::Column::Label);
    if let Some(own) = principal.project() {
        query = query.filter(credential::Column::ProjectId.eq(own.0));
    }
    query
        .all(conn)
        .await
        .context("listing credentials")?
        .into_iter()
        .map(Credential::try_from)
        .collect()
}

/// Changes a credential. A new secret is encrypted under the current master key and
/// resets the status to `UNVERIFIED`; a new base URL is checked against the plugin.
pub async fn update(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    keyring: &Keyring,
    gateway: &impl CredentialGateway,
    id: CredentialId,
    changes: RawCredentialUpdate,
) -> Result<Credential> {
    let current = visible_row(conn, principal, id).await?;
    authorize(principal, current.project_id.map(ProjectId))?;
    let provider = Provider::parse(&current.provider).ok_or_else(|| {
        Error::internal(
            "decoding a credential",
            anyhow::anyhow!("bad stored provider"),
        )
    })?;
    let mut errors = Vec::new();
    let label = changes
        .label
        .as_deref()
        .map(|l| parse_label(l, &mut errors));
    let secret = changes
        .secret
        .as_deref()
        .map(|s| parse_secret(s, &mut errors));
    let base_url = changes
        .base_url
        .as_ref()
        .map(|b| parse_base_url(b.as_deref(), &mut errors));
    let options = changes
        .options
        .as_ref()
        .map(|o| parse_options(Some(o), &mut errors));
    if !errors.is_empty() {
        return Err(Error::InvalidInput(errors));
    }
    if let Some(Some(url)) = &base_url {
        check_with_plugin(gateway, &provider, Some(url)).await?;
    }
    let mut active = credential::ActiveModel {
        id: Set(current.id),
        ..Default::default()
    };
    if let Some(label) = label {
        active.label = Set(label);
    }
    if let Some(secret) = &secret {
        let sealed = keyring
            .seal(secret.expose(), id.0.as_bytes())
            .context("encrypting a credential")?;
        active.secret_ciphertext = Set(sealed.bytes);
        active.secret_key_id = Set(sealed.key_id);
        active.secret_hint = Set(secret_hint(secret.expose()));
        active.status = Set(CredentialStatus::Unverified.as_str().to_owned());
        active.last_error = Set(None);
        active.last_validated_at = Set(None);
    }
    if let Some(base_url) = base_url {
        active.base_url = Set(base_url);
    }
    if let Some(options) = &options {
        active.options = Set(options_json(options)?);
    }
    active.updated_at = Set(time::to_micros(time::now()));
    match credential::Entity::update(active).exec(conn).await {
        Ok(m) => Credential::try_from(m),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
            Error::Conflict(format!("another {provider} credential has that label")),
        ),
        Err(e) => Err(Error::internal("updating a credential", e)),
    }
}

/// Deletes a credential; returns what it was.
pub async fn remove(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: CredentialId,
) -> Result<Credential> {
    let current = visible_row(conn, principal, id).await?;
    authorize(principal, current.project_id.map(ProjectId))?;
    let removed = Credential::try_from(current)?;
    credential::Entity::delete_by_id(id.0)
        .exec(conn)
        .await
        .context("removing a credential")?;
    tracing::info!(credential = %id, provider = %removed.provider, "credential removed");
    Ok(removed)
}

/// Decrypts a credential for a plugin call. No authorisation check: for the server's
/// own jobs (the sync), never for a request path without one.
pub async fn material(
    conn: &impl ConnectionTrait,
    keyring: &Keyring,
    id: CredentialId,
) -> Result<(Provider, CredentialMaterial)> {
    let m = row(conn, id).await?;
    let secret = keyring
        .open(&sealed(&m), id.0.as_bytes())
        .context("decrypting a credential")?;
    let options: BTreeMap<String, String> =
        serde_json::from_str(&m.options).context("decoding credential options")?;
    let provider = Provider::parse(&m.provider).ok_or_else(|| {
        Error::internal(
            "decoding a credential",
            anyhow::anyhow!("bad stored provider"),
        )
    })?;
    Ok((
        provider,
        CredentialMaterial {
            secret: Secret::new(secret),
            base_url: m.base_url,
            options: options.into_iter().collect(),
        },
    ))
}

/// Marks a credential `INVALID` with the provider's error (a sync was refused with
/// `unauthorized` or `forbidden`). No authorisation check: for the server's own jobs.
pub async fn mark_rejected(
    conn: &impl ConnectionTrait,
    id: CredentialId,
    error: &str,
) -> Result<()> {
    let now = time::to_micros(time::now());
    credential::Entity::update_many()
        .col_expr(
            credential::Column::Status,
            sea_orm::sea_query::Expr::value(CredentialStatus::Invalid.as_str()),
        )
        .col_expr(
            credential::Column::LastError,
            sea_orm::sea_query::Expr::value(error.chars().take(1_000).collect::<String>()),
        )
        .col_expr(
            credential::Column::LastValidatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .col_expr(
            credential::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(credential::Column::Id.eq(id.0))
        .exec(conn)
        .await
        .context("marking a credential invalid")?;
    tracing::warn!(credential = %id, "the provider rejected a credential during a sync; marked INVALID");
    Ok(())
}

/// Runs the provider plugin's check and records the outcome: `VALID`, `INVALID` (the
/// provider rejected it) or `UNVERIFIED` (could not decide), with the last error. A
/// plugin failure is recorded too, then returned as `PLUGIN_ERROR`.
pub async fn validate(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    keyring: &Keyring,
    gateway: &impl CredentialGateway,
    id: CredentialId,
) -> Result<Credential> {
    let current = visible_row(conn, principal, id).await?;
    authorize(principal, current.project_id.map(ProjectId))?;
    let (provider, material) = material(conn, keyring, id).await?;
    let check = gateway.validate(provider.as_str(), &material).await;
    let (status, error, failure) = match check {
        CredentialCheck::Valid => (CredentialStatus::Valid, None, None),
        CredentialCheck::Invalid(m) => (CredentialStatus::Invalid, Some(m), None),
        CredentialCheck::Unverified(m) => (CredentialStatus::Unverified, Some(m), None),
        CredentialCheck::Failed(e) => (CredentialStatus::Unverified, Some(e.to_string()), Some(e)),
    };
    let now = time::to_micros(time::now());
    let error = error.map(|e| {
        e.replace(material.secret.expose(), "[redacted]")
            .chars()
            .take(1_000)
            .collect::<String>()
    });
    credential::Entity::update(credential::ActiveModel {
        id: Set(id.0),
        status: Set(status.as_str().to_owned()),
        last_error: Set(error),
        last_validated_at: Set(Some(now)),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(conn)
    .await
    .context("recording a credential check")?;
    tracing::info!(credential = %id, provider = %provider, status = status.as_str(), "credential checked");
    match failure {
        Some(e) => Err(e),
        None => find_visible(conn, principal, id).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_mask_the_secret() {
        assert_eq!(secret_hint("sk-admin-1234567890abcdef3Qa"), "sk-ad…f3Qa");
        assert_eq!(secret_hint("abcdefghij"), "ab…ij");
        assert_eq!(secret_hint("short"), "…");
        assert_eq!(
            format!("{:?}", Secret::new("sk-admin-1234567890abcdef3Qa")),
            "Secret(sk-ad…f3Qa)"
        );
    }

    #[test]
    fn parses_new_credentials_reporting_every_problem() {
        let raw = RawNewCredential {
            provider: "OpenAI".into(),
            label: " main ".into(),
            secret: "sk-admin-x1234567890".into(),
            base_url: Some("https://proxy.example.com/".into()),
            options: Some(serde_json::json!({"organization": "acme"})),
            project: None,
        };
        let new = raw.parse().unwrap();
        assert_eq!(new.provider.as_str(), "openai");
        assert_eq!(new.label, "main");
        assert_eq!(new.base_url.as_deref(), Some("https://proxy.example.com"));
        let bad = RawNewCredential {
            provider: "".into(),
            label: "".into(),
            secret: "".into(),
            base_url: Some("ftp://x".into()),
            options: Some(serde_json::json!({"n": 1})),
            project: None,
        };
        let Err(Error::InvalidInput(errors)) = bad.parse() else {
            panic!("expected invalid input")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["provider", "label", "secret", "baseUrl", "options.n"]
        );
    }
}
