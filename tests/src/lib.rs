//! The end-to-end harness: starts the real aispend server on port 0 with a fresh
//! database (a SQLite file in a temporary directory, or a new PostgreSQL database
//! created for the test and dropped after it) and talks to it over HTTP.
//!
//! Every scenario runs on SQLite, and on PostgreSQL as well when
//! `AISPEND_TEST_POSTGRES_URL` points at a server the tests may create databases on
//! (see [`db_tests!`]).

use aispend::config::{AlertSettings, Settings, SyncConfig};
use aispend::startup::Application;
use aispend::state::AppState;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use serde_json;

pub mod fake_provider;
pub mod smtp;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the server named by `AISPEND_TEST_POSTGRES_URL`.
    Postgres,
}

/// The environment variable naming the PostgreSQL server for the second pass.
pub const POSTGRES_ENV: &str = "AISPEND_TEST_POSTGRES_URL";

/// A fresh PostgreSQL database, dropped when this is dropped (also after a panic).
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates a database with a random name on the server of `admin_url`; returns it
    /// with its URL.
    pub async fn create(admin_url: &str) -> (PgDatabase, String) {
        let name = format!("aispend_test_{:016x}", rand::rng().random::<u64>());
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .expect("connecting to AISPEND_TEST_POSTGRES_URL");
        sea_orm::ConnectionTrait::execute_unprepared(&admin, &format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a test database");
        let _ = admin.close().await;
        let mut url = reqwest::Url::parse(admin_url).expect("AISPEND_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        (
            PgDatabase {
                admin_url: admin_url.to_owned(),
                name,
            },
            url.to_string(),
        )
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = sea_orm::Database::connect(&url).await.ok()?;
                let _ = sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
                let _ = admin.close().await;
                Some(())
            })
        })
        .join();
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// Where it listens.
    pub address: SocketAddr,
    /// `http://address`.
    pub base_url: String,
    /// The operator token it was started with.
    pub admin_token: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The server's state (database handle, services), for assertions about storage.
    pub state: AppState,
    /// The backend.
    pub backend: Backend,
    /// The settings it was started with (to start a second process on the same data).
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: TempDir,
    _pg: Option<PgDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The instant a test server's clock starts at unless `AISPEND_TEST_CLOCK` names
/// another: noon UTC on a Wednesday in the middle of a month, so a test that records
/// spend "now" and reads "today", "this week" or "this month" back never straddles a
/// period boundary, in UTC or any zone from UTC-11 to UTC+11, whatever the date the
/// suite runs on. The clock advances in real time from there.
pub const PINNED_NOW: &str = "2026-12-09T12:00:00Z";

/// Where test servers' clocks start: `AISPEND_TEST_CLOCK` (RFC 3339) when set (to run
/// the suite at an awkward instant on purpose), else [`PINNED_NOW`].
pub fn test_clock_start() -> chrono::DateTime<chrono::Utc> {
    let text = std::env::var("AISPEND_TEST_CLOCK").unwrap_or_else(|_| PINNED_NOW.to_owned());
    text.parse()
        .unwrap_or_else(|e| panic!("AISPEND_TEST_CLOCK `{text}` is not an RFC 3339 instant: {e}"))
}

/// The server's clock (the test clock once a server of this process started): what
/// a test computes "now", "today" or "this month" from.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    aispend::domain::time::now()
}

