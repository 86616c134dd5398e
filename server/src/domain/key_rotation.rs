//! Master key rotation (`aispend keys rotate`): every provider credential, every
//! budget webhook secret and every notification channel secret sealed under an older key is opened and sealed again under
//! the current one, in batches.
//!
//! Safe to interrupt and run again: each batch is one transaction, and each secret
//! records the id of the key that sealed it, so a second run picks up exactly the
//! secrets still under an old key. A row is rewritten only if it still holds the
//! ciphertext that was read (compare-and-set), so a secret an operator changes while
//! the rotation runs is never overwritten with the old value.

use crate::domain::budget::secret as webhook_secret;
use crate::domain::channel;
use crate::domain::ids::{BudgetId, ChannelId};
use crate::domain::keyring::{Keyring, Sealed};
use crate::entity::{budget, credential, notification_channel};
use anyhow::Context as _;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use std::collections::BTreeMap;

/// How many secrets sit under each key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Credentials per key id.
    pub credentials: BTreeMap<String, u64>,
    /// Webhook secrets per key id.
    pub webhook_secrets: BTreeMap<String, u64>,
    /// Notification channel secrets (WEBHOOK keys, SLACK URLs) per key id.
    pub channel_secrets: BTreeMap<String, u64>,
}

impl KeyUsage {
    /// Secrets under any key other than `current`.
    pub fn outside(&self, current: &str) -> u64 {
        self.credentials
            .iter()
            .chain(&self.webhook_secrets)
            .chain(&self.channel_secrets)
            .filter(|(id, _)| id.as_str() != current)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Counts secrets per key id.
pub async fn usage(db: &impl ConnectionTrait) -> anyhow::Result<KeyUsage> {
    let mut out = KeyUsage::default();
    let ids: Vec<String> = credential::Entity::find()
        .select_only()
        .column(credential::Column::SecretKeyId)
        .into_tuple()
        .all(db)
        .await
        .context("reading credentials")?;
    for id in ids {
        *out.credentials.entry(id).or_default() += 1;
    }
    let secrets: Vec<Option<String>> = budget::Entity::find()
        .select_only()
        .column(budget::Column::WebhookSecret)
        .filter(budget::Column::WebhookSecret.is_not_null())
        .into_tuple()
        .all(db)
        .await
        .context("reading budgets")?;
    for s in secrets.into_iter().flatten() {
        *out.webhook_secrets
            .entry(webhook_secret::key_id(&s).unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }
    let secrets: Vec<Option<String>> = notification_channel::Entity::find()
        .select_only()
        .column(notification_channel::Column::Secret)
        .filter(notification_channel::Column::Secret.is_not_null())
        .into_tuple()
        .all(db)
        .await
        .context("reading notification channels")?;
    for s in secrets.into_iter().flatten() {
        *out.channel_secrets
            .entry(webhook_secret::key_id(&s).unwrap_or("unknown").to_owned())
            .or_default() += 1;
    }
    Ok(out)
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Credentials re-sealed so far.
    pub credentials: u64,
    /// Webhook secrets re-sealed so far.
    pub webhook_secrets: u64,
    /// Notification channel secrets re-sealed so far.
    pub channel_secrets: u64,
    /// Rows skipped because they changed while being rotated (picked up next run).
    pub changed_meanwhile: u64,
}

/// Re-seals every secret not under the keyring's current key, `batch` at a time,
/// reporting progress after each committed batch and waiting `pause` before the next. Fails (with what was done so far
/// committed) on a secret whose key is not loaded.
pub async fn rotate(
    db: &DatabaseConnection,
    keyring: &Keyring,
    batch: u64,
    pause: std::time::Duration,
    mut progress: impl FnMut(Progress),
) -> anyhow::Result<Progress> {
    let batch = batch.max(1);
    let current = keyring.current_id().to_owned();
    let mut done = Progress::default();
    // Rows that changed while read are skipped in this run; remember them so the
    // loop ends.
    let mut skipped: Vec<uuid::Uuid> = vec![];
    loop {
        let rows = credential::Entity::find()
            .filter(credential::Column::SecretKeyId.ne(current.as_str()))
            .filter(credential::Column::Id.is_not_in(skipped.clone()))
            .order_by_asc(credential::Column::Id)
            .limit(batch)
            .all(db)
            .await
            .context("reading credentials to rotate")?;
        if rows.is_empty() {
            break;
        }
        let txn = db.begin().await.context("starting a rotation batch")?;
        for row in rows {
            let sealed = Sealed {
                bytes: row.secret_ciphertext.clone(),
                key_id: row.secret_key_id.clone(),
            };
            let secret = keyring
                .open(&sealed, row.id.as_bytes())
                .with_context(|| format!("credential {}", row.id))?;
            let resealed = keyring
                .seal(&secret, row.id.as_bytes())
                .with_context(|| format!("credential {}", row.id))?;
            let updated = credential::Entity::update_many()
                .col_expr(
                    credential::Column::SecretCiphertext,
                    Expr::value(resealed.bytes),
                )
                .col_expr(
                    credential::Column::SecretKeyId,
                    Expr::value(resealed.key_id),
                )
                .filter(credential::Column::Id.eq(row.id))
                .filter(credential::Column::SecretKeyId.eq(row.secret_key_id.as_str()))
                .filter(credential::Column::SecretCiphertext.eq(row.secret_ciphertext))
                .exec(&txn)
                .await
                .context("re-sealing a credential")?;
            if updated.rows_affected == 1 {
                done.credentials += 1;
            } else {
                done.changed_meanwhile += 1;
                skipped.push(row.id);
            }
        }
        txn.commit().await.context("committing a rotation batch")?;
        progress(done);
        tokio::time::sleep(pause).await;
    }
    let prefix = webhook_secret::prefix_for(&current);
    let mut skipped: Vec<uuid::Uuid> = vec![];
    loop {
        let rows = budget::Entity::find()
            .filter(budget::Column::WebhookSecret.is_not_null())
            .filter(budget::Column::WebhookSecret.not_like(format!("{prefix}%")))
            .filter(budget::Column::Id.is_not_in(skipped.clone()))
            .order_by_asc(budget::Column::Id)
            .limit(batch)
            .all(db)
            .await
            .context("reading webhook secrets to rotate")?;
        if rows.is_empty() {
            break;
        }
        let txn = db.begin().await.context("starting a rotation batch")?;
        for row in rows {
            let Some(stored) = row.webhook_secret.clone() else {
                continue;
            };
            let id = BudgetId(row.id);
            let secret = webhook_secret::open(keyring, id, &stored)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("the webhook secret of budget {}", row.id))?;
            let resealed = webhook_secret::seal(keyring, id, &secret)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("the webhook secret of budget {}", row.id))?;
            let updated = budget::Entity::update_many()
                .col_expr(budget::Column::WebhookSecret, Expr::value(resealed))
                .filter(budget::Column::Id.eq(row.id))
                .filter(budget::Column::WebhookSecret.eq(stored))
                .exec(&txn)
                .await
                .context("re-sealing a webhook secret")?;
            if updated.rows_affected == 1 {
                done.webhook_secrets += 1;
            } else {
                done.changed_meanwhile += 1;
                skipped.push(row.id);
            }
        }
        txn.commit().await.context("committing a rotation batch")?;
        progress(done);
        tokio::time::sleep(pause).await;
    }
    let mut skipped: Vec<uuid::Uuid> = vec![];
    loop {
        let rows = notification_channel::Entity::find()
            .filter(notification_channel::Column::Secret.is_not_null())
            .filter(notification_channel::Column::Secret.not_like(format!("{prefix}%")))
            .filter(notification_channel::Column::Id.is_not_in(skipped.clone()))
            .order_by_asc(notification_channel::Column::Id)
            .limit(batch)
            .all(db)
            .await
            .context("reading channel secrets to rotate")?;
        if rows.is_empty() {
            break;
        }
        let txn = db.begin().await.context("starting a rotation batch")?;
        for row in rows {
            let Some(stored) = row.secret.clone() else {
                continue;
            };
            let id = ChannelId(row.id);
            let secret = channel::open(keyring, id, &stored)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("the secret of notification channel {}", row.id))?;
            let resealed = channel::seal(keyring, id, &secret)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("the secret of notification channel {}", row.id))?;
            let updated = notification_channel::Entity::update_many()
                .col_expr(notification_channel::Column::Secret, Expr::value(resealed))
                .filter(notification_channel::Column::Id.eq(row.id))
                .filter(notification_channel::Column::Secret.eq(stored))
                .exec(&txn)
                .await
                .context("re-sealing a channel secret")?;
            if updated.rows_affected == 1 {
                done.channel_secrets += 1;
            } else {
                done.changed_meanwhile += 1;
                skipped.push(row.id);
            }
        }
        txn.commit().await.context("committing a rotation batch")?;
        progress(done);
        tokio::time::sleep(pause).await;
    }
    Ok(done)
}
