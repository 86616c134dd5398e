//! Projects: who owns usage. Created by a global admin; a bound token sees only its own.

use crate::domain::auth::Principal;
use crate::domain::error::{Context, Error, Result};
use crate::domain::ids::ProjectId;
use crate::domain::time;
use crate::entity::project;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr,
};

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Id.
    pub id: ProjectId,
    /// Unique name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<project::Model> for Project {
    fn from(m: project::Model) -> Self {
        Project {
            id: ProjectId(m.id),
            name: m.name,
            created_at: time::from_micros(m.created_at),
        }
    }
}

/// Longest project name.
pub const MAX_NAME_LEN: usize = 100;

/// A validated project name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    /// Trims and checks the length.
    pub fn parse(raw: &str) -> Result<ProjectName> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(Error::invalid(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} characters"),
            ));
        }
        if let Some(problem) =
            crate::domain::text::problem(name, crate::domain::text::TextKind::Identifier)
        {
            return Err(Error::invalid("name", problem));
        }
        Ok(ProjectName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Creates a project (global admins only); a taken name is a `CONFLICT`.
pub async fn create(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    name: &ProjectName,
) -> Result<Project> {
    principal.require_global_admin()?;
    let created = Project {
        id: ProjectId::generate(),
        name: name.as_str().to_owned(),
        created_at: time::now(),
    };
    let row = project::ActiveModel {
        id: Set(created.id.0),
        name: Set(created.name.clone()),
        created_at: Set(time::to_micros(created.created_at)),
    };
    match project::Entity::insert(row)
        .exec_without_returning(conn)
        .await
    {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(Error::Conflict(format!(
                "a project named `{}` already exists",
                name.as_str()
            )));
        }
        Err(e) => return Err(Error::internal("creating a project", e)),
    }
    Ok(created)
}

/// Projects the caller may read, by name.
pub async fn list(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<Project>> {
    let visible = principal.readable_projects(&[])?;
    let mut query = project::Entity::find().order_by_asc(project::Column::Name);
    if !visible.is_empty() {
        query = query.filter(project::Column::Id.is_in(visible.iter().map(|p| p.0)));
    }
    Ok(query
        .all(conn)
        .await
        .context("listing projects")?
        .into_iter()
        .map(Project::from)
        .collect())
}

/// One project, if the caller may read it.
pub async fn get(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ProjectId,
) -> Result<Project> {
    principal.readable_projects(&[id])?;
    find(conn, id)
        .await?
        .ok_or(Error::NotFound { what: "project" })
}

/// Looks a project up without an authorisation check (for other services).
pub async fn find(conn: &impl ConnectionTrait, id: ProjectId) -> Result<Option<Project>> {
    Ok(project::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a project")?
        .map(Project::from))
}

/// Which of these projects exist.
pub async fn existing(conn: &impl ConnectionTrait, ids: &[ProjectId]) -> Result<Vec<ProjectId>> {
    Ok(project::Entity::find()
        .filter(project::Column::Id.is_in(ids.iter().map(|p| p.0)))
        .all(conn)
        .await
        .context("checking projects exist")?
        .into_iter()
        .map(|m| ProjectId(m.id))
        .collect())
}