/// Settings for a server on port 0 with its own data directory.
pub fn test_settings(
    data_dir: &std::path::Path,
    database_url: Option<String>,
    admin_token: &str,
) -> Settings {
    Settings {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        data_dir: data_dir.to_path_buf(),
        database_url,
        master_key: None,
        admin_token: Some(admin_token.to_owned()),
        plugin_dir: None,
        plugin_allow_hosts: vec![],
        // Short delays so retries and polls are observable within a test.
        alerts: AlertSettings {
            webhook_retries: 4,
            webhook_backoff_ms: 300,
            webhook_backoff_max_ms: 5_000,
            webhook_timeout_ms: 5_000,
            jobs_poll_ms: 50,
            subscriber_queue: 256,
            anomaly_check_ms: 250,
        },
        channels: Default::default(),
        // Short delays and leases; no scheduler unless a scenario turns it on (other
        // scenarios add credentials that must not be synced behind their back).
        sync: SyncConfig {
            retries: 3,
            backoff_ms: 100,
            backoff_max_ms: 1_000,
            max_retry_after_secs: 30,
            lease_ms: 1_500,
            sweep_ms: 100,
            scheduler_ms: 200,
            scheduler: false,
            workers: 2,
        },
        limits: Default::default(),
        test_clock: Some(test_clock_start()),
        integrations: Default::default(),
        prices: Default::default(),
    }
}

/// Starts the real server on a fresh database.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the real server on a fresh database, after `configure` adjusted its settings
/// (a plugin folder, hosts plugins may reach, a master key).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    aispend::telemetry::init();
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let (pg, database_url) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let admin_url = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                panic!("{POSTGRES_ENV} is not set: PostgreSQL variants need a server (scripts/test skips them without it)")
            });
            let (db, url) = PgDatabase::create(&admin_url).await;
            (Some(db), Some(url))
        }
    };
    let admin_token = format!("test-admin-{:016x}", rand::rng().random::<u64>());
    let mut settings = test_settings(data_dir.path(), database_url, &admin_token);
    configure(&mut settings);
    let app = Application::build(&settings)
        .await
        .expect("the server starts");
    let address = app.local_addr().expect("a bound address");
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        base_url: format!("http://{address}"),
        admin_token,
        client: reqwest::Client::new(),
        state,
        backend,
        settings,
        shutdown: Some(tx),
        _data_dir: data_dir,
        _pg: pg,
    }
}

/// Waits until `condition` holds (checked every 20 ms); panics naming `what` if it
/// does not within `within`. The way to wait for something asynchronous: never a
/// bare sleep.
pub async fn wait_until<F, Fut>(what: &str, within: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A loopback address that refuses connections, reserved for as long as the returned
/// socket lives: bound but never listening, so no other process can take the port
/// (unlike a port bound, noted and released, or a fixed port like 9).
pub fn refusing_address() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().expect("a socket address"))
        .expect("binding a loopback port");
    let address = socket.local_addr().expect("a bound address");
    (socket, address)
}

