//! What the server crate's own integration tests share: a fresh PostgreSQL database
//! for the PostgreSQL variants (`AISPEND_TEST_POSTGRES_URL`, as in `aispend-e2e`).

#![allow(dead_code)]

use sea_orm::ConnectionTrait;

/// The environment variable naming the PostgreSQL server for the second pass.
pub const POSTGRES_ENV: &str = "AISPEND_TEST_POSTGRES_URL";

/// A database created for one test on the server of `AISPEND_TEST_POSTGRES_URL`,
/// dropped when this is dropped (also after a panic).
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The new database's URL.
    pub url: String,
}

impl PgDatabase {
    /// Creates a database with a random name.
    pub async fn create() -> PgDatabase {
        let admin_url = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!("{POSTGRES_ENV} is not set: PostgreSQL variants need a server")
        });
        let name = format!("aispend_test_{}", uuid::Uuid::now_v7().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .expect("connecting to AISPEND_TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a test database");
        let _ = admin.close().await;
        let mut url = reqwest::Url::parse(&admin_url).expect("AISPEND_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin_url,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime: do the async work on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = sea_orm::Database::connect(&url).await.ok()?;
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                let _ = admin.close().await;
                Some(())
            })
        })
        .join();
    }
}
