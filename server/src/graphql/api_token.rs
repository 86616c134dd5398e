//! API tokens over GraphQL.

use super::context::ContextExt;
use super::error::GqlResult;
use super::project::project_id as parse_project_id;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::api_token::{self, ApiToken, NewToken};
use crate::domain::auth::Scope;
use crate::domain::ids::ApiTokenId;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};

/// What a token may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Scope")]
pub enum ScopeGql {
    /// Record usage only.
    Ingest,
    /// Read usage, prices and projects.
    Read,
    /// Everything, including managing projects, tokens and prices.
    Admin,
}

impl From<ScopeGql> for Scope {
    fn from(s: ScopeGql) -> Scope {
        match s {
            ScopeGql::Ingest => Scope::Ingest,
            ScopeGql::Read => Scope::Read,
            ScopeGql::Admin => Scope::Admin,
        }
    }
}

impl From<Scope> for ScopeGql {
    fn from(s: Scope) -> ScopeGql {
        match s {
            Scope::Ingest => ScopeGql::Ingest,
            Scope::Read => ScopeGql::Read,
            Scope::Admin => ScopeGql::Admin,
        }
    }
}

/// A stored API token. Its text is shown only once, when created.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ApiToken")]
pub struct ApiTokenGql {
    /// Id.
    pub id: ID,
    /// Name.
    pub name: String,
    /// The project it is bound to.
    pub project_id: Option<ID>,
    /// Scopes.
    pub scopes: Vec<ScopeGql>,
    /// The first characters of the token, to recognise it.
    pub hint: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last use (updated at most every few minutes).
    pub last_used_at: Option<Timestamp>,
    /// Revocation time.
    pub revoked_at: Option<Timestamp>,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl From<ApiToken> for ApiTokenGql {
    fn from(t: ApiToken) -> Self {
        ApiTokenGql {
            id: ID(t.id.to_string()),
            name: t.name,
            project_id: t.project.map(|p| ID(p.to_string())),
            scopes: t.scopes.iter().map(Into::into).collect(),
            hint: t.hint,
            created_at: t.created_at.into(),
            last_used_at: t.last_used_at.map(Into::into),
            revoked: t.revoked_at.is_some(),
            revoked_at: t.revoked_at.map(Into::into),
        }
    }
}

/// A new token and its text.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The token text: store it now, it is never shown again.
    pub token: String,
    /// The stored token.
    pub api_token: ApiTokenGql,
}

/// Token queries.
#[derive(Default)]
pub struct ApiTokenQuery;

#[Object]
impl ApiTokenQuery {
    /// Tokens the caller administers.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiTokenGql>> {
        let state = ctx.state()?;
        Ok(api_token::list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

/// Token mutations.
#[derive(Default)]
pub struct ApiTokenMutation;

#[Object]
impl ApiTokenMutation {
    /// Creates a token; the text is returned once and only its hash is stored.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        project_id: Option<ID>,
        scopes: Vec<ScopeGql>,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let state = ctx.state()?;
        let project = project_id
            .as_ref()
            .map(|p| parse_project_id(p, "projectId"))
            .transpose()
            .gql()?;
        let new =
            NewToken::parse(&name, project, scopes.into_iter().map(Into::into).collect()).gql()?;
        let (token, text) = api_token::create(&state.db, ctx.principal(), new)
            .await
            .gql()?;
        Ok(CreateApiTokenPayload {
            token: text,
            api_token: token.into(),
        })
    }

    /// Revokes a token; it stops working at once.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ApiTokenGql> {
        let state = ctx.state()?;
        let id: ApiTokenId = id
            .parse()
            .map_err(|_| Error::invalid("id", "is not a token id"))
            .gql()?;
        let token = api_token::revoke(&state.db, ctx.principal(), id)
            .await
            .gql()?;
        state.auth.forget_all();
        Ok(token.into())
    }
}
