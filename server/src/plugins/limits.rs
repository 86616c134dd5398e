//! What one plugin call, and one sync, may use. Every limit ends the call with a clear
//! `PLUGIN_ERROR` naming the plugin; none takes the server down.

use std::time::Duration;

/// Limits of one plugin call and of one paging run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// CPU time inside the plugin (epoch interruption; host calls do not count).
    pub cpu: Duration,
    /// Wall-clock time of the whole call, host calls included.
    pub wall: Duration,
    /// Linear memory the plugin may grow to, in bytes (growing past it traps).
    pub memory_bytes: usize,
    /// Bytes the plugin may pass to the host in one host call (a request, a log line).
    pub hostcall_bytes: usize,
    /// HTTP requests per call.
    pub http_requests: u32,
    /// Bytes of one HTTP response body.
    pub response_bytes: u64,
    /// Time one HTTP request may take, connect to last byte.
    pub request_timeout: Duration,
    /// Log lines per call (more are dropped, once noted).
    pub log_lines: u32,
    /// Rows in one page.
    pub rows_per_page: usize,
    /// Pages per paging run.
    pub pages_per_sync: u32,
    /// Rows per paging run.
    pub rows_per_sync: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu: Duration::from_secs(5),
            wall: Duration::from_secs(120),
            memory_bytes: 64 << 20,
            hostcall_bytes: 4 << 20,
            http_requests: 20,
            response_bytes: 16 << 20,
            request_timeout: Duration::from_secs(30),
            log_lines: 200,
            rows_per_page: 10_000,
            pages_per_sync: 200,
            rows_per_sync: 200_000,
        }
    }
}
