//! API tokens: created with a name, an optional project and scopes; the text is shown
//! once, only its hash is kept; revocation is immediate in this process.

use crate::domain::auth::{self, Principal, Scope, Scopes};
use crate::domain::error::{Context, Error, Result};
use crate::domain::ids::{ApiTokenId, ProjectId};
use crate::domain::{project, time};
use crate::entity::api_token;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

/// A stored token (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// Name given at creation.
    pub name: String,
    /// Bound project.
    pub project: Option<ProjectId>,
    /// Scopes.
    pub scopes: Scopes,
    /// The first characters, to recognise it.
    pub hint: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last use (updated at most every few minutes).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<api_token::Model> for ApiToken {
    type Error = Error;
    fn try_from(m: api_token::Model) -> Result<Self> {
        Ok(ApiToken {
            id: ApiTokenId(m.id),
            name: m.name,
            project: m.project_id.map(ProjectId),
            scopes: m.scopes.parse().map_err(|e: String| {
                Error::internal("decoding token scopes", anyhow::anyhow!(e))
            })?,
            hint: m.token_hint,
            created_at: time::from_micros(m.created_at),
            last_used_at: m.last_used_at.map(time::from_micros),
            revoked_at: m.revoked_at.map(time::from_micros),
        })
    }
}

/// What a new token should be.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// A name for people (`billing-service`).
    pub name: String,
    /// The project to bind it to.
    pub project: Option<ProjectId>,
    /// Its scopes (at least one).
    pub scopes: Scopes,
}

impl NewToken {
    /// Validates name and scopes.
    pub fn parse(name: &str, project: Option<ProjectId>, scopes: Vec<Scope>) -> Result<NewToken> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid("name", "must be 1 to 100 characters"));
        }
        if let Some(problem) =
            crate::domain::text::problem(name, crate::domain::text::TextKind::Identifier)
        {
            return Err(Error::invalid("name", problem));
        }
        let scopes = Scopes::new(scopes);
        if scopes.is_empty() {
            return Err(Error::invalid(
                "scopes",
                "give at least one of INGEST, READ, ADMIN",
            ));
        }
        Ok(NewToken {
            name: name.to_owned(),
            project,
            scopes,
        })
    }
}

/// Creates a token and returns it with its text, which is never shown again. A bound
/// admin may only create tokens for its own project.
pub async fn create(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    new: NewToken,
) -> Result<(ApiToken, String)> {
    match (principal.project(), new.project) {
        (None, _) => principal.require(Scope::Admin)?,
        (Some(_), Some(target)) => principal.require_on(Scope::Admin, target)?,
        (Some(_), None) => {
            principal.require(Scope::Admin)?;
            return Err(Error::Forbidden(
                "a token bound to a project may only create tokens for that project".into(),
            ));
        }
    }
    if let Some(p) = new.project
        && project::find(conn, p).await?.is_none()
    {
        return Err(Error::NotFound { what: "project" });
    }
    insert(conn, new).await
}

/// Inserts a token without an authorisation check (bootstrap and CLI).
pub async fn insert(conn: &impl ConnectionTrait, new: NewToken) -> Result<(ApiToken, String)> {
    let text = auth::generate_token();
    let token = ApiToken {
        id: ApiTokenId::generate(),
        name: new.name,
        project: new.project,
        scopes: new.scopes,
        hint: auth::token_hint(&text),
        created_at: time::now(),
        last_used_at: None,
        revoked_at: None,
    };
    api_token::Entity::insert(api_token::ActiveModel {
        id: Set(token.id.0),
        name: Set(token.name.clone()),
        project_id: Set(token.project.map(|p| p.0)),
        scopes: Set(token.scopes.to_string()),
        token_hash: Set(auth::hash_token(&text)),
        token_hint: Set(token.hint.clone()),
        created_at: Set(time::to_micros(token.created_at)),
        last_used_at: Set(None),
        revoked_at: Set(None),
    })
    .exec_without_returning(conn)
    .await
    .context("storing an API token")?;
    Ok((token, text))
}

/// Revokes a token (idempotent). Takes effect at once for this process's cache when
/// the caller also calls [`auth::Authenticator::forget_all`].
pub async fn revoke(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ApiTokenId,
) -> Result<ApiToken> {
    principal.require(Scope::Admin)?;
    let row = api_token::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading an API token")?
        .ok_or(Error::NotFound { what: "API token" })?;
    if let Some(own) = principal.project()
        && row.project_id != Some(own.0)
    {
        return Err(Error::NotFound { what: "API token" });
    }
    if row.revoked_at.is_some() {
        return ApiToken::try_from(row);
    }
    let now = time::to_micros(time::now());
    let updated = api_token::Entity::update(api_token::ActiveModel {
        id: Set(row.id),
        revoked_at: Set(Some(now)),
        ..Default::default()
    })
    .exec(conn)
    .await
    .context("revoking an API token")?;
    ApiToken::try_from(updated)
}

/// Tokens the caller administers, newest first.
pub async fn list(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<ApiToken>> {
    principal.require(Scope::Admin)?;
    let mut query = api_token::Entity::find().order_by_desc(api_token::Column::CreatedAt);
    if let Some(own) = principal.project() {
        query = query.filter(api_token::Column::ProjectId.eq(own.0));
    }
    query
        .all(conn)
        .await
        .context("listing API tokens")?
        .into_iter()
        .map(ApiToken::try_from)
        .collect()
}

/// Number of stored tokens, revoked or not (to decide on a bootstrap token).
pub async fn count(conn: &impl ConnectionTrait) -> Result<u64> {
    api_token::Entity::find()
        .count(conn)
        .await
        .context("counting API tokens")
}
