//! Provider credentials over GraphQL (ADMIN scope). The secret goes in and never comes
//! out: reads show a masked hint.

use super::context::ContextExt;
use super::error::{GqlResult, under_argument};
use super::project::project_id as parse_project_id;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::credential::{
    self, Credential, CredentialStatus, RawCredentialUpdate, RawNewCredential,
};
use crate::domain::ids::CredentialId;
use async_graphql::{Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};

/// Whether a credential is known to work.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "CredentialStatus")]
pub enum CredentialStatusGql {
    /// The plugin's check passed.
    Valid,
    /// The provider rejected it.
    Invalid,
    /// Not checked yet, or the check could not decide (see `lastError`).
    Unverified,
}

impl From<CredentialStatus> for CredentialStatusGql {
    fn from(s: CredentialStatus) -> Self {
        match s {
            CredentialStatus::Valid => CredentialStatusGql::Valid,
            CredentialStatus::Invalid => CredentialStatusGql::Invalid,
            CredentialStatus::Unverified => CredentialStatusGql::Unverified,
        }
    }
}

/// A provider credential. The secret itself is never returned.
#[derive(SimpleObject)]
#[graphql(name = "Credential")]
pub struct CredentialGql {
    /// Id.
    pub id: ID,
    /// Provider (the plugin id).
    pub provider: String,
    /// Label, unique per provider.
    pub label: String,
    /// The project its reports belong to.
    pub project_id: Option<ID>,
    /// A masked hint of the secret (`sk-ad…f3Qa`).
    pub secret_hint: String,
    /// Id of the master key that encrypted the secret.
    pub key_id: String,
    /// Base-URL override.
    pub base_url: Option<String>,
    /// Provider options (a JSON object of strings).
    pub options: Json<serde_json::Value>,
    /// Status.
    pub status: CredentialStatusGql,
    /// When it was last checked.
    pub last_validated_at: Option<Timestamp>,
    /// The last check's error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl From<Credential> for CredentialGql {
    fn from(c: Credential) -> Self {
        CredentialGql {
            id: ID(c.id.to_string()),
            provider: c.provider.to_string(),
            label: c.label,
            project_id: c.project.map(|p| ID(p.to_string())),
            secret_hint: c.secret_hint,
            key_id: c.key_id,
            base_url: c.base_url,
            options: Json(serde_json::to_value(&c.options).unwrap_or_default()),
            status: c.status.into(),
            last_validated_at: c.last_validated_at.map(Into::into),
            last_error: c.last_error,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

/// A new credential.
#[derive(InputObject)]
pub struct AddCredentialInput {
    /// Provider: the id of an installed plugin (`openai`, `anthropic`, `github-copilot`).
    pub provider: String,
    /// A label, unique per provider.
    pub label: String,
    /// The admin key or token. Stored encrypted; never shown again.
    pub secret: String,
    /// Override of the provider's base URL (must be a host the plugin declared or the
    /// operator allows).
    pub base_url: Option<String>,
    /// Provider options, e.g. `{"organization": "acme"}` for GitHub Copilot.
    pub options: Option<Json<serde_json::Value>>,
    /// The project the provider's reports belong to.
    pub project_id: Option<ID>,
}

/// Changes to a credential; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateCredentialInput {
    /// New label.
    pub label: Option<String>,
    /// New secret (resets the status to UNVERIFIED).
    pub secret: Option<String>,
    /// New base URL; null removes the override.
    pub base_url: MaybeUndefined<String>,
    /// New options (replace the old ones).
    pub options: Option<Json<serde_json::Value>>,
}

fn credential_id(id: &ID) -> Result<CredentialId, Error> {
    id.parse()
        .map_err(|_| Error::invalid("id", "is not a credential id"))
}

/// Credential queries.
#[derive(Default)]
pub struct CredentialQuery;

#[Object]
impl CredentialQuery {
    /// Credentials the caller administers.
    async fn credentials(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<CredentialGql>> {
        let state = ctx.state()?;
        Ok(credential::list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One credential.
    async fn credential(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<CredentialGql> {
        let state = ctx.state()?;
        let id = credential_id(&id).gql()?;
        credential::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }
}

/// Credential mutations.
#[derive(Default)]
pub struct CredentialMutation;

#[Object]
impl CredentialMutation {
    /// Stores a credential (status UNVERIFIED until `validateCredential`).
    async fn add_credential(
        &self,
        ctx: &Context<'_>,
        input: AddCredentialInput,
    ) -> async_graphql::Result<CredentialGql> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        principal.require(crate::domain::auth::Scope::Admin).gql()?;
        let project = input
            .project_id
            .as_ref()
            .map(|p| parse_project_id(p, "projectId"))
            .transpose()
            .map_err(|e| under_argument(e, "input"))
            .gql()?;
        let raw = RawNewCredential {
            provider: input.provider,
            label: input.label,
            secret: input.secret,
            base_url: input.base_url,
            options: input.options.map(|j| j.0),
            project,
        };
        let new = raw.parse().map_err(|e| under_argument(e, "input")).gql()?;
        credential::add(
            &state.db,
            principal,
            &state.keyring,
            state.plugins.as_ref(),
            new,
        )
        .await
        .map_err(|e| under_argument(e, "input"))
        .gql()
        .map(Into::into)
    }

    /// Changes a credential.
    async fn update_credential(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCredentialInput,
    ) -> async_graphql::Result<CredentialGql> {
        let state = ctx.state()?;
        let id = credential_id(&id).gql()?;
        let changes = RawCredentialUpdate {
            label: input.label,
            secret: input.secret,
            base_url: match input.base_url {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
            options: input.options.map(|j| j.0),
        };
        credential::update(
            &state.db,
            ctx.principal(),
            &state.keyring,
            state.plugins.as_ref(),
            id,
            changes,
        )
        .await
        .map_err(|e| under_argument(e, "input"))
        .gql()
        .map(Into::into)
    }

    /// Deletes a credential; returns what it was.
    async fn remove_credential(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<CredentialGql> {
        let state = ctx.state()?;
        let id = credential_id(&id).gql()?;
        credential::remove(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }

    /// Runs the provider plugin's credential check and records VALID, INVALID or
    /// UNVERIFIED with the last error. A plugin that fails (crash, limit) is a
    /// PLUGIN_ERROR.
    async fn validate_credential(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<CredentialGql> {
        let state = ctx.state()?;
        let id = credential_id(&id).gql()?;
        credential::validate(
            &state.db,
            ctx.principal(),
            &state.keyring,
            state.plugins.as_ref(),
            id,
        )
        .await
        .gql()
        .map(Into::into)
    }
}
