//! The plugin host: provider plugins are WebAssembly components run by wasmtime (the
//! 48.x long-term-support line) in a sandbox. **Only this module imports wasmtime.**
//!
//! - One [`Engine`] per process; each component is compiled once per content hash and
//!   kept as an `InstancePre`. Every call gets a fresh [`Store`] that is dropped when the
//!   call ends and never reused, least of all after an error.
//! - Limits per call ([`Limits`]): CPU time through epoch interruption and, since host
//!   calls do not count, an outer wall-clock timeout; a memory cap that traps on failed
//!   growth; a cap on the bytes a plugin may pass to the host in one call; caps on HTTP
//!   requests and response bytes; caps on pages and rows per paging run. A plugin that
//!   panics, loops, exhausts memory or returns garbage yields a [`PluginError`] naming the
//!   plugin and its version; the server keeps serving.
//! - HTTP is performed by the host (`http.rs`) after the granter (`granter.rs`), which
//!   denies by default, allows it.
//! - A component is checked before it is compiled (`component.rs`): SDK version and
//!   imports (no filesystem, sockets or environment).
//! - Discovery: bundled plugins built from `plugins/` and embedded in the binary, plus
//!   every `.wasm` in `AISPEND_PLUGIN_DIR` (a directory plugin with a bundled plugin's id
//!   replaces it).
//!
//! Credentials reach a plugin only inside the call that needs them.

pub mod call;
pub mod component;
pub mod granter;
pub mod http;
pub mod limits;
pub mod rows;
pub mod sync;
pub mod v0_1;

use crate::domain::credential::{CredentialCheck, CredentialGateway};
use call::{CallState, Redactor};
use chrono::{DateTime, Utc};
use granter::{Granter, OperatorAllowList};
pub use limits::Limits;
use rows::{Page, Rows};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, Trap, UpdateDeadline};

pub use crate::domain::credential::CredentialMaterial;

/// The bundled plugins, built by `server/build.rs`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

    /// Where the build put every plugin component of `plugins/`, the example plugin and
    /// the sandbox test fixtures included (those are never embedded). Tests and
    /// benchmarks load fixtures from here.
    pub const BUILD_DIR: &str = env!("AISPEND_PLUGIN_BUILD_DIR");
}

/// How often the epoch ticks; the CPU limit is counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a plugin can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Check a credential.
    ValidateCredential,
    /// Fetch usage reports.
    FetchUsage,
    /// Fetch cost reports.
    FetchCosts,
    /// No API: usage is entered by hand.
    ManualEntry,
}

/// A plugin's metadata, in host terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginMetadata {
    /// Stable id, also the provider name.
    pub id: String,
    /// Name for people.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// What it can do.
    pub capabilities: Vec<Capability>,
    /// Hosts it calls over https.
    pub hosts: Vec<String>,
    /// How to get a credential.
    pub credential_help: String,
    /// Where to find numbers to enter by hand.
    pub manual_entry_help: Option<String>,
    /// The provider documentation it follows.
    pub docs_url: Option<String>,
}

impl PluginMetadata {
    /// Checks what a plugin said about itself.
    pub fn check(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(format!(
                "plugin id `{}` must be 1-64 characters of a-z, 0-9, - and _",
                self.id.chars().take(64).collect::<String>()
            ));
        }
        if self.version.is_empty() || self.version.len() > 64 || self.name.len() > 200 {
            return Err("plugin name or version is empty or too long".into());
        }
        if self.hosts.len() > 32 || self.credential_help.len() > 4_000 {
            return Err("plugin metadata is too large".into());
        }
        for h in &self.hosts {
            granter::HostPort::parse(h).map_err(|e| format!("declared host: {e}"))?;
        }
        Ok(())
    }

    /// `id@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Whether it has a capability.
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }
}

/// Where a plugin came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Built from `plugins/` and embedded in the binary.
    Bundled,
    /// A `.wasm` in `AISPEND_PLUGIN_DIR`.
    Directory,
}

