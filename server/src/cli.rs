//! The `aispend` command line: `serve`, `migrate`, `token create`, `prices import`,
//! `prices sync`, `prices check`, `prices quote`, `plugins list`, `plugins inspect`,
//! `keys status`, `keys rotate`, `schema`, and `import`, `export` and `usage summary`
//! (clients of a running server, see `client/`).

use crate::config::Settings;
use crate::domain::api_token::{self, NewToken};
use crate::domain::auth::Scope;
use crate::domain::ids::ProjectId;
use crate::domain::key_rotation;
use crate::domain::keyring::{self, Keyring};
use crate::domain::price::sources::{PriceSync, SourceSpec, SourceStatus};
use crate::domain::price::{catalog, litellm, quote};
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
    /// Load a usage file (the export's CSV or JSONL, or a token-usage dashboard's logs
    /// CSV) into a running server, in batches with a progress bar. Idempotent:
    /// running it again adds nothing.
    Import {
        /// The file.
        file: PathBuf,
        /// Import every row into this project (default: the file's `project_id`, or
        /// the token's project).
        #[arg(long)]
        project: Option<String>,
        /// The server.
        #[arg(long, env = "AISPEND_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// An API token with the INGEST scope.
        #[arg(long, env = "AISPEND_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Rows per request (at most 10,000).
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// The file's format (default: from its extension or content).
        #[arg(long, value_enum)]
        format: Option<crate::client::import::FileFormat>,
    },
    /// Stream a running server's usage export (`/export/usage.csv|jsonl`) to
    /// standard output or a file.
    Export {
        /// CSV (with a header row) or JSONL.
        #[arg(long, value_enum, default_value_t)]
        format: crate::client::export::ExportFormat,
        #[command(flatten)]
        filter: crate::client::filter::Filter,
        /// Write to this file (written as FILE.partial, renamed when complete)
        /// instead of standard output.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Usage of a running server.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Print the GraphQL schema (SDL), for client code generation; needs no database
    /// or server.
    Schema,
    /// The master key that encrypts stored secrets.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `--url` and `--token` of the commands that talk to a running server.
#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// The server.
    #[arg(long, env = "AISPEND_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API token with the READ scope.
    #[arg(long, env = "AISPEND_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ServerArgs {
    fn client(self) -> anyhow::Result<crate::client::Client> {
        crate::client::Client::new(&crate::client::Server {
            url: self.url,
            token: self.token,
        })
    }
}

