//! Provider credentials: an admin key or token per provider, the secret encrypted at
//! rest (AEAD; the key id is stored so master keys can rotate), never stored in clear.

use crate::sql::Ddl;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: Ddl = Ddl {
    sqlite: r#"
CREATE TABLE credentials (
    id BLOB PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    label TEXT NOT NULL,
    project_id BLOB NULL REFERENCES projects (id),
    secret_ciphertext BLOB NOT NULL,
    secret_key_id TEXT NOT NULL,
    secret_hint TEXT NOT NULL,
    base_url TEXT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    last_validated_at BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX credentials_provider_label_key ON credentials (provider, label);
"#,
    postgres: r#"
CREATE TABLE credentials (
    id UUID PRIMARY KEY,
    provider TEXT NOT NULL,
    label TEXT NOT NULL,
    project_id UUID NULL REFERENCES projects (id),
    secret_ciphertext BYTEA NOT NULL,
    secret_key_id TEXT NOT NULL,
    secret_hint TEXT NOT NULL,
    base_url TEXT NULL,
    options TEXT NOT NULL,
    status TEXT NOT NULL,
    last_validated_at BIGINT NULL,
    last_error TEXT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX credentials_provider_label_key ON credentials (provider, label);
"#,
};

const DOWN: Ddl = Ddl {
    sqlite: "DROP TABLE credentials;\n",
    postgres: "DROP TABLE credentials;\n",
};

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        UP.run(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        DOWN.run(manager).await
    }
}
