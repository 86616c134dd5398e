//! The `aispend` command line: `serve`, `migrate`, `token create`, `prices import`,
//! `prices sync`, `prices check`, `plugins list`, `plugins inspect`.

use crate::config::Settings;
use crate::domain::api_token::{self, NewToken};
use crate::domain::auth::Scope;
use crate::domain::ids::ProjectId;
use crate::domain::price::sources::{PriceSync, SourceSpec, SourceStatus};
use crate::domain::price::{catalog, litellm};
use crate::plugins::{self, Capability, Inspected, PluginInfo, Source};
use crate::{startup, telemetry};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// aispend: a self-hosted ledger of AI API spend.
#[derive(Parser, Debug)]
#[command(name = "aispend", version, about)]
pub struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Migrate the database and serve the API (GraphQL at /graphql).
    Serve,
    /// Run only the background jobs (provider syncs, alert webhooks), no HTTP: for
    /// a worker-only process beside the servers on one PostgreSQL.
    Worker,
    /// Apply database migrations and write the built-in price catalog, then exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage prices.
    #[command(subcommand)]
    Prices(PricesCommand),
    /// Provider plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// List the bundled plugins and those in AISPEND_PLUGIN_DIR, with load errors.
    List,
    /// Check a plugin component file and print its metadata and imports.
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print it (shown once).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Bind the token to a project.
        #[arg(long)]
        project: Option<ProjectId>,
        /// Scopes (repeat or comma-separate): ingest, read, admin.
        #[arg(long = "scope", value_delimiter = ',', default_value = "admin")]
        scopes: Vec<ScopeArg>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScopeArg {
    Ingest,
    Read,
    Admin,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum PriceFormatArg {
    Litellm,
    GenaiPrices,
}

#[derive(Subcommand, Debug)]
enum PricesCommand {
    /// Import a price map (as IMPORT prices).
    Import {
        /// Format of the file.
        #[arg(long, value_enum)]
        format: PriceFormatArg,
        /// Prices apply from this time (RFC 3339); default: all history.
        #[arg(long)]
        effective_from: Option<DateTime<Utc>>,
        /// The file.
        file: PathBuf,
    },
    /// Fetch the configured price sources (AISPEND_PRICE_SOURCES) now, write what
    /// changed as new price periods and price the events stored UNPRICED; fails when a
    /// source could not be read or was refused.
    Sync {
        /// Sync these sources instead of the configured ones (`URL`,
        /// `litellm:URL` or `genai-prices:URL`; repeat or comma-separate).
        #[arg(long = "source", value_delimiter = ',')]
        sources: Vec<SourceSpec>,
    },
    /// Compare the built-in catalog with LiteLLM's price map; fails on an
    /// unexplained difference.
    Check {
        /// LiteLLM's model_prices_and_context_window.json.
        #[arg(long)]
        litellm: PathBuf,
    },
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aispend: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Dropping a runtime waits for every blocking task, and a plugin compile that
    // started just before a SIGTERM can run for seconds: its result is not needed
    // any more, so the process does not wait long for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aispend: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = cli.settings;
    match cli.command {
        Command::Serve => {
            let app = startup::Application::build(&settings).await?;
            let plugins = app.state().plugins.clone();
            tokio::spawn(async move { plugins.warm_up().await });
            app.run_until(startup::shutdown_signal()).await?;
        }
        Command::Worker => {
            // A worker serves no HTTP: never take the server's address.
            let mut settings = settings.clone();
            settings.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let app = startup::Application::build(&settings).await?;
            app.work_until(startup::shutdown_signal()).await?;
        }
        Command::Plugins(PluginsCommand::List) => {
            let host = startup::plugin_host(&settings)?;
            return Ok(print_plugins(&host.list().await));
        }
        Command::Plugins(PluginsCommand::Inspect { file }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let inspected = plugins::inspect_file(bytes)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            return Ok(print_inspection(&file, &inspected));
        }
        Command::Migrate => {
            startup::prepare_database(&settings).await?;
            println!("database is migrated and the built-in price catalog is written");
        }
        Command::Token(TokenCommand::Create {
            name,
            project,
            scopes,
        }) => {
            let (db, _) = startup::prepare_database(&settings).await?;
            let scopes = scopes
                .into_iter()
                .map(|s| match s {
                    ScopeArg::Ingest => Scope::Ingest,
                    ScopeArg::Read => Scope::Read,
                    ScopeArg::Admin => Scope::Admin,
                })
                .collect();
            if let Some(p) = project
                && crate::domain::project::find(&db, p).await?.is_none()
            {
                anyhow::bail!("no project with id {p}");
            }
            let new = NewToken::parse(&name, project, scopes)?;
            let (token, text) = api_token::insert(&db, new).await?;
            eprintln!(
                "created token {} ({}); it is shown only once:",
                token.id, token.scopes
            );
            println!("{text}");
        }
        Command::Prices(PricesCommand::Import {
            format,
            effective_from,
            file,
        }) => {
            let (db, _) = startup::prepare_database(&settings).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let map: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {} as JSON", file.display()))?;
            let from = effective_from.unwrap_or(DateTime::UNIX_EPOCH);
            let report = match format {
                PriceFormatArg::Litellm => litellm::import(&db, &map, from).await?,
                PriceFormatArg::GenaiPrices => {
                    crate::domain::price::genai_prices::import(&db, &map, from).await?
                }
            };
            println!(
                "imported {}, updated {}, unchanged {}, skipped {}",
                report.imported,
                report.updated,
                report.unchanged,
                report.skipped_total()
            );
            for (reason, n) in &report.skipped {
                println!("  skipped {n}: {reason}");
            }
        }
        Command::Prices(PricesCommand::Sync { sources }) => {
            // The full ledger (rollups, budgets, live updates) re-prices the events,
            // so the server is built, but never serves: no address is taken.
            let mut settings = settings.clone();
            settings.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let app = startup::Application::build(&settings).await?;
            let state = app.state();
            let sync = if sources.is_empty() {
                state.price_sync.clone()
            } else {
                std::sync::Arc::new(PriceSync::new(
                    state.db.clone(),
                    state.ledger.clone(),
                    sources,
                    settings.prices.policy(),
                    settings.prices.interval(),
                ))
            };
            if sync.specs.is_empty() {
                anyhow::bail!("no price source: set AISPEND_PRICE_SOURCES or pass --source URL");
            }
            let outcome = sync.run().await?;
            let mut ok = true;
            for s in &outcome.sources {
                ok &= s.status == SourceStatus::Ok;
                println!(
                    "{} {}: added {}, changed {}, removed {}, unchanged {}, skipped {}{}",
                    s.status,
                    s.url,
                    s.added,
                    s.changed,
                    s.removed,
                    s.unchanged,
                    s.skipped,
                    s.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
            println!("priced {} events that were unpriced", outcome.repriced);
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Prices(PricesCommand::Check { litellm: file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let map: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {} as JSON", file.display()))?;
            let catalog = catalog::parse(catalog::CATALOG_TOML)?;
            let differences = catalog::compare_with_litellm(&catalog, &map);
            let unexplained: Vec<_> = differences.iter().filter(|d| d.note.is_none()).collect();
            for d in &differences {
                println!(
                    "{:<50} {:<28} ours {:>12} litellm {:>12}  {}",
                    d.row,
                    d.rate,
                    d.ours.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                    d.theirs
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                    if d.note.is_some() {
                        "(explained in the catalog)"
                    } else {
                        "UNEXPLAINED"
                    }
                );
            }
            println!(
                "{} rows compared with LiteLLM {}: {} differences, {} unexplained",
                catalog
                    .prices
                    .iter()
                    .filter(|r| r.litellm_key.is_some())
                    .count(),
                catalog.litellm_version,
                differences.len(),
                unexplained.len()
            );
            if !unexplained.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn capability_names(caps: &[Capability]) -> String {
    let names: Vec<&str> = caps
        .iter()
        .map(|c| match c {
            Capability::ValidateCredential => "validate-credential",
            Capability::FetchUsage => "fetch-usage",
            Capability::FetchCosts => "fetch-costs",
            Capability::ManualEntry => "manual-entry",
        })
        .collect();
    names.join(",")
}

/// `aispend plugins list`: one line per plugin; fails when any plugin did not load.
fn print_plugins(list: &[PluginInfo]) -> ExitCode {
    println!(
        "{:<16} {:<9} {:<4} {:<10} {:<55} hosts",
        "id", "version", "sdk", "source", "capabilities"
    );
    let mut failed = false;
    for p in list {
        let source = match p.source {
            Source::Bundled => "bundled",
            Source::Directory => "directory",
        };
        match (&p.metadata, &p.load_error) {
            (Some(m), None) => println!(
                "{:<16} {:<9} {:<4} {:<10} {:<55} {}{}",
                m.id,
                m.version,
                p.sdk_version.as_deref().unwrap_or("?"),
                source,
                capability_names(&m.capabilities),
                m.hosts.join(","),
                if p.replaced {
                    "  (replaced by a directory plugin)"
                } else {
                    ""
                }
            ),
            (_, error) => {
                failed = true;
                println!(
                    "{:<16} {:<9} {:<4} {:<10} NOT LOADED ({}): {}",
                    p.id,
                    "-",
                    p.sdk_version.as_deref().unwrap_or("?"),
                    source,
                    p.origin,
                    error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `aispend plugins inspect FILE`: the verdict, the metadata and the imports.
fn print_inspection(file: &std::path::Path, inspected: &Inspected) -> ExitCode {
    println!("file:        {}", file.display());
    println!(
        "sdk version: {}",
        inspected
            .inspection
            .sdk_version
            .as_deref()
            .unwrap_or("(none)")
    );
    if let Some(m) = &inspected.metadata {
        println!("id:          {}", m.id);
        println!("name:        {}", m.name);
        println!("version:     {}", m.version);
        println!("capabilities: {}", capability_names(&m.capabilities));
        println!(
            "hosts:       {}",
            if m.hosts.is_empty() {
                "(none)".into()
            } else {
                m.hosts.join(", ")
            }
        );
        println!("credential:  {}", m.credential_help);
        if let Some(h) = &m.manual_entry_help {
            println!("manual entry: {h}");
        }
        if let Some(d) = &m.docs_url {
            println!("docs:        {d}");
        }
    }
    println!("imports:");
    for import in &inspected.inspection.imports {
        let verdict = if plugins::component::import_allowed(import) {
            "allowed"
        } else {
            "REFUSED"
        };
        println!("  {verdict:<8} {import}");
    }
    match &inspected.problem {
        None => {
            println!("verdict:     OK, loadable");
            ExitCode::SUCCESS
        }
        Some(p) => {
            println!("verdict:     REFUSED: {p}");
            ExitCode::FAILURE
        }
    }
}
