//! Writing fetched price documents: the plan of each document (added, changed,
//! removed, unchanged, skipped), the whole-document checks that refuse it, and the
//! write as new price periods with the change log — one transaction for all sources,
//! serialised across processes (the rules are in the parent module's documentation).

use super::{Fetched, SourceState, SourceStatus, SyncPolicy, state_from_row};
use crate::domain::error::{Context, Result};
use crate::domain::price::book::MatchKind;
use crate::domain::price::changes::{self, ChangeKind, NewPriceChange};
use crate::domain::price::model_name::match_key;
use crate::domain::price::rates::{RateCard, TokenClass};
use crate::domain::price::{Price, PriceDraft, PriceSource};
use crate::domain::provider::Provider;
use crate::domain::time;
use crate::entity::{price, price_source};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::collections::{HashMap, HashSet};

type Key = (Provider, String);

fn key_of(provider: &Provider, model: &str) -> Key {
    (provider.clone(), match_key(model))
}

/// The first rate that moves by more than `factor` (either way) between two cards.
fn rate_jump(old: &RateCard, new: &RateCard, factor: Decimal) -> Option<String> {
    let new_sets = new.named_sets();
    for (name, a) in old.named_sets() {
        let Some((_, b)) = new_sets.iter().find(|(other, _)| *other == name) else {
            continue;
        };
        for class in TokenClass::ALL {
            let (Some(x), Some(y)) = (a.explicit(class), b.explicit(class)) else {
                continue;
            };
            if x.is_zero() || y.is_zero() {
                continue;
            }
            let ratio = if y > x { y / x } else { x / y };
            if ratio > factor {
                return Some(format!(
                    "{name}.{} from {} to {} ({}x)",
                    class.key(),
                    x.normalize(),
                    y.normalize(),
                    ratio.round_dp(1).normalize()
                ));
            }
        }
    }
    None
}

/// What one document would do.
struct Plan<'a> {
    added: Vec<&'a PriceDraft>,
    changed: Vec<(Price, &'a PriceDraft)>,
    removed: Vec<Price>,
    unchanged: u64,
    skipped: u64,
    refusal: Option<String>,
}

