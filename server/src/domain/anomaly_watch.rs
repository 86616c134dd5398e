//! Anomaly watches: which anomalies (see `insights::anomalies`) raise alerts, and the
//! notification channels they go to.
//!
//! A watch names a project (or, made by an admin not bound to a project, every
//! project), the subjects it cares about (providers, models, endpoints) and the
//! thresholds of the anomalies query. [`check_all`] runs every few minutes in every
//! server process (`jobs::anomalies`): it asks the anomalies of yesterday and today
//! (UTC) for each watch and fires one alert per (watch, day, subject, value). The
//! alert's `dedupe_key` carries exactly that, and the unique index on it decides, so
//! a day's anomaly alerts once however many processes check, however often. From
//! there the alert travels like a budget's: an outbox row with one target per
//! channel, delivered by `jobs::alerts` with the same retries and attempt records.
//!
//! Today counts while it runs: a spike alerts as soon as the day so far is far above
//! its trailing mean, not the next morning.

use crate::domain::alert::{self, Alert, NewAlert};
use crate::domain::auth::{Principal, Scope};
use crate::domain::budget::PeriodBounds;
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::{AnomalyWatchId, ChannelId, ProjectId};
use crate::domain::insights::{self, Anomaly, AnomalyOptions, Subject};
use crate::domain::money::Usd;
use crate::domain::project;
use crate::domain::time;
use crate::domain::usage::query::UsageFilter;
use crate::entity::anomaly_watch as row;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

/// Longest watch name.
pub const MAX_NAME_LEN: usize = 100;
/// Most watches in all (each is checked every few minutes).
pub const MAX_WATCHES: u64 = 200;
/// The factor's accepted range: above 1 (a day at its mean is not an anomaly), at
/// most 1,000.
pub const MAX_FACTOR: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);
/// The largest `minExcessUsd`.
pub const MAX_EXCESS: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// A stored watch.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyWatch {
    /// Id.
    pub id: AnomalyWatchId,
    /// Name (the alert's title).
    pub name: String,
    /// The project watched; `None`: every project.
    pub project: Option<ProjectId>,
    /// What it watches, in the order provider, model, endpoint.
    pub subjects: Vec<Subject>,
    /// A day alerts from this multiple of its trailing mean...
    pub min_factor: Decimal,
    /// ... and at least this much above it.
    pub min_excess: Usd,
    /// Trailing days the mean covers.
    pub baseline_days: i64,
    /// Where its alerts go (at least one).
    pub channel_ids: Vec<ChannelId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

fn subject_str(s: Subject) -> &'static str {
    match s {
        Subject::Provider => "PROVIDER",
        Subject::Model => "MODEL",
        Subject::Endpoint => "ENDPOINT",
    }
}

fn subject_noun(s: Subject) -> &'static str {
    match s {
        Subject::Provider => "provider",
        Subject::Model => "model",
        Subject::Endpoint => "endpoint",
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(
        "decoding a stored anomaly watch",
        anyhow::anyhow!("{what}: {e}"),
    )
}

impl TryFrom<row::Model> for AnomalyWatch {
    type Error = Error;
    fn try_from(m: row::Model) -> Result<Self> {
        let subjects = m
            .subjects
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "PROVIDER" => Ok(Subject::Provider),
                "MODEL" => Ok(Subject::Model),
                "ENDPOINT" => Ok(Subject::Endpoint),
                other => Err(corrupt("subject", other)),
            })
            .collect::<Result<Vec<_>>>()?;
        let channel_ids = m
            .channel_ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|c| c.parse().map_err(|e| corrupt("channel ids", e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(AnomalyWatch {
            id: AnomalyWatchId(m.id),
            name: m.name,
            project: m.project_id.map(ProjectId),
            subjects,
            min_factor: m.min_factor.parse().map_err(|e| corrupt("min factor", e))?,
            min_excess: Usd::from_nanos(m.min_excess_nanos),
            baseline_days: m.baseline_days,
            channel_ids,
            created_at: time::from_micros(m.created_at),
            updated_at: time::from_micros(m.updated_at),
        })
    }
}

/// A watch as a client sent it (create: every required field; update: absent fields
/// keep their value).
#[derive(Debug, Clone, Default)]
pub struct RawAnomalyWatch {
    /// Name.
    pub name: Option<String>,
    /// Project id (create only; absent: the caller's project, or every project).
    pub project: Option<String>,
    /// Subjects (absent on create: models).
    pub subjects: Option<Vec<Subject>>,
    /// Factor (absent on create: 3).
    pub min_factor: Option<Decimal>,
    /// Excess in USD (absent on create: 1).
    pub min_excess_usd: Option<Decimal>,
    /// Trailing days (absent on create: 7).
    pub baseline_days: Option<i64>,
    /// Channel ids.
    pub channel_ids: Option<Vec<String>>,
}