/// A temporary plugin folder holding these components from the plugin build (test
/// fixtures and the example plugin are built there but never bundled).
pub fn plugin_dir(files: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for file in files {
        let from = std::path::Path::new(aispend::plugins::bundled::BUILD_DIR).join(file);
        std::fs::copy(&from, dir.path().join(file))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
    dir
}

/// The misbehaving fixture plugin's file name.
pub const MISBEHAVE: &str = "aispend_fixture_misbehave.wasm";
/// The fixture that imports a filesystem (refused at load).
pub const READS_FILES: &str = "aispend_fixture_reads_files.wasm";
/// The example plugin of plugin-sdk/README.md.
pub const EXAMPLE: &str = "aispend_plugin_example.wasm";

/// A GraphQL response.
#[derive(Debug, Clone)]
pub struct Gql {
    /// HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
}

impl Gql {
    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected GraphQL errors: {:#}",
            self.body
        );
        &self.body["data"]
    }

    /// The errors (empty when none).
    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// `extensions.code` of the first error, asserting there is one.
    pub fn code(&self) -> String {
        let errors = self.errors();
        assert!(!errors.is_empty(), "expected an error, got {:#}", self.body);
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_owned()
    }

    /// `extensions.field` of the first error.
    pub fn field(&self) -> Option<String> {
        self.errors().first()?["extensions"]["field"]
            .as_str()
            .map(str::to_owned)
    }

    /// Every `extensions.errors[].field` of the first error.
    pub fn fields(&self) -> Vec<String> {
        self.errors()
            .first()
            .and_then(|e| e["extensions"]["errors"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e["field"].as_str().map(str::to_owned))
            .collect()
    }
}

impl TestApp {
    /// Stores `inputs` as the operator, through `importUsage` when `imported` (source
    /// `IMPORT`) or `recordUsageBatch` (source `API`), and checks every one was stored.
    pub async fn store_batch(&self, inputs: &[Value], imported: bool) {
        let (mutation, field, stored) = if imported {
            (
                "mutation($i: [UsageInput!]!) { importUsage(inputs: $i) { imported } }",
                "importUsage",
                "imported",
            )
        } else {
            (
                "mutation($i: [UsageInput!]!) { recordUsageBatch(inputs: $i) { accepted } }",
                "recordUsageBatch",
                "accepted",
            )
        };
        let r = self.admin(mutation, serde_json::json!({"i": inputs})).await;
        assert_eq!(r.data()[field][stored], inputs.len(), "{}", r.data());
    }

    /// Waits until the server's folder has added every stored event to the rollups
    /// (`usage_unfolded` empty), for a test that reads rollup tables directly. Answers
    /// never need this: they add the unfolded events themselves.
    pub async fn folded(&self) {
        wait_until(
            "the folder to fold every event",
            std::time::Duration::from_secs(30),
            || async { self.unfolded().await == 0 },
        )
        .await;
    }

    /// How many stored events the rollups do not count yet (`usage_unfolded`).
    pub async fn unfolded(&self) -> i64 {
        use sea_orm::ConnectionTrait;
        let db = &self.state.db;
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM usage_unfolded",
        ))
        .await
        .expect("counting unfolded events")
        .expect("a count")
        .try_get_by_index(0)
        .expect("a count")
    }

    /// Starts a second server process on the same database (a replica): its own
    /// listener and data directory, the same database URL and operator token.
    pub async fn spawn_peer(&self) -> TestApp {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().expect("a socket address");
        if settings.database_url.is_none() {
            // SQLite: share the first server's file.
            settings.database_url = Some(format!(
                "sqlite:{}",
                self.settings.data_dir.join("aispend.db").display()
            ));
        }
        settings.data_dir = data_dir.path().to_path_buf();
        let app = Application::build(&settings)
            .await
            .expect("the second server starts");
        let address = app.local_addr().expect("a bound address");
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        TestApp {
            address,
            base_url: format!("http://{address}"),
            admin_token: self.admin_token.clone(),
            client: reqwest::Client::new(),
            state,
            backend: self.backend,
            settings,
            shutdown: Some(tx),
            _data_dir: data_dir,
            _pg: None,
        }
    }

    /// Waits until this server has `n` live alert subscribers registered, so an alert
    /// raised from then on reaches each of them.
    pub async fn wait_for_alert_subscribers(&self, n: usize) {
        let live = self.state.live.clone();
        wait_until(
            &format!("{n} alert subscriber(s)"),
            std::time::Duration::from_secs(10),
            || {
                let live = live.clone();
                async move { live.alert_subscribers() >= n }
            },
        )
        .await;
    }

    /// Waits until this server's sync scheduler has completed `n` more passes than it
    /// had when called.
    pub async fn wait_for_scheduler_passes(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let passes = self.state.scheduler_passes.clone();
        let target = passes.load(Ordering::SeqCst) + n;
        wait_until(
            &format!("{n} more scheduler passes"),
            std::time::Duration::from_secs(30),
            || {
                let passes = passes.clone();
                async move { passes.load(Ordering::SeqCst) >= target }
            },
        )
        .await;
    }

    /// Opens a websocket to `/graphql/ws` (graphql-transport-ws), sends
    /// `connection_init` with `payload`, and returns without waiting for the answer.
    pub async fn ws_connect(&self, payload: Value) -> WsClient {
        WsClient::connect(self.address, payload).await
    }

    /// Opens a websocket authenticated with `token`, waits for `connection_ack`, and
    /// subscribes with id `1`.
    pub async fn subscribe(&self, token: &str, query: &str, variables: Value) -> WsClient {
        let mut ws = self
            .ws_connect(json!({"Authorization": format!("Bearer {token}")}))
            .await;
        ws.expect_ack().await;
        ws.subscribe("1", query, variables).await;
        ws
    }

    /// Sends a GraphQL request with an optional bearer token.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base_url))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let body = response.json().await.expect("a JSON body");
        Gql { status, body }
    }

    /// Sends a GraphQL request as the operator.
    pub async fn admin(&self, query: &str, variables: Value) -> Gql {
        self.graphql(Some(&self.admin_token.clone()), query, variables)
            .await
    }

    /// Creates a project and returns its id.
    pub async fn create_project(&self, name: &str) -> String {
        let r = self
            .admin(
                "mutation($n: String!) { createProject(name: $n) { id } }",
                json!({"n": name}),
            )
            .await;
        r.data()["createProject"]["id"]
            .as_str()
            .expect("a project id")
            .to_owned()
    }

    /// Creates a token and returns its text.
    pub async fn create_token(&self, project: Option<&str>, scopes: &[&str]) -> String {
        let r = self
            .admin(
                "mutation($p: ID, $s: [Scope!]!) { createApiToken(name: \"test\", projectId: $p, scopes: $s) { token } }",
                json!({"p": project, "s": scopes}),
            )
            .await;
        r.data()["createApiToken"]["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Records one event as the operator; returns the `recordUsage` payload.
    pub async fn record(&self, input: Value) -> Value {
        let r = self.admin(RECORD_USAGE, json!({"input": input})).await;
        r.data()["recordUsage"].clone()
    }

    /// The operator's CSV export of one project's events.
    pub async fn export_csv(&self, project: &str) -> String {
        self.client
            .get(format!(
                "{}/export/usage.csv?project={project}",
                self.base_url
            ))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("the export answers")
            .text()
            .await
            .expect("a body")
    }

    /// Sends only the head of an operator's POST to `path` declaring a JSON body of
    /// `length` bytes, then reads the answer until the server closes the connection:
    /// `(status, headers as received, body)`. For a body the server must refuse from
    /// its headers alone (a client writing the body could see the connection close
    /// before the answer).
    pub async fn post_head_only(&self, path: &str, length: u64) -> (u16, String, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.address)
            .await
            .expect("connecting");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
            self.address, self.admin_token
        );
        stream
            .write_all(head.as_bytes())
            .await
            .expect("sending the head");
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("the server waited for a body it must refuse from the head")
        .expect("reading the answer");
        let answer = String::from_utf8(answer).expect("a UTF-8 answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = serde_json::from_str(body).expect("a JSON body");
        (status, head.to_ascii_lowercase(), body)
    }

    /// Counts events visible to the operator.
    pub async fn event_count(&self) -> i64 {
        let r = self
            .admin("{ usageEvents(first: 0) { totalCount } }", json!({}))
            .await;
        r.data()["usageEvents"]["totalCount"]
            .as_i64()
            .expect("a count")
    }
}