/// Writes the fetched documents (in the configured order) in one transaction and
/// records each source's outcome; returns the sources' new state and the providers
/// whose prices were added or changed (whose unpriced events may now be priced).
pub async fn apply(
    db: &DatabaseConnection,
    fetched: &[Fetched],
    policy: &SyncPolicy,
    now: DateTime<Utc>,
) -> Result<(Vec<SourceState>, Vec<Provider>)> {
    let mut touched: Vec<Provider> = vec![];
    let txn = crate::db::begin_write(db)
        .await
        .context("starting a price sync")?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            // One price sync at a time across processes ("aispend price sync").
            "SELECT pg_advisory_xact_lock(4242174101)",
        ))
        .await
        .context("waiting for another price sync")?;
    }
    // What the prices say now.
    let open_sync: Vec<Price> = price::Entity::find()
        .filter(price::Column::Source.eq(PriceSource::Sync.as_str()))
        .filter(price::Column::EffectiveTo.is_null())
        .order_by_asc(price::Column::EffectiveFrom)
        .all(&txn)
        .await
        .context("reading synced prices")?
        .into_iter()
        .map(Price::from_row)
        .collect::<Result<_>>()?;
    let origins =
        changes::origins_of(&txn, &open_sync.iter().map(|p| p.id).collect::<Vec<_>>()).await?;
    let mut current: HashMap<Key, Price> = HashMap::new();
    for p in open_sync {
        // Ordered by start: a later open row of one model replaces an earlier one.
        current.insert(key_of(&p.provider, &p.model), p);
    }
    let user: HashSet<Key> = price::Entity::find()
        .select_only()
        .column(price::Column::Provider)
        .column(price::Column::Model)
        .filter(price::Column::Source.eq(PriceSource::User.as_str()))
        .filter(price::Column::EffectiveTo.is_null())
        .into_tuple::<(String, String)>()
        .all(&txn)
        .await
        .context("reading user prices")?
        .into_iter()
        .filter_map(|(p, m)| Provider::parse(&p).map(|p| key_of(&p, &m)))
        .collect();
    // The prices as ingest sees them, to decide where a new model's period starts
    // and to check a new price against the one in effect.
    let book = crate::domain::price::load_book(&txn).await?;

    let mut claimed: HashSet<Key> = HashSet::new();
    let mut states = vec![];
    for source in fetched {
        let url = source.spec.url.as_str();
        let owned: Vec<&Price> = current
            .iter()
            .filter(|(_, p)| origins.get(&p.id).map(String::as_str) == Some(url))
            .map(|(_, p)| p)
            .collect();
        let decoded = match &source.document {
            Ok(d) => d,
            Err(error) => {
                claimed.extend(owned.iter().map(|p| key_of(&p.provider, &p.model)));
                let state = SourceState {
                    url: url.to_owned(),
                    format: source.spec.format,
                    status: SourceStatus::Failed,
                    error: Some(error.clone()),
                    last_sync_at: None,
                    last_attempt_at: Some(now),
                    added: 0,
                    changed: 0,
                    removed: 0,
                    unchanged: 0,
                    skipped: 0,
                };
                states.push(save_state(&txn, state).await?);
                continue;
            }
        };
        let mut plan = Plan {
            added: vec![],
            changed: vec![],
            removed: vec![],
            unchanged: 0,
            skipped: decoded.skipped,
            refusal: None,
        };
        let mut listed: HashSet<Key> = HashSet::new();
        for draft in &decoded.drafts {
            let key = key_of(&draft.provider, &draft.model);
            listed.insert(key.clone());
            if claimed.contains(&key) || user.contains(&key) {
                plan.skipped += 1;
                continue;
            }
            match current.get(&key) {
                None => {
                    // A model another source already prices under this very name (or
                    // an alias): the same jump check. A longer name that a prefix or
                    // suffix rule priced may well be another product at other rates.
                    if plan.refusal.is_none()
                        && let Some(in_effect) = book.find(&draft.provider, &draft.model, now)
                        && matches!(in_effect.kind, MatchKind::Exact | MatchKind::Alias)
                        && let Some(jump) =
                            rate_jump(&in_effect.price.card, &draft.card, policy.max_rate_factor)
                    {
                        plan.refusal = Some(format!(
                            "refused whole: it would change {}/{} (now priced by its {} price `{}`) {jump}, more than {}x",
                            draft.provider,
                            draft.model,
                            in_effect.price.source,
                            in_effect.price.model,
                            policy.max_rate_factor.normalize()
                        ));
                    }
                    plan.added.push(draft)
                }
                Some(old) if old.card == draft.card => plan.unchanged += 1,
                Some(old) => {
                    if plan.refusal.is_none()
                        && let Some(jump) =
                            rate_jump(&old.card, &draft.card, policy.max_rate_factor)
                    {
                        plan.refusal = Some(format!(
                            "refused whole: it would change {}/{} {jump}, more than {}x",
                            draft.provider,
                            draft.model,
                            policy.max_rate_factor.normalize()
                        ));
                    }
                    plan.changed.push((old.clone(), draft));
                }
            }
        }
        for p in &owned {
            let key = key_of(&p.provider, &p.model);
            if !listed.contains(&key) && !claimed.contains(&key) {
                plan.removed.push((*p).clone());
            }
        }
        let share_limit = u64::from(policy.max_removed_percent);
        if plan.refusal.is_none()
            && !owned.is_empty()
            && (plan.removed.len() as u64) * 100 > share_limit * owned.len() as u64
        {
            plan.refusal = Some(format!(
                "refused whole: it would remove {} of the {} prices this source set ({}%), more than the allowed {}%",
                plan.removed.len(),
                owned.len(),
                plan.removed.len() * 100 / owned.len(),
                share_limit
            ));
        }
        let mut state = SourceState {
            url: url.to_owned(),
            format: Some(decoded.format),
            status: SourceStatus::Ok,
            error: None,
            last_sync_at: Some(now),
            last_attempt_at: Some(now),
            added: plan.added.len() as u64,
            changed: plan.changed.len() as u64,
            removed: plan.removed.len() as u64,
            unchanged: plan.unchanged,
            skipped: plan.skipped,
        };
        if let Some(reason) = plan.refusal {
            claimed.extend(owned.iter().map(|p| key_of(&p.provider, &p.model)));
            state.status = SourceStatus::Refused;
            state.error = Some(reason);
            state.last_sync_at = None;
            states.push(save_state(&txn, state).await?);
            continue;
        }
        claimed.extend(listed.into_iter().filter(|k| !user.contains(k)));
        claimed.extend(owned.iter().map(|p| key_of(&p.provider, &p.model)));
        for draft in plan.added {
            let mut draft = draft.clone();
            // A model no price ever covered (by any match) is priced for all of
            // history, so the events stored without a price get one; otherwise the
            // period starts now and the past keeps the price it had.
            let priced_before = book.knows_model(&draft.provider, &draft.model)
                || book.find(&draft.provider, &draft.model, now).is_some();
            draft.effective_from = if priced_before {
                now
            } else {
                DateTime::UNIX_EPOCH
            };
            draft.effective_to = None;
            let (stored, _) = crate::domain::price::upsert(&txn, &draft, PriceSource::Sync).await?;
            log(&txn, now, ChangeKind::Added, url, None, Some(&stored)).await?;
            if !touched.contains(&stored.provider) {
                touched.push(stored.provider.clone());
            }
        }
        for (old, draft) in plan.changed {
            close(&txn, &old, now).await?;
            let mut draft = draft.clone();
            draft.effective_from = now;
            draft.effective_to = None;
            let (stored, _) = crate::domain::price::upsert(&txn, &draft, PriceSource::Sync).await?;
            log(
                &txn,
                now,
                ChangeKind::Changed,
                url,
                Some(&old),
                Some(&stored),
            )
            .await?;
        }
        for old in plan.removed {
            close(&txn, &old, now).await?;
            log(&txn, now, ChangeKind::Removed, url, Some(&old), None).await?;
        }
        states.push(save_state(&txn, state).await?);
    }
    txn.commit().await.context("committing a price sync")?;
    Ok((states, touched))
}