/// A checked watch, ready to store.
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    project: Option<ProjectId>,
    subjects: Vec<Subject>,
    min_factor: Decimal,
    min_excess: Usd,
    baseline_days: i64,
    channel_ids: Vec<ChannelId>,
}

impl RawAnomalyWatch {
    /// Checks every field against `current` (an update) or the defaults (a new watch);
    /// every problem is reported at once, by field.
    async fn parse(
        self,
        conn: &impl ConnectionTrait,
        principal: &Principal,
        current: Option<&AnomalyWatch>,
    ) -> Result<Spec> {
        let mut errors = vec![];
        let name = crate::domain::text::merged_name(
            self.name,
            current.map(|c| c.name.as_str()),
            MAX_NAME_LEN,
            &mut errors,
        );
        let project = match (self.project, current) {
            (Some(_), Some(_)) => {
                errors.push(FieldError::new(
                    "projectId",
                    "cannot change; create another watch instead",
                ));
                current.and_then(|c| c.project)
            }
            (None, Some(c)) => c.project,
            (Some(p), None) => match p.parse::<ProjectId>() {
                Ok(id) if project::existing(conn, &[id]).await?.contains(&id) => Some(id),
                Ok(_) => {
                    errors.push(FieldError::new("projectId", "no such project"));
                    None
                }
                Err(_) => {
                    errors.push(FieldError::new("projectId", "is not a project id"));
                    None
                }
            },
            (None, None) => principal.project(),
        };
        let mut subjects = self
            .subjects
            .or_else(|| current.map(|c| c.subjects.clone()))
            .unwrap_or_else(|| vec![Subject::Model]);
        subjects.sort();
        subjects.dedup();
        if subjects.is_empty() {
            errors.push(FieldError::new(
                "subjects",
                "must name at least one of PROVIDER, MODEL, ENDPOINT",
            ));
        }
        let min_factor = self
            .min_factor
            .or(current.map(|c| c.min_factor))
            .unwrap_or(Decimal::from(3));
        if min_factor <= Decimal::ONE || min_factor > MAX_FACTOR {
            errors.push(FieldError::new(
                "minFactor",
                format!("must be above 1 and at most {MAX_FACTOR}"),
            ));
        }
        let min_excess = match self.min_excess_usd {
            Some(d) if d >= Decimal::ZERO && d <= MAX_EXCESS => match Usd::from_decimal(d) {
                Some(u) => u,
                None => {
                    errors.push(FieldError::new(
                        "minExcessUsd",
                        "has more than 9 decimal places",
                    ));
                    Usd::ZERO
                }
            },
            Some(_) => {
                errors.push(FieldError::new(
                    "minExcessUsd",
                    format!("must be between 0 and {MAX_EXCESS}"),
                ));
                Usd::ZERO
            }
            None => current
                .map(|c| c.min_excess)
                .unwrap_or(Usd::from_nanos(1_000_000_000)),
        };
        let baseline_days = self
            .baseline_days
            .or(current.map(|c| c.baseline_days))
            .unwrap_or(7);
        if !(1..=90).contains(&baseline_days) {
            errors.push(FieldError::new("baselineDays", "must be between 1 and 90"));
        }
        let channel_ids = match (self.channel_ids, current) {
            (Some(list), _) => match crate::domain::channel::check_ids(conn, &list).await {
                Ok(ids) if ids.is_empty() => {
                    errors.push(FieldError::new(
                        "channelIds",
                        "must name at least one notification channel",
                    ));
                    ids
                }
                Ok(ids) => ids,
                Err(Error::InvalidInput(found)) => {
                    errors.extend(found);
                    vec![]
                }
                Err(e) => return Err(e),
            },
            (None, Some(c)) => c.channel_ids.clone(),
            (None, None) => {
                errors.push(FieldError::new("channelIds", "is required"));
                vec![]
            }
        };
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        Ok(Spec {
            name,
            project,
            subjects,
            min_factor: min_factor.normalize(),
            min_excess,
            baseline_days,
            channel_ids,
        })
    }
}

/// Whether a caller may see a watch: every watch for an unbound reader, a bound
/// token only its own project's.
fn visible(principal: &Principal, w: &AnomalyWatch) -> bool {
    match principal.project() {
        None => true,
        Some(own) => w.project == Some(own),
    }
}