/// The `recordUsage` mutation with every event field selected.
pub const RECORD_USAGE: &str = r#"mutation($input: UsageInput!) {
  recordUsage(input: $input) {
    duplicate
    event {
      id projectId provider model endpoint source occurredAt receivedAt
      inputTokens outputTokens cacheReadTokens cacheWriteTokens cacheWrite1hTokens reasoningTokens totalTokens
      requests serviceTier latencyMs costUsd costSource priceId idempotencyKey user metadata
      price { model source }
    }
  }
}"#;

/// Declares scenarios that run on SQLite, and on PostgreSQL in the second pass.
/// Each name must be an `async fn name(app: TestApp)` in the calling module.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::spawn_app($crate::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::spawn_app($crate::Backend::Postgres).await).await
                }
            )*
        }
    };
}

/// What a websocket client received.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// A graphql-transport-ws message.
    Message(Value),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame.
    Ended,
}

/// A graphql-transport-ws client over a real websocket (tokio-tungstenite).
pub struct WsClient {
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
}

impl WsClient {
    /// Connects and sends `connection_init` with `payload`.
    pub async fn connect(address: SocketAddr, payload: Value) -> WsClient {
        Self::connect_with(address, payload, None).await
    }

    /// Like [`Self::connect`], with the client socket's receive buffer limited to
    /// `recv_buffer` bytes (a client that reads slowly then fills up quickly).
    pub async fn connect_with(
        address: SocketAddr,
        payload: Value,
        recv_buffer: Option<u32>,
    ) -> WsClient {
        let mut client = Self::open(address, recv_buffer).await;
        client
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        client
    }

