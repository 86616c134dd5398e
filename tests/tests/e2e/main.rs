//! End-to-end scenarios against the real server (see the `aispend-e2e` harness).

mod credentials;
mod plugins;
mod smoke;