/// Admin on the watched project (a watch of every project: an admin not bound to one).
fn authorize(principal: &Principal, project: Option<ProjectId>) -> Result<()> {
    match project {
        Some(p) => principal.require_on(Scope::Admin, p),
        None => principal.require_global_admin(),
    }
}

fn spec_row(id: AnomalyWatchId, spec: &Spec, created: i64, now: i64) -> row::ActiveModel {
    let join = |v: Vec<String>| v.join(",");
    row::ActiveModel {
        id: Set(id.0),
        name: Set(spec.name.clone()),
        project_id: Set(spec.project.map(|p| p.0)),
        subjects: Set(join(
            spec.subjects
                .iter()
                .map(|s| subject_str(*s).to_owned())
                .collect(),
        )),
        min_factor: Set(spec.min_factor.to_string()),
        min_excess_nanos: Set(spec.min_excess.stored_nanos()),
        baseline_days: Set(spec.baseline_days),
        channel_ids: Set(join(
            spec.channel_ids.iter().map(|c| c.to_string()).collect(),
        )),
        created_at: Set(created),
        updated_at: Set(now),
    }
}

/// A watch by id, without an authorisation check.
pub async fn find(conn: &impl ConnectionTrait, id: AnomalyWatchId) -> Result<Option<AnomalyWatch>> {
    row::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading an anomaly watch")?
        .map(AnomalyWatch::try_from)
        .transpose()
}

async fn all(conn: &impl ConnectionTrait) -> Result<Vec<AnomalyWatch>> {
    row::Entity::find()
        .order_by_asc(row::Column::Name)
        .order_by_asc(row::Column::Id)
        .all(conn)
        .await
        .context("listing anomaly watches")?
        .into_iter()
        .map(AnomalyWatch::try_from)
        .collect()
}

