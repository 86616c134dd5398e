//! Ledger hooks run inside the transaction that writes a change: they see exactly the
//! new (or re-priced) events, and their failure leaves nothing behind. On SQLite, and on
//! PostgreSQL in its pass (`AISPEND_TEST_POSTGRES_URL`).

mod common;

use aispend::config::DatabaseTarget;
use aispend::domain::auth::Principal;
use aispend::domain::price::{
    self, PriceCache, PriceSource, RawPrice, rates::RateCard, rates::RateSet,
};
use aispend::domain::project::{self, ProjectName};
use aispend::domain::usage::UsageSource;
use aispend::domain::usage::ingest::{Ledger, LedgerChange, LedgerHook};
use aispend::domain::usage::input::RawUsage;
use aispend::domain::usage::query::UsageFilter;
use aispend::domain::{Error, Result};
use aispend::entity::usage_event;
use futures::future::BoxFuture;
use rust_decimal::Decimal;
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait, PaginatorTrait};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    fail: bool,
}

impl LedgerHook for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        change: LedgerChange<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // The hook sees the rows of its own transaction.
            let visible = usage_event::Entity::find()
                .count(txn)
                .await
                .map_err(|e| Error::internal("counting", e))?;
            let line = match change {
                LedgerChange::Inserted(events) => {
                    format!("inserted {} (visible {visible})", events.len())
                }
                LedgerChange::Repriced(changes) => format!(
                    "repriced {} from {:?} to {:?}",
                    changes.len(),
                    changes[0].previous_cost.map(|c| c.to_string()),
                    changes[0].event.cost.map(|c| c.to_string())
                ),
            };
            self.seen.lock().unwrap().push(line);
            if self.fail {
                Err(Error::internal(
                    "a hook that always fails",
                    anyhow::anyhow!("boom"),
                ))
            } else {
                Ok(())
            }
        })
    }
}

/// Which database a scenario runs on.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Keeps the scenario's database alive (a temporary SQLite file, or a PostgreSQL
/// database dropped afterwards).
#[allow(dead_code)]
enum Keep {
    Dir(tempfile::TempDir),
    Pg(common::PgDatabase),
}

async fn setup(
    backend: Backend,
) -> (
    Keep,
    DatabaseConnection,
    aispend::domain::ids::ProjectId,
    Arc<PriceCache>,
) {
    let (keep, target) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let target = DatabaseTarget::Sqlite(dir.path().join("t.db"));
            (Keep::Dir(dir), target)
        }
        Backend::Postgres => {
            let pg = common::PgDatabase::create().await;
            let target = DatabaseTarget::Postgres(pg.url.clone());
            (Keep::Pg(pg), target)
        }
    };
    let db = aispend::db::connect(&target).await.unwrap();
    aispend::db::migrate(&db).await.unwrap();
    let project = project::create(&db, &Principal::Operator, &ProjectName::parse("p").unwrap())
        .await
        .unwrap();
    let prices = Arc::new(PriceCache::new(price::load_book(&db).await.unwrap()));
    (keep, db, project.id, prices)
}

fn usage(key: &str) -> RawUsage {
    RawUsage {
        provider: Some("acme".into()),
        model: Some("acme-large".into()),
        input_tokens: Some(1_000_000),
        idempotency_key: Some(key.into()),
        ..Default::default()
    }
}

async fn hooks_see_new_events_and_repricing_but_not_duplicates(backend: Backend) {
    let (_keep, db, project, prices) = setup(backend).await;
    let hook = Arc::new(Recorder::default());
    let ledger = Ledger::new(db.clone(), prices.clone(), vec![hook.clone()], 1);
    let with_project = |mut u: RawUsage| {
        u.project_id = Some(project.to_string());
        u
    };
    ledger
        .record(
            &Principal::Operator,
            vec![with_project(usage("a")), with_project(usage("b"))],
            "inputs",
            true,
            UsageSource::Api,
        )
        .await
        .unwrap();
    ledger
        .record(
            &Principal::Operator,
            vec![with_project(usage("a"))],
            "input",
            false,
            UsageSource::Api,
        )
        .await
        .unwrap();

    let draft = RawPrice {
        provider: "acme".into(),
        model: "acme-large".into(),
        card: RateCard {
            standard: RateSet {
                input: Some(Decimal::new(15, 1)),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
    .parse()
    .unwrap();
    price::upsert_all(&db, &[(draft, vec![])], PriceSource::User)
        .await
        .unwrap();
    prices.reload(&db).await.unwrap();
    assert_eq!(
        ledger
            .recompute_costs(&Principal::Operator, UsageFilter::default())
            .await
            .unwrap(),
        2
    );

    assert_eq!(
        *hook.seen.lock().unwrap(),
        vec![
            "inserted 2 (visible 2)".to_owned(),
            "repriced 2 from None to Some(\"1.5\")".to_owned()
        ],
        "the duplicate reached no hook"
    );
}

async fn a_failing_hook_rolls_the_change_back(backend: Backend) {
    let (_keep, db, project, prices) = setup(backend).await;
    let hook = Arc::new(Recorder {
        fail: true,
        ..Default::default()
    });
    let ledger = Ledger::new(db.clone(), prices, vec![hook.clone()], 1);
    let mut input = usage("a");
    input.project_id = Some(project.to_string());
    let result = ledger
        .record(
            &Principal::Operator,
            vec![input],
            "input",
            false,
            UsageSource::Api,
        )
        .await;
    assert!(matches!(result, Err(Error::Internal { .. })), "{result:?}");
    assert_eq!(
        usage_event::Entity::find().count(&db).await.unwrap(),
        0,
        "nothing was stored"
    );
    assert_eq!(
        hook.seen.lock().unwrap().len(),
        1,
        "the hook ran once, inside the transaction"
    );
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both!(
    hooks_see_new_events_and_repricing_but_not_duplicates,
    a_failing_hook_rolls_the_change_back,
);
