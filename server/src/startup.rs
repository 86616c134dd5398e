//! Building and running the server: connect, migrate, seed prices, bootstrap a token,
//! serve until a shutdown signal.

use crate::config::Settings;
use crate::domain::api_token::{self, NewToken};
use crate::domain::auth::{Authenticator, Scope, Scopes};
use crate::domain::budget::Budgets;
use crate::domain::egress::OperatorAllowList;
use crate::domain::keyring::Keyring;
use crate::domain::live::{self, LiveHub};
use crate::domain::price::sources::PriceSync;
use crate::domain::price::{self, PriceCache};
use crate::domain::sync::SyncEngine;
use crate::domain::usage::ingest::Ledger;
use crate::jobs::alerts::DeliveryContext;
use crate::jobs::sync::SyncContext;
use crate::jobs::{self, JobSettings, Jobs};
use crate::plugins::{PluginHost, PluginSettings};
use crate::state::AppState;
use crate::{db, http};
use anyhow::Context;
use axum::serve::ListenerExt;
use sea_orm::{DatabaseConnection, DbBackend};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// How often the price book is re-read to pick up other processes' price changes.
const PRICE_REFRESH: Duration = Duration::from_secs(30);

/// Connects, migrates and writes the built-in catalog: everything `serve`, `migrate`
/// and the other commands need before they start.
pub async fn prepare_database(
    settings: &Settings,
) -> anyhow::Result<(DatabaseConnection, &'static str)> {
    let target = settings.database()?;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let db = db::connect(&target).await?;
    db::migrate(&db).await?;
    jobs::migrate(&db).await?;
    let report = price::catalog::seed(&db)
        .await
        .context("writing the built-in price catalog")?;
    tracing::info!(
        created = report.imported,
        updated = report.updated,
        unchanged = report.unchanged,
        "built-in price catalog is up to date"
    );
    Ok((db, target.kind()))
}