/// The watches the caller may see, by name (READ).
pub async fn list(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<AnomalyWatch>> {
    principal.require(Scope::Read)?;
    Ok(all(conn)
        .await?
        .into_iter()
        .filter(|w| visible(principal, w))
        .collect())
}

async fn visible_one(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: AnomalyWatchId,
) -> Result<AnomalyWatch> {
    match find(conn, id).await? {
        Some(w) if visible(principal, &w) => Ok(w),
        _ => Err(Error::NotFound {
            what: "anomaly watch",
        }),
    }
}

/// One watch (READ).
pub async fn get(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: AnomalyWatchId,
) -> Result<AnomalyWatch> {
    principal.require(Scope::Read)?;
    visible_one(conn, principal, id).await
}

/// Creates a watch (ADMIN on its project; a watch of every project: an admin not
/// bound to a project).
pub async fn create(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    raw: RawAnomalyWatch,
) -> Result<AnomalyWatch> {
    principal.require(Scope::Admin)?;
    let spec = raw.parse(conn, principal, None).await?;
    authorize(principal, spec.project)?;
    let count = row::Entity::find()
        .count(conn)
        .await
        .context("counting anomaly watches")?;
    if count >= MAX_WATCHES {
        return Err(Error::invalid(
            "input",
            format!("at most {MAX_WATCHES} anomaly watches; delete one first"),
        ));
    }
    let id = AnomalyWatchId::generate();
    let now = time::to_micros(time::now());
    row::Entity::insert(spec_row(id, &spec, now, now))
        .exec_without_returning(conn)
        .await
        .context("inserting an anomaly watch")?;
    loaded(conn, id).await
}

/// Changes a watch; absent fields keep their value (same rights as creating it).
pub async fn update(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: AnomalyWatchId,
    raw: RawAnomalyWatch,
) -> Result<AnomalyWatch> {
    principal.require(Scope::Admin)?;
    let current = visible_one(conn, principal, id).await?;
    authorize(principal, current.project)?;
    let spec = raw.parse(conn, principal, Some(&current)).await?;
    row::Entity::update(spec_row(
        id,
        &spec,
        time::to_micros(current.created_at),
        time::to_micros(time::now()),
    ))
    .exec(conn)
    .await
    .context("updating an anomaly watch")?;
    loaded(conn, id).await
}

/// Deletes a watch (same rights as creating it). Its alerts stay; deliveries still
/// queued go on.
pub async fn delete(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: AnomalyWatchId,
) -> Result<()> {
    principal.require(Scope::Admin)?;
    let current = visible_one(conn, principal, id).await?;
    authorize(principal, current.project)?;
    row::Entity::delete_by_id(id.0)
        .exec(conn)
        .await
        .context("deleting an anomaly watch")?;
    Ok(())
}

/// The first watch (by name) that sends to a channel, and how many do.
pub async fn using_channel(
    conn: &impl ConnectionTrait,
    channel: ChannelId,
) -> Result<Option<(String, usize)>> {
    let users = row::Entity::find()
        .filter(row::Column::ChannelIds.contains(channel.to_string()))
        .order_by_asc(row::Column::Name)
        .all(conn)
        .await
        .context("finding the anomaly watches of a notification channel")?;
    Ok(users.first().map(|w| (w.name.clone(), users.len())))
}

async fn loaded(conn: &impl ConnectionTrait, id: AnomalyWatchId) -> Result<AnomalyWatch> {
    find(conn, id).await?.ok_or_else(|| {
        Error::internal(
            "reading an anomaly watch just written",
            anyhow::anyhow!("anomaly watch {id} vanished"),
        )
    })
}

/// The alert a watch raises for an anomaly.
fn new_alert(w: &AnomalyWatch, a: &Anomaly) -> NewAlert {
    let start = a.day.and_time(chrono::NaiveTime::MIN).and_utc();
    let money = |u: Usd| {
        u.to_decimal()
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    };
    // The factor as a percentage of the mean (450 for 4.5×), what `threshold` holds.
    // Clamped to what the column holds (a factor of 21 million is plenty).
    let percent = (a.factor * Decimal::ONE_HUNDRED)
        .round()
        .min(Decimal::from(i32::MAX))
        .try_into()
        .unwrap_or(0_u32);
    NewAlert::for_anomaly(
        w.name.clone(),
        w.project,
        PeriodBounds {
            start: Some(start),
            end: Some(start + TimeDelta::days(1)),
        },
        percent,
        a.spend,
        a.baseline,
        format!(
            "Anomaly watch \"{}\": {} {} spent ${:.2} on {} (UTC), {}× its {}-day mean of ${:.2}.",
            w.name,
            subject_noun(a.subject),
            a.value,
            money(a.spend),
            a.day,
            a.factor,
            w.baseline_days,
            money(a.baseline),
        ),
        dedupe_key(w.id, a.day, a.subject, &a.value),
        w.channel_ids.clone(),
    )
}

/// What makes a watch's alert for one day, subject and value fire once.
fn dedupe_key(id: AnomalyWatchId, day: NaiveDate, subject: Subject, value: &str) -> String {
    format!("anomaly:{id}:{day}:{}:{value}", subject_str(subject))
}

/// Checks every watch against the anomalies of yesterday and today (UTC) and fires
/// what has not fired yet. Returns the alerts this call fired.
pub async fn check_all(db: &DatabaseConnection) -> Result<Vec<Alert>> {
    let now = time::now();
    let today = now.date_naive();
    let from = (today - TimeDelta::days(1))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let mut fired = vec![];
    for w in all(db).await? {
        let filter = UsageFilter {
            projects: w.project.into_iter().collect(),
            from: Some(from),
            to: Some(now),
            ..UsageFilter::default()
        };
        let options = AnomalyOptions {
            baseline_days: w.baseline_days,
            min_factor: w.min_factor,
            min_excess: w.min_excess,
        };
        let found = insights::anomalies(db, &Principal::Operator, filter, options).await?;
        for a in found.iter().filter(|a| w.subjects.contains(&a.subject)) {
            // The alert and its targets commit together (the dispatcher must never
            // see one without the other); IMMEDIATE takes SQLite's write lock first.
            let txn = crate::db::begin_write(db)
                .await
                .context("starting an anomaly alert")?;
            let alert = alert::fire(&txn, new_alert(&w, a)).await?;
            txn.commit().await.context("committing an anomaly alert")?;
            fired.extend(alert);
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_watch_day_subject_and_value() {
        let w = AnomalyWatchId::generate();
        let day = NaiveDate::from_ymd_opt(2026, 12, 9).unwrap();
        let key = dedupe_key(w, day, Subject::Model, "gpt-4o");
        assert_eq!(key, format!("anomaly:{w}:2026-12-09:MODEL:gpt-4o"));
        for other in [
            dedupe_key(AnomalyWatchId::generate(), day, Subject::Model, "gpt-4o"),
            dedupe_key(w, day.pred_opt().unwrap(), Subject::Model, "gpt-4o"),
            dedupe_key(w, day, Subject::Endpoint, "gpt-4o"),
            dedupe_key(w, day, Subject::Model, "gpt-4o-mini"),
        ] {
            assert_ne!(key, other);
        }
    }
}
