//! Projects over GraphQL.

use super::context::ContextExt;
use super::error::GqlResult;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::ids::ProjectId;
use crate::domain::project::{self, Project, ProjectName};
use async_graphql::{Context, ID, Object, SimpleObject};

/// A project: the unit that owns usage, tokens and budgets.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Project")]
pub struct ProjectGql {
    /// Id.
    pub id: ID,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created_at: Timestamp,
}

impl From<Project> for ProjectGql {
    fn from(p: Project) -> Self {
        ProjectGql {
            id: ID(p.id.to_string()),
            name: p.name,
            created_at: p.created_at.into(),
        }
    }
}

/// Parses an `ID` argument into a project id.
pub fn project_id(id: &ID, field: &str) -> Result<ProjectId, Error> {
    id.parse()
        .map_err(|_| Error::invalid(field, "is not a project id"))
}

/// Project queries.
#[derive(Default)]
pub struct ProjectQuery;

#[Object]
impl ProjectQuery {
    /// Every project the caller may see.
    async fn projects(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectGql>> {
        let state = ctx.state()?;
        Ok(project::list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One project.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ProjectGql> {
        let state = ctx.state()?;
        let id = project_id(&id, "id").gql()?;
        project::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(Into::into)
    }
}

/// Project mutations.
#[derive(Default)]
pub struct ProjectMutation;

#[Object]
impl ProjectMutation {
    /// Creates a project (admin tokens not bound to a project).
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<ProjectGql> {
        let state = ctx.state()?;
        let name = ProjectName::parse(&name).gql()?;
        project::create(&state.db, ctx.principal(), &name)
            .await
            .gql()
            .map(Into::into)
    }
}