/// The plugin host for these settings: bundled plugins plus `AISPEND_PLUGIN_DIR`, with
/// `AISPEND_PLUGIN_ALLOW_HOSTS`. Nothing is compiled until a plugin is first used.
pub fn plugin_host(settings: &Settings) -> anyhow::Result<PluginHost> {
    PluginHost::new(&PluginSettings {
        dir: settings.plugin_dir.clone(),
        allow_hosts: settings.plugin_allow_hosts.clone(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!(e))
}

/// A server that is bound and ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    background: Background,
}

/// What runs beside the HTTP server: job workers and the alert dispatcher.
struct Background {
    jobs: Jobs,
    sync_queue: jobs::Queue<jobs::sync::RunSync>,
    sync: Arc<SyncContext>,
    price_queue: jobs::Queue<jobs::prices::SyncPrices>,
    price_sync: Arc<PriceSync>,
    /// How long a queued price sync may wait for a worker before it is queued again.
    price_grace: Duration,
    alert_queue: jobs::Queue<jobs::alerts::DeliverAlert>,
    alerts_fired: Arc<Notify>,
    /// How often anomaly watches are checked.
    anomaly_check: Duration,
    attempts: u32,
    /// The rollup hook, whose unfolded events the folder adds to the rollups.
    rollups: Arc<crate::domain::rollup::RollupHook>,
    /// How long the folder waits between folds (zero: it folds after each commit).
    fold_interval: Duration,
}

impl Application {
    /// Prepares the database and binds the listener (port 0 picks a free port).
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        if let Some(at) = settings.test_clock {
            if crate::domain::time::start_clock_at(at) {
                tracing::warn!(start = %at.to_rfc3339(), "AISPEND_TEST_CLOCK is set: the server's clock is not the system clock");
            } else {
                tracing::info!(
                    "AISPEND_TEST_CLOCK: this process's clock was already set; sharing it"
                );
            }
        }
        let (db, db_kind) = prepare_database(settings).await?;
        let auth = Arc::new(Authenticator::new(settings.admin_token.as_deref()));
        bootstrap_admin_token(&db, &auth).await?;
        let prices = Arc::new(PriceCache::new(
            price::load_book(&db).await.context("loading prices")?,
        ));
        let keyring = Arc::new(
            Keyring::load(settings.master_key.as_deref(), &settings.data_dir)
                .context("loading the master key")?,
        );
        let plugins = Arc::new(plugin_host(settings)?);
        let allow =
            OperatorAllowList::parse(&settings.plugin_allow_hosts).map_err(anyhow::Error::msg)?;
        let alerts_fired = Arc::new(Notify::new());
        let budgets = Arc::new(
            Budgets::load(&db, keyring.clone(), allow.clone(), alerts_fired.clone())
                .await
                .context("loading budgets")?,
        );
        let live = LiveHub::start(db.get_database_backend(), settings.alerts.subscriber_queue);
        if db.get_database_backend() == DbBackend::Postgres {
            live::pg::start(db.get_postgres_connection_pool(), db.clone(), live.clone())
                .await
                .context("listening for other processes' changes")?;
        }
        // Ledger hooks, in the order they run inside each ingest transaction. Budgets
        // first: their hook takes the ledger lock (shared: ingest transactions run
        // together, a budget change runs alone), which a budget change must see before
        // anything else of the transaction.
        let rollups = Arc::new(crate::domain::rollup::RollupHook::new(
            settings.limits.rollup_distinct_values,
        ));
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let hooks = vec![
            budgets.hook(),
            rollups.clone() as Arc<dyn crate::domain::usage::ingest::LedgerHook>,
            live.hook(),
            metrics.hook(),
        ];
        let ledger = Arc::new(Ledger::new(
            db.clone(),
            prices.clone(),
            hooks,
            settings.limits.ingest_writers,
        ));
        let a = &settings.alerts;
        let job_settings = JobSettings {
            retries: a.webhook_retries,
            backoff: Duration::from_millis(a.webhook_backoff_ms),
            backoff_max: Duration::from_millis(a.webhook_backoff_max_ms),
            poll: Duration::from_millis(a.jobs_poll_ms.max(10)),
        };
        let attempts = job_settings.attempts();
        let price_grace = job_settings
            .poll
            .saturating_mul(10)
            .max(Duration::from_secs(10));
        let notifier = Arc::new(crate::jobs::notify::Notifier {
            allow: allow.clone(),
            timeout: Duration::from_millis(a.webhook_timeout_ms.max(1)),
            smtp: settings.channels.smtp()?,
            public_url: settings.channels.public_url()?,
        });
        let mut jobs = Jobs::new(db.clone(), job_settings);
        let alert_queue = jobs::alerts::register(
            &mut jobs,
            Arc::new(DeliveryContext {
                db: db.clone(),
                keyring: keyring.clone(),
                notifier: notifier.clone(),
                attempts,
                metrics: metrics.clone(),
            }),
        );
        let sync_wake = Arc::new(Notify::new());
        let scheduler_passes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sync = Arc::new(SyncContext {
            engine: SyncEngine {
                db: db.clone(),
                fetcher: Arc::new(crate::metrics::CountingFetcher {
                    inner: plugins.clone(),
                    metrics: metrics.clone(),
                }),
                keyring: keyring.clone(),
                settings: settings.sync.settings(),
            },
            wake: sync_wake.clone(),
            scheduler_passes: scheduler_passes.clone(),
            metrics: metrics.clone(),
        });
        let sync_queue = jobs::sync::register(&mut jobs, sync.clone(), settings.sync.workers);
        let price_sync = Arc::new(PriceSync::new(
            db.clone(),
            ledger.clone(),
            settings.prices.price_sources.clone(),
            settings.prices.policy(),
            settings.prices.interval(),
        ));
        price_sync
            .register()
            .await
            .context("recording the configured price sources")?;
        let price_queue = jobs::prices::register(&mut jobs, price_sync.clone());
        let state = AppState {
            price_sync: price_sync.clone(),
            sync_wake,
            scheduler_passes,
            db: db.clone(),
            db_kind,
            auth,
            prices: prices.clone(),
            ledger,
            plugins,
            keyring,
            budgets,
            live,
            metrics,
            notifier,
            allow,
        };
        tokio::spawn(refresh_prices(db, prices));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let router = http::router(state.clone(), &settings.limits, &settings.integrations);
        Ok(Application {
            listener,
            router,
            state,
            background: Background {
                jobs,
                sync_queue,
                sync,
                price_queue,
                price_sync,
                price_grace,
                alert_queue,
                alerts_fired,
                anomaly_check: Duration::from_millis(settings.alerts.anomaly_check_ms.max(10)),
                attempts,
                rollups,
                fold_interval: Duration::from_millis(settings.limits.fold_interval_ms),
            },
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("reading the bound address")
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and stops
    /// the job workers.
    pub async fn run_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let running = self.background.start(&self.state);
        tracing::info!(address = %self.listener.local_addr()?, "aispend is serving");
        // No Nagle: a live update is a small write right after the previous one, which
        // Nagle would hold until the client's delayed ACK (up to 40 ms).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP");
        running.stop().await;
        served
    }

    /// Runs only the background work (job workers, the alert and sync dispatchers, the
    /// sync scheduler) until `shutdown` completes: `aispend worker`.
    pub async fn work_until<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.listener);
        let running = self.background.start(&self.state);
        tracing::info!("aispend worker is running (no HTTP)");
        shutdown.await;
        running.stop().await;
        Ok(())
    }
}

