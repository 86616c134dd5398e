//! Notification channels over GraphQL: named alert destinations (WEBHOOK, SLACK,
//! EMAIL) that budgets name in `channelIds`.

use super::context::ContextExt;
use super::error::GqlResult;
use super::scalars::Timestamp;
use crate::domain::Error;
use crate::domain::budget::Change;
use crate::domain::channel::{self, Channel, ChannelKind, RawChannel};
use crate::domain::ids::ChannelId;
use crate::jobs::notify::Notice;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

/// How a channel delivers.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "NotificationChannelKind", remote = "ChannelKind")]
pub enum ChannelKindGql {
    /// A JSON POST signed like budget webhooks (`url`, `secret`).
    Webhook,
    /// A Slack incoming webhook (`url`; it holds Slack's secret, so it is never shown
    /// whole).
    Slack,
    /// E-mail through the operator's SMTP server (`emails`).
    Email,
}

/// A new notification channel. Give only the fields its kind uses: WEBHOOK `url` and
/// `secret`, SLACK `url`, EMAIL `emails`.
#[derive(InputObject)]
pub struct CreateNotificationChannelInput {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ChannelKindGql,
    /// WEBHOOK, SLACK: where to post (https; http only for hosts the operator allows).
    pub url: Option<String>,
    /// EMAIL: recipients (1 to 50 addresses).
    pub emails: Option<Vec<String>>,
    /// WEBHOOK: the HMAC key of `X-Aispend-Signature` (16 to 256 characters); never
    /// returned.
    pub secret: Option<String>,
}

/// A change to a channel: absent fields keep their value (the kind never changes).
#[derive(InputObject, Default)]
pub struct UpdateNotificationChannelInput {
    /// Name.
    pub name: Option<String>,
    /// WEBHOOK, SLACK: the destination.
    pub url: MaybeUndefined<String>,
    /// EMAIL: the recipients (replaces the list).
    pub emails: MaybeUndefined<Vec<String>>,
    /// WEBHOOK: a new signing secret.
    pub secret: MaybeUndefined<String>,
}

fn change<T>(m: MaybeUndefined<T>) -> Change<T> {
    match m {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(v),
    }
}

fn opt<T>(o: Option<T>) -> Change<T> {
    o.map(Change::Set).unwrap_or_default()
}

/// A named alert destination.
pub struct ChannelGql(pub Channel);

#[Object(name = "NotificationChannel")]
impl ChannelGql {
    /// Id (what budgets name in `channelIds`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Kind.
    async fn kind(&self) -> ChannelKindGql {
        self.0.kind.into()
    }
    /// The destination. A SLACK URL is always masked (`https://hooks.slack.com/…`);
    /// a WEBHOOK URL is whole only for an admin not bound to a project.
    async fn url(&self, ctx: &Context<'_>) -> Option<String> {
        self.0.shown_url(ctx.principal())
    }
    /// EMAIL: the recipients.
    async fn emails(&self) -> &[String] {
        &self.0.emails
    }
    /// Whether a secret is stored (WEBHOOK: the signing key; SLACK: the URL). Secrets
    /// are never returned.
    async fn secret_set(&self) -> bool {
        self.0.secret_set
    }
    /// Creation time.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at.into()
    }
    /// Last change.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at.into()
    }
}

/// What a test message did.
#[derive(SimpleObject)]
pub struct NotificationTestResult {
    /// Whether the destination accepted it.
    pub delivered: bool,
    /// The HTTP status, when one came back (WEBHOOK, SLACK).
    pub status_code: Option<i64>,
    /// What went wrong (never the URL's path).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
}

fn channel_id(id: &ID) -> Result<ChannelId, Error> {
    id.parse()
        .map_err(|_| Error::invalid("id", "is not a notification channel id"))
}

/// Channel queries.
#[derive(Default)]
pub struct ChannelQuery;

#[Object]
impl ChannelQuery {
    /// Every notification channel, by name (READ).
    async fn notification_channels(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ChannelGql>> {
        let state = ctx.state()?;
        Ok(channel::list(&state.db, ctx.principal())
            .await
            .gql()?
            .into_iter()
            .map(ChannelGql)
            .collect())
    }

    /// One notification channel (READ).
    async fn notification_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ChannelGql> {
        let state = ctx.state()?;
        let id = channel_id(&id).gql()?;
        channel::get(&state.db, ctx.principal(), id)
            .await
            .gql()
            .map(ChannelGql)
    }
}

/// Channel mutations: an admin token not bound to a project.
#[derive(Default)]
pub struct ChannelMutation;

#[Object]
impl ChannelMutation {
    /// Creates a notification channel (ADMIN, not bound to a project).
    async fn create_notification_channel(
        &self,
        ctx: &Context<'_>,
        input: CreateNotificationChannelInput,
    ) -> async_graphql::Result<ChannelGql> {
        let state = ctx.state()?;
        let raw = RawChannel {
            name: Some(input.name),
            kind: Some(input.kind.into()),
            url: opt(input.url),
            emails: opt(input.emails),
            secret: opt(input.secret),
        };
        channel::create(
            &state.db,
            ctx.principal(),
            &state.keyring,
            &state.allow,
            raw,
        )
        .await
        .map_err(|e| super::error::under_argument(e, "input"))
        .gql()
        .map(ChannelGql)
    }

    /// Changes a notification channel (ADMIN, not bound to a project).
    async fn update_notification_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateNotificationChannelInput,
    ) -> async_graphql::Result<ChannelGql> {
        let state = ctx.state()?;
        let id = channel_id(&id).gql()?;
        let raw = RawChannel {
            name: input.name,
            kind: None,
            url: change(input.url),
            emails: change(input.emails),
            secret: change(input.secret),
        };
        channel::update(
            &state.db,
            ctx.principal(),
            &state.keyring,
            &state.allow,
            id,
            raw,
        )
        .await
        .map_err(|e| super::error::under_argument(e, "input"))
        .gql()
        .map(ChannelGql)
    }

    /// Deletes a notification channel no budget names (ADMIN, not bound to a project).
    /// Returns the id.
    async fn delete_notification_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ID> {
        let state = ctx.state()?;
        let parsed = channel_id(&id).gql()?;
        channel::delete(&state.db, ctx.principal(), parsed)
            .await
            .gql()?;
        Ok(id)
    }

    /// Sends a test message to a channel now and says what happened (ADMIN, not
    /// bound to a project). Not retried, not recorded as an alert delivery.
    async fn test_notification_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<NotificationTestResult> {
        let state = ctx.state()?;
        let principal = ctx.principal();
        principal.require_global_admin().gql()?;
        let id = channel_id(&id).gql()?;
        let ch = channel::get(&state.db, principal, id).await.gql()?;
        let secret = channel::secret(&state.db, &state.keyring, id).await.gql()?;
        let clock = std::time::Instant::now();
        let outcome = state
            .notifier
            .to_channel(&ch, secret.as_deref(), &Notice::Test)
            .await;
        let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok(match outcome {
            Ok(code) => NotificationTestResult {
                delivered: true,
                status_code: code.map(i64::from),
                error: None,
                duration_ms,
            },
            Err(e) => NotificationTestResult {
                delivered: false,
                status_code: e.status.map(i64::from),
                error: Some(e.message),
                duration_ms,
            },
        })
    }
}
