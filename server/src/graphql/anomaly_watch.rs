//! Anomaly watches over GraphQL: which anomalies raise alerts, and the notification
//! channels they go to (see `domain::anomaly_watch`).

use super::analytics::SubjectGql;
use super::context::ContextExt;
use super::error::GqlResult;
use super::scalars::Decimal;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::anomaly_watch::{self, AnomalyWatch, RawAnomalyWatch};
use crate::domain::ids::AnomalyWatchId;
use crate::domain::insights::Subject;
use async_graphql::{Context, ID, InputObject, Object};

fn subject(s: SubjectGql) -> Subject {
    match s {
        SubjectGql::Provider => Subject::Provider,
        SubjectGql::Model => Subject::Model,
        SubjectGql::Endpoint => Subject::Endpoint,
    }
}

fn subject_gql(s: Subject) -> SubjectGql {
    match s {
        Subject::Provider => SubjectGql::Provider,
        Subject::Model => SubjectGql::Model,
        Subject::Endpoint => SubjectGql::Endpoint,
    }
}

/// A new anomaly watch.
#[derive(InputObject)]
pub struct CreateAnomalyWatchInput {
    /// Name (the alerts' title).
    pub name: String,
    /// The project watched. Absent: the token's project, or — for an admin not bound
    /// to a project — every project.
    pub project_id: Option<ID>,
    /// What to watch (default: models).
    pub subjects: Option<Vec<SubjectGql>>,
    /// A day alerts from this multiple of its trailing mean (above 1, at most 1000;
    /// default 3).
    pub min_factor: Option<Decimal>,
    /// ... and at least this many dollars above it (default 1).
    pub min_excess_usd: Option<Decimal>,
    /// Trailing days the mean covers (1 to 90; default 7).
    pub baseline_days: Option<i32>,
    /// Where the alerts go: notification channel ids (1 to 10).
    pub channel_ids: Vec<ID>,
}

/// A change to an anomaly watch: absent fields keep their value (the project never
/// changes).
#[derive(InputObject, Default)]
pub struct UpdateAnomalyWatchInput {
    /// Name.
    pub name: Option<String>,
    /// What to watch.
    pub subjects: Option<Vec<SubjectGql>>,
    /// Factor.
    pub min_factor: Option<Decimal>,
    /// Excess in dollars.
    pub min_excess_usd: Option<Decimal>,
    /// Trailing days.
    pub baseline_days: Option<i32>,
    /// Channel ids (replaces the list).
    pub channel_ids: Option<Vec<ID>>,
}

fn ids(list: Option<Vec<ID>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|i| i.0).collect())
}

fn subjects(list: Option<Vec<SubjectGql>>) -> Option<Vec<Subject>> {
    list.map(|l| l.into_iter().map(subject).collect())
}

/// Which anomalies raise alerts, and where they go.
pub struct AnomalyWatchGql(pub AnomalyWatch);

#[Object(name = "AnomalyWatch")]
impl AnomalyWatchGql {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The project watched; null: every project.
    async fn project_id(&self) -> Option<ID> {
        self.0.project.map(|p| ID(p.to_string()))
    }
    /// What it watches.
    async fn subjects(&self) -> Vec<SubjectGql> {
        self.0.subjects.iter().map(|s| subject_gql(*s)).collect()
    }
    /// A day alerts from this multiple of its trailing mean.
    async fn min_factor(&self) -> Decimal {
        self.0.min_factor.into()
    }
    /// ... and at least this many dollars above it.
    async fn min_excess_usd(&self) -> Decimal {
        self.0.min_excess.to_decimal().into()
    }
    /// Trailing days the mean covers.
    async fn baseline_days(&self) -> i64 {
        self.0.baseline_days
    }
    /// Where its alerts go.
    async fn channel_ids(&self) -> Vec<ID> {
        self.0
            .channel_ids
            .iter()
            .map(|c| ID(c.to_string()))
            .collect()
    }
    /// Creation time.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at.into()
    }
    /// Last change.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at.into()
    }
}

fn watch_id(id: &ID) -> Result<AnomalyWatchId, Error> {
    id.parse()
        .map_err(|_| Error::invalid("id", "is not an anomaly watch id"))
}

/// Anomaly watch queries.
#[derive(Default)]
pub struct AnomalyWatchQuery;

#[Object]
impl AnomalyWatchQuery {
    /// The anomaly watches the caller may see, by name (READ; a token bound to a
    /// project sees its project's).
    async fn anomaly_watches(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AnomalyWatchGql>> {
        let state = ctx.state()?;
        Ok(anomaly_watch::list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(AnomalyWatchGql)
            .collect())
    }

    /// One anomaly watch (READ).
    async fn anomaly_watch(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<AnomalyWatchGql> {
        let state = ctx.state()?;
        let id = watch_id(&id).gql()?;
        anomaly_watch::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(AnomalyWatchGql)
    }
}

/// Anomaly watch mutations: ADMIN on the watched project.
#[derive(Default)]
pub struct AnomalyWatchMutation;

#[Object]
impl AnomalyWatchMutation {
    /// Creates an anomaly watch: its alerts go to the named channels, once per
    /// watch, UTC day, subject and value (ADMIN on the project; a watch of every
    /// project: an admin not bound to a project).
    async fn create_anomaly_watch(
        &self,
        ctx: &Context<'_>,
        input: CreateAnomalyWatchInput,
    ) -> async_graphql::Result<AnomalyWatchGql> {
        let state = ctx.state()?;
        let raw = RawAnomalyWatch {
            name: Some(input.name),
            project: input.project_id.map(|p| p.0),
            subjects: subjects(input.subjects),
            min_factor: input.min_factor.map(Into::into),
            min_excess_usd: input.min_excess_usd.map(Into::into),
            baseline_days: input.baseline_days.map(i64::from),
            channel_ids: ids(Some(input.channel_ids)),
        };
        anomaly_watch::create(&state.db, ctx.principal(), raw)
            .await
            .map_err(|e| super::error::under_argument(e, "input"))
            .gql()
            .map(AnomalyWatchGql)
    }

    /// Changes an anomaly watch (same rights as creating it).
    async fn update_anomaly_watch(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAnomalyWatchInput,
    ) -> async_graphql::Result<AnomalyWatchGql> {
        let state = ctx.state()?;
        let id = watch_id(&id).gql()?;
        let raw = RawAnomalyWatch {
            name: input.name,
            project: None,
            subjects: subjects(input.subjects),
            min_factor: input.min_factor.map(Into::into),
            min_excess_usd: input.min_excess_usd.map(Into::into),
            baseline_days: input.baseline_days.map(i64::from),
            channel_ids: ids(input.channel_ids),
        };
        anomaly_watch::update(&state.db, ctx.principal(), id, raw)
            .await
            .map_err(|e| super::error::under_argument(e, "input"))
            .gql()
            .map(AnomalyWatchGql)
    }

    /// Deletes an anomaly watch; its alerts stay (same rights as creating it).
    /// Returns the id.
    async fn delete_anomaly_watch(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let state = ctx.state()?;
        let parsed = watch_id(&id).gql()?;
        anomaly_watch::delete(&state.db, ctx.principal(), parsed)
            .await
            .gql()?;
        Ok(id)
    }
}