#[derive(Subcommand, Debug)]
enum UsageCommand {
    /// Cost, tokens, events and share of the cost for a range, grouped by model,
    /// provider, endpoint or project (dearest first), with the total.
    Summary {
        #[command(flatten)]
        filter: crate::client::filter::Filter,
        /// What each line is.
        #[arg(long, value_enum, default_value_t)]
        group_by: crate::client::summary::GroupBy,
        /// One JSON object with the server's exact values instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// How many credentials and webhook secrets each master key seals.
    Status,
    /// Re-encrypt every secret under AISPEND_MASTER_KEY (the new key) that is still
    /// under the key in <data dir>/master.key (the old one). Safe to interrupt and
    /// run again.
    Rotate {
        /// Secrets per transaction.
        #[arg(long, default_value_t = 100)]
        batch: u64,
        /// Pause between batches, in milliseconds, to spare a busy database.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// When every secret is under the new key, write it to <data dir>/master.key
        /// (replacing the old key), so that AISPEND_MASTER_KEY may then be unset.
        #[arg(long)]
        write_key_file: bool,
    },
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
    /// Price usages with the built-in catalog, offline: one JSON object per line in
    /// (`{"provider", "model", "input", "output", "cacheRead", "cacheWrite",
    /// "serviceTier", ...}`), one `{"model", "matched", "costUsd"}` per line out.
    Quote {
        /// The requests, one JSON object per line; `-` reads standard input.
        file: PathBuf,
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
        Command::Import {
            file,
            project,
            url,
            token,
            batch_size,
            format,
        } => return import(file, project, url, token, batch_size, format).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
        }
        Command::Export {
            format,
            filter,
            output,
            server,
        } => {
            use std::io::IsTerminal;
            let client = server.client()?;
            // Progress only where it cannot mix with the export on the terminal.
            let quiet_stdout = output.is_some() || !std::io::stdout().is_terminal();
            let options = crate::client::export::ExportOptions {
                format,
                filter,
                output,
                progress: quiet_stdout && std::io::stderr().is_terminal(),
            };
            let done = crate::client::export::run(&client, &options).await?;
            if quiet_stdout {
                eprintln!(
                    "exported {} rows ({} bytes){}",
                    done.rows,
                    done.bytes,
                    options
                        .output
                        .as_ref()
                        .map(|p| format!(" to {}", p.display()))
                        .unwrap_or_default()
                );
            }
        }
        Command::Usage(UsageCommand::Summary {
            filter,
            group_by,
            json,
            server,
        }) => {
            let client = server.client()?;
            let summary = crate::client::summary::fetch(&client, &filter, group_by).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary.raw)?);
            } else {
                print!("{}", crate::client::summary::table(&summary));
            }
        }
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
        Command::Keys(KeysCommand::Status) => {
            let (db, _) = startup::prepare_database(&settings).await?;
            let keyring = Keyring::load(settings.master_key.as_deref(), &settings.data_dir)?;
            let usage = key_rotation::usage(&db).await?;
            println!("current key: {}", keyring.current_id());
            for (what, counts) in [
                ("credentials", &usage.credentials),
                ("webhook secrets", &usage.webhook_secrets),
                ("channel secrets", &usage.channel_secrets),
            ] {
                for (id, n) in counts {
                    println!("{what} under {id}: {n}");
                }
            }
            println!(
                "{} secrets under another key",
                usage.outside(keyring.current_id())
            );
        }
        Command::Keys(KeysCommand::Rotate {
            batch,
            pause_ms,
            write_key_file,
        }) => {
            let Some(new_key) = settings
                .master_key
                .as_deref()
                .filter(|k| !k.trim().is_empty())
            else {
                anyhow::bail!(
                    "set AISPEND_MASTER_KEY to the new key (e.g. `openssl rand -base64 32`); \
                     the key in {} stays loaded to open the old secrets",
                    settings.data_dir.join(keyring::KEY_FILE).display()
                );
            };
            let (db, _) = startup::prepare_database(&settings).await?;
            let keyring = Keyring::load(Some(new_key), &settings.data_dir)?;
            let current = keyring.current_id().to_owned();
            let before = key_rotation::usage(&db).await?.outside(&current);
            eprintln!("rotating {before} secrets to key {current}");
            let pause = std::time::Duration::from_millis(pause_ms);
            let done = key_rotation::rotate(&db, &keyring, batch, pause, |p| {
                eprintln!(
                    "re-encrypted {} of {before} (credentials {}, webhook secrets {}, channel secrets {})",
                    p.credentials + p.webhook_secrets + p.channel_secrets,
                    p.credentials,
                    p.webhook_secrets,
                    p.channel_secrets
                );
            })
            .await?;
            let left = key_rotation::usage(&db).await?.outside(&current);
            println!(
                "re-encrypted {} credentials, {} webhook secrets and {} channel secrets; {left} secrets left under another key",
                done.credentials, done.webhook_secrets, done.channel_secrets
            );
            if left > 0 {
                eprintln!("some secrets changed while rotating: run `aispend keys rotate` again");
                return Ok(ExitCode::FAILURE);
            }
            if write_key_file {
                let path = keyring::replace_key_file(&settings.data_dir, new_key)?;
                println!(
                    "{} now holds key {current}; the old key is no longer needed",
                    path.display()
                );
            } else {
                println!(
                    "every secret is under key {current}: the old key in {} is no longer needed \
                     (run again with --write-key-file to replace it)",
                    settings.data_dir.join(keyring::KEY_FILE).display()
                );
            }
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
        Command::Prices(PricesCommand::Quote { file }) => {
            use std::io::{BufRead, Write};
            let book = catalog::builtin_book()?;
            let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file)
                        .with_context(|| format!("reading {}", file.display()))?,
                ))
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for (n, line) in reader.lines().enumerate() {
                let line = line.context("reading a request")?;
                if line.trim().is_empty() {
                    continue;
                }
                let request: quote::QuoteRequest = serde_json::from_str(&line)
                    .with_context(|| format!("line {}: not a quote request", n + 1))?;
                let answer = quote::quote(&book, &request)
                    .map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?;
                serde_json::to_writer(&mut out, &answer).context("writing a quote")?;
                writeln!(out).context("writing a quote")?;
            }
            out.flush().context("writing quotes")?;
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

/// Rejected rows printed one by one; the rest are counted.
const PRINTED_REJECTIONS: usize = 1000;

async fn import(
    file: PathBuf,
    project: Option<String>,
    url: String,
    token: Option<String>,
    batch_size: usize,
    format: Option<crate::client::import::FileFormat>,
) -> anyhow::Result<ExitCode> {
    use crate::client::{Client, Server, import};
    use std::io::IsTerminal;
    let client = Client::new(&Server { url, token })?;
    let options = import::ImportOptions {
        file,
        project,
        batch_size,
        format,
        progress: std::io::stderr().is_terminal(),
    };
    let summary = import::run(&client, &options).await?;
    println!(
        "{} rows: {} imported, {} duplicates, {} rejected",
        summary.rows,
        summary.imported,
        summary.duplicates,
        summary.rejected.len()
    );
    for (line, reason) in summary.rejected.iter().take(PRINTED_REJECTIONS) {
        println!("line {line}: {reason}");
    }
    if summary.rejected.len() > PRINTED_REJECTIONS {
        println!(
            "... and {} more rejected rows",
            summary.rejected.len() - PRINTED_REJECTIONS
        );
    }
    Ok(if summary.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
