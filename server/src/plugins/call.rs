//! The state of one plugin call: a fresh store's data. It holds the granter for this
//! plugin, the call's request budget and the secret to redact, and is dropped with the
//! store when the call ends (a store is never reused, least of all after an error).

use super::granter::Granter;
use super::limits::Limits;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How much of a plugin's stderr is kept to explain a panic.
pub const STDERR_BYTES: usize = 8 << 10;

/// Longest log line passed on from a plugin.
pub const LOG_LINE_CHARS: usize = 2_000;

/// The data of one call's store.
pub struct CallState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    /// `id@version` of the plugin, for logs and errors.
    pub(crate) label: String,
    pub(crate) granter: Granter,
    pub(crate) call_limits: Limits,
    pub(crate) requests: u32,
    pub(crate) log_lines: u32,
    pub(crate) redact: Redactor,
    pub(crate) stderr: MemoryOutputPipe,
}

impl CallState {
    /// A state with no environment, no arguments, empty stdin, stdout discarded and
    /// stderr kept in memory (bounded).
    pub fn new(
        label: String,
        granter: Granter,
        call_limits: Limits,
        redact: Redactor,
    ) -> CallState {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(call_limits.memory_bytes)
            .instances(32)
            .tables(32)
            .memories(32)
            .table_elements(200_000)
            .trap_on_grow_failure(true)
            .build();
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            label,
            granter,
            call_limits,
            requests: 0,
            log_lines: 0,
            redact,
            stderr,
        }
    }

    /// What the plugin wrote to stderr (a panic message), redacted, at most a few
    /// hundred characters.
    pub fn stderr_text(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let text: String = text.chars().take(500).collect();
        Some(self.redact.apply(&text))
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_io::IoView for CallState {
    fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

/// Replaces secrets in text that leaves a call (errors, log lines, stderr), so a
/// plugin that echoes its credential cannot leak it into logs or API errors.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Redacts `secret` (ignored when shorter than 4 characters: too short to be a key,
    /// too common to replace).
    pub fn new(secret: Option<&str>) -> Redactor {
        Redactor {
            secrets: secret
                .filter(|s| s.len() >= 4)
                .map(|s| vec![s.to_owned()])
                .unwrap_or_default(),
        }
    }

    /// The text with every secret replaced by `[redacted]`.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secrets() {
        let r = Redactor::new(Some("sk-admin-123456"));
        assert_eq!(r.apply("bad key sk-admin-123456!"), "bad key [redacted]!");
        assert_eq!(Redactor::new(Some("abc")).apply("abc"), "abc");
        assert_eq!(Redactor::new(None).apply("x"), "x");
    }
}
