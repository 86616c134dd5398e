//! The `aispend` command line: `serve`, `migrate`, `token create`, `prices import`,
//! `prices check`.

use crate::config::Settings;
use crate::domain::api_token::{self, NewToken};
use crate::domain::auth::Scope;
use crate::domain::ids::ProjectId;
use crate::domain::price::{catalog, litellm};
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
    /// Apply database migrations and write the built-in price catalog, then exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage prices.
    #[command(subcommand)]
    Prices(PricesCommand),
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
    match runtime.block_on(run(cli)) {
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
            app.run_until(startup::shutdown_signal()).await?;
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
            format: PriceFormatArg::Litellm,
            effective_from,
            file,
        }) => {
            let (db, _) = startup::prepare_database(&settings).await?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let map: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {} as JSON", file.display()))?;
            let report =
                litellm::import(&db, &map, effective_from.unwrap_or(DateTime::UNIX_EPOCH)).await?;
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