/// One plugin as the API lists it: loaded, or with the reason it did not load.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// The plugin id (the file name when it did not load).
    pub id: String,
    /// Where it came from.
    pub source: Source,
    /// `bundled:<id>` or the file path.
    pub origin: String,
    /// Its metadata, when it loaded.
    pub metadata: Option<PluginMetadata>,
    /// The SDK version it was built with, when known.
    pub sdk_version: Option<String>,
    /// Why it did not load.
    pub load_error: Option<String>,
    /// Whether a directory plugin with the same id replaces this bundled one.
    pub replaced: bool,
}

/// Which report to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// `fetch-usage`.
    Usage,
    /// `fetch-costs`.
    Costs,
}

/// Width of the buckets asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketWidth {
    /// `1m`.
    Minute,
    /// `1h`.
    Hour,
    /// `1d`.
    Day,
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchQuery {
    /// Window start (inclusive).
    pub start: DateTime<Utc>,
    /// Window end (exclusive).
    pub end: DateTime<Utc>,
    /// Bucket width.
    pub bucket: BucketWidth,
    /// The previous page's cursor.
    pub cursor: Option<String>,
}

/// Why a plugin call failed. The first group mirrors the contract's provider errors
/// (what the provider said, via the plugin), so a sync can apply its retry rules; the
/// rest are the sandbox's verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginErrorKind {
    /// The provider rejected the credential.
    Unauthorized(String),
    /// The credential lacks a permission.
    Forbidden(String),
    /// Too many requests; wait `retry_after` when given.
    RateLimited {
        /// How long the provider asked to wait.
        retry_after: Option<Duration>,
        /// Its message.
        message: String,
    },
    /// The provider is unavailable.
    Unavailable(String),
    /// The provider answered something unreadable.
    BadResponse(String),
    /// The plugin does not do this.
    NotSupported(String),
    /// Any other provider error.
    Other(String),
    /// The plugin broke: panicked, looped past its CPU limit, exhausted its memory,
    /// passed too much data, or returned garbage.
    Crashed(String),
    /// The call did not finish within its wall-clock limit (a slow provider, usually):
    /// worth another try later, unlike a crash.
    TimedOut(String),
    /// A paging run went past its caps (pages, rows).
    LimitExceeded(String),
    /// The plugin could not be loaded.
    Unloadable(String),
    /// No plugin has this id.
    NotFound,
}

/// A failed plugin call, naming the plugin (`id@version`). Messages never contain the
/// credential's secret: everything a plugin says passes through a redactor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// `id@version` (or the id asked for, when not found).
    pub plugin: String,
    /// What happened.
    pub kind: PluginErrorKind,
}

impl PluginError {
    fn new(plugin: impl Into<String>, kind: PluginErrorKind) -> PluginError {
        PluginError {
            plugin: plugin.into(),
            kind,
        }
    }

    /// Whether trying again later may succeed (rate limits, outages, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            PluginErrorKind::RateLimited { .. }
                | PluginErrorKind::Unavailable(_)
                | PluginErrorKind::TimedOut(_)
        )
    }

    /// The message without the plugin label.
    pub fn detail(&self) -> String {
        match &self.kind {
            PluginErrorKind::Unauthorized(m) => format!("unauthorized: {m}"),
            PluginErrorKind::Forbidden(m) => format!("forbidden: {m}"),
            PluginErrorKind::RateLimited {
                retry_after: Some(d),
                message,
            } => {
                format!("rate limited (retry after {}s): {message}", d.as_secs())
            }
            PluginErrorKind::RateLimited {
                retry_after: None,
                message,
            } => format!("rate limited: {message}"),
            PluginErrorKind::Unavailable(m) => format!("provider unavailable: {m}"),
            PluginErrorKind::BadResponse(m) => format!("bad response from the provider: {m}"),
            PluginErrorKind::NotSupported(m) => format!("not supported: {m}"),
            PluginErrorKind::Other(m) => m.clone(),
            PluginErrorKind::Crashed(m) => m.clone(),
            PluginErrorKind::TimedOut(m) => m.clone(),
            PluginErrorKind::LimitExceeded(m) => m.clone(),
            PluginErrorKind::Unloadable(m) => format!("cannot be loaded: {m}"),
            PluginErrorKind::NotFound => "no such plugin".into(),
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.plugin, self.detail())
    }
}

