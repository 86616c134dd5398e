//! `credentials`: provider credentials; the secret only as AEAD ciphertext.

use sea_orm::entity::prelude::*;

/// One row of `credentials`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider: String,
    pub label: String,
    pub project_id: Option<Uuid>,
    /// Nonce followed by the ciphertext and tag (XChaCha20-Poly1305).
    pub secret_ciphertext: Vec<u8>,
    /// Which master key encrypted it (first 8 hex digits of its SHA-256).
    pub secret_key_id: String,
    /// A masked hint (`sk-ad…f3Qa`).
    pub secret_hint: String,
    pub base_url: Option<String>,
    /// JSON object of string options.
    pub options: String,
    /// `VALID`, `INVALID` or `UNVERIFIED`.
    pub status: String,
    pub last_validated_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