    /// Opens the websocket without sending `connection_init`.
    pub async fn open(address: SocketAddr, recv_buffer: Option<u32>) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{address}/graphql/ws")
            .into_client_request()
            .expect("a websocket request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("a header value"),
        );
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .expect("a receive buffer size");
        }
        let stream = socket.connect(address).await.expect("a TCP connection");
        let (ws, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("the websocket upgrade succeeds");

        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws"),
            "the server speaks graphql-transport-ws"
        );
        WsClient { ws }
    }

    /// Sends one protocol message.
    pub async fn send(&mut self, message: Value) {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("a websocket send");
    }

    /// The next message (pings are answered and skipped), or how the connection
    /// ended; `None` after `wait` without anything.
    pub async fn recv(&mut self, wait: std::time::Duration) -> Option<WsEvent> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).expect("a JSON message");
                    if v["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Some(WsEvent::Message(v));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(match frame {
                        Some(f) => WsEvent::Closed(f.code.into(), f.reason.to_string()),
                        None => WsEvent::Closed(1005, String::new()),
                    });
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(WsEvent::Ended),
            }
        }
    }

    /// Waits for `connection_ack`.
    pub async fn expect_ack(&mut self) {
        match self.recv(std::time::Duration::from_secs(10)).await {
            Some(WsEvent::Message(m)) if m["type"] == "connection_ack" => {}
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    /// Starts a subscription.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The `data` of the next `next` message of subscription `id`; panics on an error,
    /// a close or a timeout.
    pub async fn next_data(&mut self, id: &str, wait: std::time::Duration) -> Value {
        loop {
            match self.recv(wait).await {
                Some(WsEvent::Message(m)) if m["type"] == "next" && m["id"] == id => {
                    assert!(
                        m["payload"].get("errors").is_none(),
                        "subscription error: {m:#}"
                    );
                    return m["payload"]["data"].clone();
                }
                Some(WsEvent::Message(m)) if m["id"] != id => continue,
                other => panic!("expected data for subscription {id}, got {other:?}"),
            }
        }
    }

    /// Reads until the connection closes; returns the close code and reason and how
    /// many messages came before.
    pub async fn until_closed(
        &mut self,
        wait: std::time::Duration,
    ) -> (Option<(u16, String)>, usize) {
        let mut seen = 0;
        loop {
            match self.recv(wait).await {
                Some(WsEvent::Message(_)) => seen += 1,
                Some(WsEvent::Closed(code, reason)) => return (Some((code, reason)), seen),
                Some(WsEvent::Ended) | None => return (None, seen),
            }
        }
    }
}

/// Like [`db_tests!`], for scenarios that start their own server with custom settings
/// (a plugin folder, allowed hosts): each name must be an
/// `async fn name(backend: Backend)` that calls [`spawn_app_with`] with it.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod own {
            mod sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name($crate::Backend::Sqlite).await
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name($crate::Backend::Postgres).await
                    }
                )*
            }
        }
    };
}