impl std::error::Error for PluginError {}

impl From<PluginError> for crate::domain::Error {
    fn from(e: PluginError) -> Self {
        match e.kind {
            PluginErrorKind::NotFound => crate::domain::Error::NotFound { what: "plugin" },
            _ => crate::domain::Error::Plugin {
                message: e.detail(),
                plugin: e.plugin,
            },
        }
    }
}

/// Rows of a whole paging run.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// Every row, in page order.
    pub rows: Rows,
    /// Pages fetched.
    pub pages: u32,
}

/// The process-wide engine: one per process, shared by every [`PluginHost`], with the
/// linker, the epoch ticker and the compiled components (by content hash).
struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    compiled: Mutex<HashMap<[u8; 32], v0_1::ProviderPre<CallState>>>,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

impl Runtime {
    fn get() -> Result<&'static Runtime, String> {
        RUNTIME
            .get_or_init(|| {
                Runtime::new().map_err(|e| format!("starting the plugin engine: {e:#}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn new() -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        config.max_wasm_stack(1 << 20);
        let engine = Engine::new(&config)?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        // Only what a plugin may import: wasi:io, the cli streams and environment
        // (empty), exit, clocks and random; no filesystem, no sockets.
        wasmtime_wasi_io::add_to_linker_async(&mut linker)?;
        {
            use wasmtime_wasi::cli::{WasiCli, WasiCliView};
            use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
            use wasmtime_wasi::p2::bindings::{cli, clocks, random};
            use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
            let l = &mut linker;
            cli::environment::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::exit::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::terminal_input::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::terminal_output::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(l, CallState::cli)?;
            clocks::wall_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
            clocks::monotonic_clock::add_to_linker::<CallState, WasiClocks>(l, CallState::clocks)?;
            random::random::add_to_linker::<CallState, WasiRandom>(l, CallState::random)?;
            random::insecure::add_to_linker::<CallState, WasiRandom>(l, CallState::random)?;
            random::insecure_seed::add_to_linker::<CallState, WasiRandom>(l, CallState::random)?;
        }
        v0_1::add_to_linker(&mut linker)?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("aispend-plugin-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })?;
        Ok(Runtime {
            engine,
            linker,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Compiles (or finds compiled) a component that passed [`component::inspect`].
    async fn prepare(
        &'static self,
        bytes: Arc<[u8]>,
    ) -> Result<v0_1::ProviderPre<CallState>, String> {
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(pre) = self
            .compiled
            .lock()
            .map_err(|_| "the plugin cache is poisoned")?
            .get(&hash)
        {
            return Ok(pre.clone());
        }
        let pre = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let component =
                Component::new(&self.engine, &bytes).map_err(|e| format!("compiling: {e:#}"))?;
            let instance_pre = self
                .linker
                .instantiate_pre(&component)
                .map_err(|e| format!("linking: {e:#}"))?;
            v0_1::ProviderPre::new(instance_pre)
                .map_err(|e| format!("the component is not a provider plugin: {e:#}"))
        })
        .await
        .map_err(|e| format!("compiling: {e}"))??;
        self.compiled
            .lock()
            .map_err(|_| "the plugin cache is poisoned")?
            .insert(hash, pre.clone());
        Ok(pre)
    }
}

/// A compiled, checked plugin.
pub struct LoadedPlugin {
    /// Its metadata.
    pub metadata: PluginMetadata,
    /// The SDK version it was built with.
    pub sdk_version: String,
    /// Its top-level imports.
    pub imports: Vec<String>,
    pre: v0_1::ProviderPre<CallState>,
}

/// A load's outcome: the plugin, or the SDK version (when known) and why it failed.
type LoadOutcome = Result<Arc<LoadedPlugin>, (Option<String>, String)>;

struct Slot {
    source: Source,
    origin: String,
    /// The id a bundled plugin is expected to have; the file stem for directory ones.
    name: String,
    bytes: Arc<[u8]>,
    loaded: tokio::sync::OnceCell<LoadOutcome>,
}

/// Settings of the plugin host.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// `AISPEND_PLUGIN_DIR`.
    pub dir: Option<PathBuf>,
    /// `AISPEND_PLUGIN_ALLOW_HOSTS`.
    pub allow_hosts: Vec<String>,
    /// Limits of calls and paging runs.
    pub limits: Limits,
    /// Leave out the bundled plugins (for tests of directory plugins).
    pub without_bundled: bool,
}

/// Discovers, loads and calls provider plugins. The API sync (issue 4) calls
/// [`PluginHost::fetch_page`] or [`PluginHost::fetch_all`].
pub struct PluginHost {
    runtime: &'static Runtime,
    slots: Vec<Slot>,
    operator: OperatorAllowList,
    limits: Limits,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("plugins", &self.slots.len())
            .field("operator", &self.operator)
            .finish()
    }
}

impl PluginHost {
    /// Finds the plugins (bundled, then `dir`); compiles nothing yet. A missing or
    /// unreadable plugin folder and a malformed allow-list are configuration errors.
    pub fn new(settings: &PluginSettings) -> Result<PluginHost, String> {
        let runtime = Runtime::get()?;
        let operator = OperatorAllowList::parse(&settings.allow_hosts)?;
        let mut slots = Vec::new();
        if !settings.without_bundled {
            for (id, bytes) in bundled::BUNDLED {
                slots.push(Slot::new(
                    Source::Bundled,
                    format!("bundled:{id}"),
                    (*id).to_owned(),
                    Arc::from(*bytes),
                ));
            }
        }
        if let Some(dir) = &settings.dir {
            for path in wasm_files(dir)? {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let origin = path.display().to_string();
                match std::fs::read(&path) {
                    Ok(bytes) => {
                        slots.push(Slot::new(Source::Directory, origin, name, Arc::from(bytes)))
                    }
                    Err(e) => {
                        let slot =
                            Slot::new(Source::Directory, origin, name, Arc::from(Vec::new()));
                        let _ = slot
                            .loaded
                            .set(Err((None, format!("reading the file: {e}"))));
                        slots.push(slot);
                    }
                }
            }
        }
        Ok(PluginHost {
            runtime,
            slots,
            operator,
            limits: settings.limits.clone(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The operator's allow-list.
    pub fn operator_allow_list(&self) -> &OperatorAllowList {
        &self.operator
    }

    /// Loads every plugin (compiling what is not compiled yet) and logs load errors.
    pub async fn warm_up(&self) {
        for info in self.list().await {
            match (&info.metadata, &info.load_error) {
                (Some(m), None) => {
                    tracing::info!(plugin = %m.label(), origin = %info.origin, "plugin loaded")
                }
                (_, Some(e)) => {
                    tracing::warn!(origin = %info.origin, error = %e, "plugin not loaded")
                }
                _ => {}
            }
        }
    }

    /// Every plugin, loaded or not, bundled first.
    pub async fn list(&self) -> Vec<PluginInfo> {
        let mut out = Vec::new();
        for slot in &self.slots {
            let loaded = self.load(slot).await;
            out.push(match loaded {
                Ok(p) => PluginInfo {
                    id: p.metadata.id.clone(),
                    source: slot.source,
                    origin: slot.origin.clone(),
                    sdk_version: Some(p.sdk_version.clone()),
                    metadata: Some(p.metadata.clone()),
                    load_error: None,
                    replaced: false,
                },
                Err((sdk_version, e)) => PluginInfo {
                    id: slot.name.clone(),
                    source: slot.source,
                    origin: slot.origin.clone(),
                    metadata: None,
                    sdk_version,
                    load_error: Some(e),
                    replaced: false,
                },
            });
        }
        // A directory plugin replaces a bundled one with its id; two directory plugins
        // with one id are an error for the second.
        let directory_ids: Vec<String> = out
            .iter()
            .filter(|i| i.source == Source::Directory && i.metadata.is_some())
            .map(|i| i.id.clone())
            .collect();
        let mut seen = std::collections::HashSet::new();
        for info in &mut out {
            if info.metadata.is_none() {
                continue;
            }
            match info.source {
                Source::Bundled => info.replaced = directory_ids.contains(&info.id),
                Source::Directory if !seen.insert(info.id.clone()) => {
                    info.load_error = Some(format!(
                        "another file in the plugin folder already has the id `{}`",
                        info.id
                    ));
                    info.replaced = true;
                }
                Source::Directory => {}
            }
        }
        out
    }

    async fn load(&self, slot: &Slot) -> LoadOutcome {
        slot.loaded
            .get_or_init(|| self.load_uncached(slot))
            .await
            .clone()
    }

    async fn load_uncached(
        &self,
        slot: &Slot,
    ) -> Result<Arc<LoadedPlugin>, (Option<String>, String)> {
        let inspection = component::inspect(&slot.bytes).map_err(|e| (None, e))?;
        if let Some(problem) = inspection.problem() {
            return Err((inspection.sdk_version.clone(), problem));
        }
        let sdk_version = inspection.sdk_version.clone().unwrap_or_default();
        let fail = |e: String| (Some(sdk_version.clone()), e);
        let pre = self
            .runtime
            .prepare(slot.bytes.clone())
            .await
            .map_err(fail)?;
        let label = slot.origin.clone();
        let mut store = self.store(
            &label,
            Granter::new(&[], OperatorAllowList::default()),
            Redactor::new(None),
        );
        let outcome = tokio::time::timeout(self.limits.wall, async {
            let provider = pre.instantiate_async(&mut store).await?;
            provider.call_metadata(&mut store).await
        })
        .await;
        let raw = match outcome {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                return Err(fail(format!(
                    "calling metadata: {}",
                    explain(&e, store.data(), &self.limits)
                )));
            }
            Err(_) => {
                return Err(fail(format!(
                    "metadata did not return within {}s",
                    self.limits.wall.as_secs()
                )));
            }
        };
        drop(store);
        let metadata = v0_1::metadata(raw).map_err(fail)?;
        if slot.source == Source::Bundled && metadata.id != slot.name {
            return Err(fail(format!(
                "the bundled plugin `{}` calls itself `{}`",
                slot.name, metadata.id
            )));
        }
        Ok(Arc::new(LoadedPlugin {
            metadata,
            sdk_version,
            imports: inspection.imports,
            pre,
        }))
    }

    /// The plugin with this id: a directory plugin wins over a bundled one.
    pub async fn plugin(&self, id: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        let mut found = None;
        for slot in self.slots.iter().filter(|s| s.source == Source::Directory) {
            if let Ok(p) = self.load(slot).await
                && p.metadata.id == id
                && found.is_none()
            {
                found = Some(p);
            }
        }
        if let Some(p) = found {
            return Ok(p);
        }
        let Some(slot) = self
            .slots
            .iter()
            .find(|s| s.source == Source::Bundled && s.name == id)
        else {
            return Err(PluginError::new(id, PluginErrorKind::NotFound));
        };
        self.load(slot)
            .await
            .map_err(|(_, e)| PluginError::new(id, PluginErrorKind::Unloadable(e)))
    }

    fn granter(&self, plugin: &LoadedPlugin) -> Granter {
        Granter::new(&plugin.metadata.hosts, self.operator.clone())
    }

    fn store(&self, label: &str, granter: Granter, redact: Redactor) -> Store<CallState> {
        let mut store = Store::new(
            &self.runtime.engine,
            CallState::new(label.to_owned(), granter, self.limits.clone(), redact),
        );
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(self.limits.hostcall_bytes);
        store.set_epoch_deadline(1);
        let budget = (self.limits.cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let mut ticks = 0u64;
        store.epoch_deadline_callback(move |_| {
            ticks += 1;
            if ticks > budget {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Checks that a credential's base-URL override is one this plugin may reach.
    pub async fn check_base_url(&self, id: &str, base_url: &str) -> Result<(), PluginError> {
        let plugin = self.plugin(id).await?;
        self.granter(&plugin)
            .check_base_url(base_url)
            .map_err(|d| PluginError::new(plugin.metadata.label(), PluginErrorKind::Other(d.0)))
    }

    /// Runs the plugin's credential check.
    pub async fn validate_credential(
        &self,
        id: &str,
        material: &CredentialMaterial,
    ) -> Result<(), PluginError> {
        let plugin = self.plugin(id).await?;
        let label = plugin.metadata.label();
        if let Some(base) = &material.base_url {
            self.granter(&plugin)
                .check_base_url(base)
                .map_err(|d| PluginError::new(&label, PluginErrorKind::Other(d.0)))?;
        }
        let redact = Redactor::new(Some(material.secret.expose()));
        let mut store = self.store(&label, self.granter(&plugin), redact.clone());
        let credential = v0_1::credential(material);
        let outcome = tokio::time::timeout(self.limits.wall, async {
            let provider = plugin.pre.instantiate_async(&mut store).await?;
            provider
                .call_validate_credential(&mut store, &credential)
                .await
        })
        .await;
        let result = self.settle(&label, outcome, &store, &redact)?;
        result.map_err(|e| PluginError::new(&label, redact_kind(v0_1::provider_error(e), &redact)))
    }

    /// Fetches one page of usage or costs. The credential is passed to this call only.
    pub async fn fetch_page(
        &self,
        id: &str,
        kind: FetchKind,
        material: &CredentialMaterial,
        query: &FetchQuery,
    ) -> Result<Page, PluginError> {
        let plugin = self.plugin(id).await?;
        let label = plugin.metadata.label();
        if query.end <= query.start {
            return Err(PluginError::new(
                &label,
                PluginErrorKind::Other("the window's end is not after its start".into()),
            ));
        }
        if let Some(base) = &material.base_url {
            self.granter(&plugin)
                .check_base_url(base)
                .map_err(|d| PluginError::new(&label, PluginErrorKind::Other(d.0)))?;
        }
        let redact = Redactor::new(Some(material.secret.expose()));
        let mut store = self.store(&label, self.granter(&plugin), redact.clone());
        let credential = v0_1::credential(material);
        let wit_query = v0_1::query(query);
        let max_rows = self.limits.rows_per_page;
        let outcome = tokio::time::timeout(self.limits.wall, async {
            let provider = plugin.pre.instantiate_async(&mut store).await?;
            Ok(match kind {
                FetchKind::Usage => provider
                    .call_fetch_usage(&mut store, &credential, &wit_query)
                    .await?
                    .map(|p| v0_1::usage_page(p, max_rows)),
                FetchKind::Costs => provider
                    .call_fetch_costs(&mut store, &credential, &wit_query)
                    .await?
                    .map(|p| v0_1::cost_page(p, max_rows)),
            })
        })
        .await;
        match self.settle(&label, outcome, &store, &redact)? {
            Ok(Ok(page)) => Ok(page),
            Ok(Err(garbage)) => Err(PluginError::new(
                &label,
                PluginErrorKind::Crashed(format!("returned garbage: {}", redact.apply(&garbage))),
            )),
            Err(e) => Err(PluginError::new(
                &label,
                redact_kind(v0_1::provider_error(e), &redact),
            )),
        }
    }

    /// Fetches every page of a window, following cursors, within the caps on pages
    /// and rows ([`Limits::pages_per_sync`], [`Limits::rows_per_sync`]).
    pub async fn fetch_all(
        &self,
        id: &str,
        kind: FetchKind,
        material: &CredentialMaterial,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        bucket: BucketWidth,
    ) -> Result<FetchReport, PluginError> {
        let mut query = FetchQuery {
            start,
            end,
            bucket,
            cursor: None,
        };
        let mut rows = match kind {
            FetchKind::Usage => Rows::Usage(Vec::new()),
            FetchKind::Costs => Rows::Costs(Vec::new()),
        };
        let mut pages = 0u32;
        loop {
            if pages >= self.limits.pages_per_sync {
                let label = self
                    .plugin(id)
                    .await
                    .map(|p| p.metadata.label())
                    .unwrap_or_else(|_| id.to_owned());
                return Err(PluginError::new(
                    label,
                    PluginErrorKind::LimitExceeded(format!(
                        "kept returning a next cursor after {pages} pages; the limit per sync is {}",
                        self.limits.pages_per_sync
                    )),
                ));
            }
            let page = self.fetch_page(id, kind, material, &query).await?;
            pages += 1;
            rows.extend(page.rows);
            if rows.len() > self.limits.rows_per_sync {
                let label = self
                    .plugin(id)
                    .await
                    .map(|p| p.metadata.label())
                    .unwrap_or_else(|_| id.to_owned());
                return Err(PluginError::new(
                    label,
                    PluginErrorKind::LimitExceeded(format!(
                        "returned more than {} rows in one sync",
                        self.limits.rows_per_sync
                    )),
                ));
            }
            match page.next_cursor {
                Some(c) => query.cursor = Some(c),
                None => return Ok(FetchReport { rows, pages }),
            }
        }
    }

    /// Turns the outcome of a call into the plugin's own result or a sandbox error.
    fn settle<R>(
        &self,
        label: &str,
        outcome: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        store: &Store<CallState>,
        redact: &Redactor,
    ) -> Result<R, PluginError> {
        match outcome {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                let message = redact.apply(&explain(&e, store.data(), &self.limits));
                tracing::warn!(plugin = %label, error = %message, "plugin call failed");
                Err(PluginError::new(label, PluginErrorKind::Crashed(message)))
            }
            Err(_) => {
                tracing::warn!(plugin = %label, "plugin call timed out");
                Err(PluginError::new(
                    label,
                    PluginErrorKind::TimedOut(format!(
                        "did not finish within {}s",
                        self.limits.wall.as_secs()
                    )),
                ))
            }
        }
    }
}

fn redact_kind(kind: PluginErrorKind, redact: &Redactor) -> PluginErrorKind {
    use PluginErrorKind as K;
    match kind {
        K::Unauthorized(m) => K::Unauthorized(redact.apply(&m)),
        K::Forbidden(m) => K::Forbidden(redact.apply(&m)),
        K::RateLimited {
            retry_after,
            message,
        } => K::RateLimited {
            retry_after,
            message: redact.apply(&message),
        },
        K::Unavailable(m) => K::Unavailable(redact.apply(&m)),
        K::BadResponse(m) => K::BadResponse(redact.apply(&m)),
        K::NotSupported(m) => K::NotSupported(redact.apply(&m)),
        K::Other(m) => K::Other(redact.apply(&m)),
        other => other,
    }
}

/// Says in words what a trap or host error means.
fn explain(error: &wasmtime::Error, state: &CallState, limits: &Limits) -> String {
    let chain = format!("{error:#}");
    // The trap may sit under context (a stack overflow arrives wrapped in its wasm
    // backtrace): look through the whole chain.
    let trap = error
        .downcast_ref::<Trap>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<Trap>()));
    if let Some(trap) = trap {
        match trap {
            Trap::Interrupt => {
                return format!(
                    "exceeded its CPU time limit of {}s",
                    limits.cpu.as_secs_f32()
                );
            }
            Trap::UnreachableCodeReached => {
                return match state.stderr_text() {
                    Some(text) => format!("panicked: {text}"),
                    None => "panicked (trap: unreachable code)".into(),
                };
            }
            Trap::StackOverflow => return "overflowed its stack".into(),
            // A Rust guest keeps its stack in linear memory: running past its end is an
            // access below address 0.
            Trap::MemoryOutOfBounds => {
                return "accessed memory out of bounds (its stack overflowed, or a bug)".into();
            }
            // Any other trap: its name, not the wasm backtrace.
            other => return format!("trapped: {other}"),
        }
    }
    if chain.contains("forcing trap when growing memory") {
        return format!(
            "exceeded its memory limit of {} MiB",
            limits.memory_bytes >> 20
        );
    }
    if chain.contains("fuel allocated for hostcalls") {
        return format!(
            "passed more than {} bytes to the host in one call",
            limits.hostcall_bytes
        );
    }
    let mut text: String = chain.chars().take(500).collect();
    if let Some(stderr) = state.stderr_text() {
        text.push_str(&format!(" (stderr: {stderr})"));
    }
    format!("failed: {text}")
}

fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("reading the plugin folder {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("wasm"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What `aispend plugins inspect FILE` prints.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// SDK version and imports.
    pub inspection: component::Inspection,
    /// Why it would not load, if it would not.
    pub problem: Option<String>,
    /// Its metadata, when it loaded.
    pub metadata: Option<PluginMetadata>,
}

/// Checks one component file the way discovery would, and reads its metadata.
pub async fn inspect_file(bytes: Vec<u8>) -> Result<Inspected, String> {
    let inspection = component::inspect(&bytes)?;
    let host = PluginHost {
        runtime: Runtime::get()?,
        slots: vec![Slot::new(
            Source::Directory,
            "inspected file".into(),
            String::new(),
            Arc::from(bytes),
        )],
        operator: OperatorAllowList::default(),
        limits: Limits::default(),
    };
    let (metadata, problem) = match host.load(&host.slots[0]).await {
        Ok(p) => (Some(p.metadata.clone()), None),
        Err((_, e)) => (None, Some(e)),
    };
    Ok(Inspected {
        inspection,
        problem,
        metadata,
    })
}

impl Slot {
    fn new(source: Source, origin: String, name: String, bytes: Arc<[u8]>) -> Slot {
        Slot {
            source,
            origin,
            name,
            bytes,
            loaded: tokio::sync::OnceCell::new(),
        }
    }
}

impl CredentialGateway for PluginHost {
    async fn declared(&self, provider: &str) -> crate::domain::Result<bool> {
        match self.plugin(provider).await {
            Ok(_) => Ok(true),
            Err(PluginError {
                kind: PluginErrorKind::NotFound,
                ..
            }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn check_base_url(&self, provider: &str, base_url: &str) -> Result<(), String> {
        PluginHost::check_base_url(self, provider, base_url)
            .await
            .map_err(|e| e.detail())
    }

    async fn validate(&self, provider: &str, material: &CredentialMaterial) -> CredentialCheck {
        let started = Instant::now();
        let result = self.validate_credential(provider, material).await;
        tracing::info!(
            provider,
            elapsed_ms = started.elapsed().as_millis() as u64,
            ok = result.is_ok(),
            "validated a credential"
        );
        match result {
            Ok(()) => CredentialCheck::Valid,
            Err(e) => match &e.kind {
                PluginErrorKind::Unauthorized(_) | PluginErrorKind::Forbidden(_) => {
                    CredentialCheck::Invalid(e.detail())
                }
                PluginErrorKind::NotSupported(_) => CredentialCheck::Unverified(e.detail()),
                PluginErrorKind::RateLimited { .. }
                | PluginErrorKind::Unavailable(_)
                | PluginErrorKind::TimedOut(_)
                | PluginErrorKind::BadResponse(_)
                | PluginErrorKind::Other(_) => CredentialCheck::Unverified(e.detail()),
                PluginErrorKind::Crashed(_)
                | PluginErrorKind::LimitExceeded(_)
                | PluginErrorKind::Unloadable(_)
                | PluginErrorKind::NotFound => CredentialCheck::Failed(e.into()),
            },
        }
    }
}