/// Ends a price period at `at` (the period before it is left as it was).
async fn close(conn: &impl ConnectionTrait, old: &Price, at: DateTime<Utc>) -> Result<()> {
    price::Entity::update_many()
        .col_expr(
            price::Column::EffectiveTo,
            sea_orm::sea_query::Expr::value(time::to_micros(at)),
        )
        .col_expr(
            price::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(time::to_micros(at)),
        )
        .filter(price::Column::Id.eq(old.id.0))
        .filter(price::Column::EffectiveTo.is_null())
        .exec(conn)
        .await
        .context("closing a price period")?;
    Ok(())
}

async fn log(
    conn: &impl ConnectionTrait,
    at: DateTime<Utc>,
    kind: ChangeKind,
    url: &str,
    old: Option<&Price>,
    new: Option<&Price>,
) -> Result<()> {
    changes::record(
        conn,
        &NewPriceChange {
            at,
            kind,
            source: PriceSource::Sync,
            origin: Some(url),
            old,
            new,
        },
    )
    .await
}

async fn save_state(conn: &impl ConnectionTrait, state: SourceState) -> Result<SourceState> {
    let micros = |t: Option<DateTime<Utc>>| t.map(time::to_micros);
    let row = price_source::ActiveModel {
        url: Set(state.url.clone()),
        format: Set(state.format.map(|f| f.as_str()).unwrap_or("").to_owned()),
        status: Set(state.status.as_str().to_owned()),
        error: Set(state.error.clone()),
        last_sync_at: Set(micros(state.last_sync_at)),
        last_attempt_at: Set(micros(state.last_attempt_at)),
        added: Set(state.added as i64),
        changed: Set(state.changed as i64),
        removed: Set(state.removed as i64),
        unchanged: Set(state.unchanged as i64),
        skipped: Set(state.skipped as i64),
        updated_at: Set(time::to_micros(time::now())),
    };
    let mut update = vec![
        price_source::Column::Format,
        price_source::Column::Status,
        price_source::Column::Error,
        price_source::Column::LastAttemptAt,
        price_source::Column::Added,
        price_source::Column::Changed,
        price_source::Column::Removed,
        price_source::Column::Unchanged,
        price_source::Column::Skipped,
        price_source::Column::UpdatedAt,
    ];
    // A refused or failed attempt keeps the time of the last applied sync.
    if state.last_sync_at.is_some() {
        update.push(price_source::Column::LastSyncAt);
    }
    price_source::Entity::insert(row)
        .on_conflict(
            OnConflict::column(price_source::Column::Url)
                .update_columns(update)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await
        .context("recording a price source's sync")?;
    let stored = price_source::Entity::find_by_id(state.url.clone())
        .one(conn)
        .await
        .context("reading a price source back")?;
    Ok(stored.map(state_from_row).unwrap_or(state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::price::rates::RateSet;
    use rust_decimal_macros::dec;

    #[test]
    fn finds_a_tenfold_jump_either_way() {
        let card = |input: Decimal, output: Decimal| RateCard {
            standard: RateSet {
                input: Some(input),
                output: Some(output),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            rate_jump(&card(dec!(1), dec!(2)), &card(dec!(10), dec!(2)), dec!(10)),
            None
        );
        assert!(
            rate_jump(
                &card(dec!(1), dec!(2)),
                &card(dec!(1), dec!(20.5)),
                dec!(10)
            )
            .unwrap()
            .starts_with("standard.output from 2 to 20.5")
        );
        assert!(rate_jump(&card(dec!(3), dec!(2)), &card(dec!(0.2), dec!(2)), dec!(10)).is_some());
        // A variant's fee is a rate like the others.
        let fee = |request: Decimal| {
            let mut c = card(dec!(1), dec!(2));
            c.variants.insert(
                "high".into(),
                RateSet {
                    request: Some(request),
                    ..Default::default()
                },
            );
            c
        };
        assert_eq!(
            rate_jump(&fee(dec!(0.012)), &fee(dec!(0.014)), dec!(10)),
            None
        );
        assert_eq!(
            rate_jump(&fee(dec!(0.012)), &fee(dec!(1.2)), dec!(10)).as_deref(),
            Some("variants.high.request from 0.012 to 1.2 (100x)")
        );
    }
}