impl Background {
    fn start(self, state: &AppState) -> Running {
        let Background {
            jobs,
            sync_queue,
            sync,
            price_queue,
            price_sync,
            price_grace,
            alert_queue,
            alerts_fired,
            anomaly_check,
            attempts,
            rollups,
            fold_interval,
        } = self;
        let workers = jobs.start();
        let mut tasks = vec![
            jobs::anomalies::spawn(state.db.clone(), anomaly_check, alerts_fired.clone()),
            jobs::alerts::spawn_dispatcher(
                state.db.clone(),
                alert_queue,
                state.live.clone(),
                alerts_fired,
                attempts,
            ),
        ];
        tasks.extend(crate::db::spawn_checkpointer(&state.db));
        tasks.push(crate::domain::rollup::fold::spawn(
            state.db.clone(),
            rollups,
            (fold_interval > Duration::ZERO).then_some(fold_interval),
            state.ledger.writer().write_gate(),
        ));
        tasks.extend(jobs::sync::spawn(sync, sync_queue, attempts));
        tasks.extend(jobs::prices::spawn(
            price_sync,
            price_queue,
            attempts,
            price_grace,
        ));
        Running { workers, tasks }
    }
}

/// Background work that is running.
struct Running {
    workers: jobs::JobsHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
        self.workers.shutdown().await;
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// On a first start with no operator token and no stored token, creates an admin
/// token and prints it once, so a new user can log in.
async fn bootstrap_admin_token(
    db: &DatabaseConnection,
    auth: &Authenticator,
) -> anyhow::Result<()> {
    if auth.has_operator_token() || api_token::count(db).await? > 0 {
        return Ok(());
    }
    let (token, text) = api_token::insert(
        db,
        NewToken {
            name: "bootstrap admin".into(),
            project: None,
            scopes: Scopes::new(vec![Scope::Admin]),
        },
    )
    .await?;
    // Straight to the terminal (stderr), never through the log pipeline, where it
    // would be kept and shipped with every other line.
    eprintln!(
        "\naispend: no admin token was configured and none is stored, so one was created (id {}).\n\
         It is shown only this once and cannot be shown again; use it as `Authorization: Bearer <token>`:\n\n    {text}\n",
        token.id
    );
    Ok(())
}

async fn refresh_prices(db: DatabaseConnection, prices: Arc<PriceCache>) {
    let mut tick = tokio::time::interval(PRICE_REFRESH);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = prices.reload(&db).await {
            tracing::warn!(error = %e, "could not refresh the price book; keeping the previous one");
        }
    }
}
