//! The values the pickers offer (`filters`): the distinct providers, models,
//! endpoints, end users and projects of the events the caller can see, read from the
//! rollups instead of the events. A rollup row is written only with the events it
//! holds and never removed, so the distinct keys of a rollup and of the events not
//! folded into it yet are the distinct values of the events. Endpoints and end users
//! are read from the values each project admitted (`usage_rollup_values`, see
//! `rollup`); a project whose long tail overflowed has values that no rollup names,
//! which are read from its raw events.

use super::*;

/// What exists, for pickers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    /// Providers.
    pub providers: Vec<String>,
    /// Models.
    pub models: Vec<String>,
    /// Endpoints.
    pub endpoints: Vec<String>,
    /// Projects.
    pub projects: Vec<ProjectId>,
    /// End users.
    pub users: Vec<String>,
}

/// The distinct values the caller can see, each list in ascending (byte) order.
pub async fn filters(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Filters> {
    principal.require(Scope::Read)?;
    let filter = UsageFilter::default().authorized(principal)?;
    let visible = || filter.projects.iter().map(|p| Value::from(p.0));
    let backend = conn.get_database_backend();
    let rows = |q: Sql, what: &'static str| async move {
        conn.query_all_raw(q.statement()).await.context(what)
    };
    let text = |r: &QueryResult, i: usize| -> Result<String> {
        r.try_get_by_index(i).context("reading a filter value")
    };

    let mut out = Filters::default();
    // Providers and models: the daily model rollup of every project together unless
    // the caller sees only some projects.
    let table = if filter.projects.is_empty() {
        rollup::GLOBAL_DAYS.table
    } else {
        rollup::DAYS.table
    };
    // With the unfolded events' (see `rollup::fold`), in the same statement.
    let mut q = Sql::new(
        backend,
        &format!("SELECT DISTINCT provider, model FROM {table} WHERE 1 = 1"),
    );
    filter_in(&mut q, "project_id", visible());
    q.push(&format!(
        " UNION SELECT provider, model FROM {} WHERE 1 = 1",
        super::tables::unfolded_events(backend)
    ));
    filter_in(&mut q, "project_id", visible());
    let (mut providers, mut models) = (BTreeSet::new(), BTreeSet::new());
    for r in rows(q, "listing providers and models").await? {
        providers.insert(text(&r, 0)?);
        models.insert(text(&r, 1)?);
    }
    let mut q = Sql::new(
        backend,
        &format!(
            "SELECT DISTINCT project_id FROM {} WHERE 1 = 1",
            rollup::PROVIDER_DAYS.table
        ),
    );
    filter_in(&mut q, "project_id", visible());
    q.push(&format!(
        " UNION SELECT project_id FROM {} WHERE 1 = 1",
        super::tables::unfolded_events(backend)
    ));
    filter_in(&mut q, "project_id", visible());
    let mut projects = BTreeSet::new();
    for r in rows(q, "listing projects").await? {
        projects.insert(ProjectId(
            r.try_get_by_index(0).context("reading a project")?,
        ));
    }
    out.providers = providers.into_iter().collect();
    out.models = models.into_iter().collect();
    out.projects = projects.into_iter().collect();

    for (column, target) in [
        ("endpoint", &mut out.endpoints),
        ("end_user", &mut out.users),
    ] {
        let mut values = BTreeSet::new();
        let mut overflowed = Vec::new();
        let mut q = Sql::new(
            backend,
            "SELECT project_id, value FROM usage_rollup_values WHERE dimension = ",
        );
        let c = q.param(column);
        q.push(&c);
        filter_in(&mut q, "project_id", visible());
        for r in rows(q, "listing admitted values").await? {
            let value = text(&r, 1)?;
            if value == rollup::OTHER {
                overflowed.push(Value::from(
                    r.try_get_by_index::<uuid::Uuid>(0)
                        .context("reading a project")?,
                ));
            } else {
                values.insert(value);
            }
        }
        if !overflowed.is_empty() {
            let mut q = Sql::new(
                backend,
                &format!("SELECT DISTINCT {column} FROM usage_events WHERE {column} IS NOT NULL"),
            );
            filter_in(&mut q, "project_id", overflowed.into_iter());
            for r in rows(q, "listing the long tail's values").await? {
                values.insert(text(&r, 0)?);
            }
        }
        *target = values.into_iter().collect();
    }
    Ok(out)
}
