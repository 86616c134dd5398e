//! Notification channels: named alert destinations a budget's alerts go to, besides
//! (or instead of) the budget's own webhook.
//!
//! - `WEBHOOK`: the signed JSON body of a budget webhook, to `url`, signed with the
//!   channel's `secret` (required).
//! - `SLACK`: a Slack incoming-webhook message (`text` plus `blocks`) to `url`. The URL
//!   carries Slack's secret in its path, so it is stored sealed (in the secret column,
//!   the `url` column keeps only its masked form) and never shown whole.
//! - `EMAIL`: a plain-text message to `emails` through the operator's SMTP server.
//!
//! A field another kind uses is refused rather than ignored (`secret` on an EMAIL
//! channel is a mistake worth hearing about). Secrets are sealed under the master key
//! bound to the channel id, in the same format as budget webhook secrets, so
//! `aispend keys rotate` re-seals them too; the API only says whether one is set.
//! A channel a budget or an anomaly watch still names cannot be deleted.

use crate::domain::auth::{Principal, Scope};
use crate::domain::budget::Change;
use crate::domain::budget::secret as sealing;
use crate::domain::egress::OperatorAllowList;
use crate::domain::error::{Context, Error, FieldError, Result};
use crate::domain::ids::ChannelId;
use crate::domain::keyring::Keyring;
use crate::domain::price::text_enum;
use crate::domain::time;
use crate::domain::webhook::{MAX_SECRET_LEN, MIN_SECRET_LEN, WebhookUrl, mask_url};
use crate::entity::{budget, notification_channel as row};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// A signed JSON POST.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// E-mail through SMTP.
    Email,
}

text_enum!(ChannelKind { Webhook => "WEBHOOK", Slack => "SLACK", Email => "EMAIL" });

/// Longest channel name.
pub const MAX_NAME_LEN: usize = 100;
/// Most recipients of an EMAIL channel.
pub const MAX_EMAILS: usize = 50;
/// Most channels per budget.
pub const MAX_PER_BUDGET: usize = 10;

/// A stored channel (without its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ChannelKind,
    /// WEBHOOK: the destination; SLACK: its masked form; EMAIL: none.
    pub url: Option<String>,
    /// EMAIL: the recipients.
    pub emails: Vec<String>,
    /// Whether a secret is stored (WEBHOOK: the signing key; SLACK: the URL).
    pub secret_set: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Channel {
    /// The URL as `reader` may see it: a WEBHOOK URL whole for a global admin and
    /// masked for everyone else; a SLACK URL always masked.
    pub fn shown_url(&self, reader: &Principal) -> Option<String> {
        let url = self.url.as_deref()?;
        Some(match self.kind {
            ChannelKind::Webhook if reader.require_global_admin().is_ok() => url.to_owned(),
            _ => mask_url(url),
        })
    }
}

impl TryFrom<row::Model> for Channel {
    type Error = Error;
    fn try_from(m: row::Model) -> Result<Self> {
        Ok(Channel {
            id: ChannelId(m.id),
            name: m.name,
            kind: m.kind.parse().map_err(|e: String| {
                Error::internal("decoding a stored channel", anyhow::anyhow!(e))
            })?,
            url: m.url,
            emails: split_emails(&m.emails),
            secret_set: m.secret.is_some(),
            created_at: time::from_micros(m.created_at),
            updated_at: time::from_micros(m.updated_at),
        })
    }
}

fn split_emails(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A channel as a client sent it (for create, or as a patch for update; the kind of
/// a channel never changes).
#[derive(Debug, Clone, Default)]
pub struct RawChannel {
    /// Name.
    pub name: Option<String>,
    /// Kind (create only).
    pub kind: Option<ChannelKind>,
    /// WEBHOOK and SLACK: the destination.
    pub url: Change<String>,
    /// EMAIL: the recipients.
    pub emails: Change<Vec<String>>,
    /// WEBHOOK: the signing secret.
    pub secret: Change<String>,
}

/// A validated channel, ready to store.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    name: String,
    kind: ChannelKind,
    /// Plain column value (WEBHOOK url, SLACK masked url).
    url: Option<String>,
    emails: Vec<String>,
    /// What to seal: the WEBHOOK secret or the SLACK url; `Keep` leaves it.
    secret: Change<String>,
}

/// Checks one e-mail address; the error is a sentence for the user.
pub fn parse_email(raw: &str) -> std::result::Result<String, String> {
    let e = raw.trim();
    if e.is_empty() {
        return Err("is empty".into());
    }
    if e.len() > 254 || e.contains(',') || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{e}` is not an e-mail address"));
    }
    e.parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|_| format!("`{e}` is not an e-mail address"))
}

fn unused(kind: ChannelKind, field: &str, errors: &mut Vec<FieldError>) {
    errors.push(FieldError::new(
        field,
        format!("is not used by {} channels; leave it out", kind.as_str()),
    ));
}

impl RawChannel {
    /// Validates a new channel; every problem is reported at once.
    pub fn parse_new(self, allow: &OperatorAllowList) -> Result<ChannelSpec> {
        self.merge(None, allow)
    }

    /// Validates a change to `current`: absent fields keep their value.
    pub fn parse_update(self, current: &Channel, allow: &OperatorAllowList) -> Result<ChannelSpec> {
        self.merge(Some(current), allow)
    }

    fn merge(self, current: Option<&Channel>, allow: &OperatorAllowList) -> Result<ChannelSpec> {
        let mut errors = vec![];
        let name = crate::domain::text::merged_name(
            self.name,
            current.map(|c| c.name.as_str()),
            MAX_NAME_LEN,
            &mut errors,
        );
        let kind = match (self.kind, current) {
            (Some(k), None) => k,
            (Some(k), Some(c)) if k == c.kind => k,
            (Some(_), Some(c)) => {
                errors.push(FieldError::new(
                    "kind",
                    "cannot change; create another channel instead",
                ));
                c.kind
            }
            (None, Some(c)) => c.kind,
            (None, None) => return Err(Error::invalid("kind", "is required")),
        };
        let (mut url, mut emails, mut secret) = (None, vec![], Change::Keep);
        match kind {
            ChannelKind::Webhook | ChannelKind::Slack => {
                let checked = match self.url {
                    Change::Set(u) => match WebhookUrl::parse(&u, allow) {
                        Ok(u) => Some(u.as_str().to_owned()),
                        Err(message) => {
                            errors.push(FieldError::new("url", message));
                            None
                        }
                    },
                    Change::Clear => {
                        errors.push(FieldError::new(
                            "url",
                            format!("is required for {} channels", kind.as_str()),
                        ));
                        None
                    }
                    Change::Keep if current.is_some() => None,
                    Change::Keep => {
                        errors.push(FieldError::new(
                            "url",
                            format!("is required for {} channels", kind.as_str()),
                        ));
                        None
                    }
                };
                if !matches!(self.emails, Change::Keep) {
                    unused(kind, "emails", &mut errors);
                }
                if kind == ChannelKind::Webhook {
                    url = checked.or_else(|| current.and_then(|c| c.url.clone()));
                    secret = match self.secret {
                        Change::Set(s) => {
                            let len = s.chars().count();
                            if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) {
                                errors.push(FieldError::new(
                                    "secret",
                                    format!(
                                        "must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"
                                    ),
                                ));
                            }
                            Change::Set(s)
                        }
                        Change::Clear => {
                            errors.push(FieldError::new(
                                "secret",
                                "is required for WEBHOOK channels: every delivery is signed with it",
                            ));
                            Change::Keep
                        }
                        Change::Keep if current.is_some_and(|c| c.secret_set) => Change::Keep,
                        Change::Keep => {
                            errors.push(FieldError::new(
                                "secret",
                                "is required for WEBHOOK channels: every delivery is signed with it",
                            ));
                            Change::Keep
                        }
                    };
                } else {
                    // SLACK: the URL is the secret; only its masked form stays in clear.
                    if !matches!(self.secret, Change::Keep) {
                        errors.push(FieldError::new(
                            "secret",
                            "is not used by SLACK channels (the URL is Slack's secret); leave it out",
                        ));
                    }
                    match checked {
                        Some(u) => {
                            url = Some(mask_url(&u));
                            secret = Change::Set(u);
                        }
                        None => url = current.and_then(|c| c.url.clone()),
                    }
                }
            }
            ChannelKind::Email => {
                if !matches!(self.url, Change::Keep) {
                    unused(kind, "url", &mut errors);
                }
                if !matches!(self.secret, Change::Keep) {
                    unused(kind, "secret", &mut errors);
                }
                emails = match self.emails {
                    Change::Set(list) => {
                        if list.is_empty() || list.len() > MAX_EMAILS {
                            errors.push(FieldError::new(
                                "emails",
                                format!("give 1 to {MAX_EMAILS} addresses"),
                            ));
                        }
                        let mut out = vec![];
                        for (i, e) in list.iter().enumerate() {
                            match parse_email(e) {
                                Ok(a) => out.push(a),
                                Err(m) => errors.push(FieldError::new(format!("emails.{i}"), m)),
                            }
                        }
                        out.sort();
                        out.dedup();
                        out
                    }
                    Change::Keep if current.is_some() => {
                        current.map(|c| c.emails.clone()).unwrap_or_default()
                    }
                    Change::Keep | Change::Clear => {
                        errors.push(FieldError::new("emails", "is required for EMAIL channels"));
                        vec![]
                    }
                };
            }
        }
        if !errors.is_empty() {
            return Err(Error::InvalidInput(errors));
        }
        Ok(ChannelSpec {
            name,
            kind,
            url,
            emails,
            secret,
        })
    }
}

fn context(id: ChannelId) -> Vec<u8> {
    let mut c = b"aispend notification channel secret ".to_vec();
    c.extend_from_slice(id.0.as_bytes());
    c
}

/// The stored form of a channel's secret.
pub fn seal(keyring: &Keyring, id: ChannelId, secret: &str) -> Result<String> {
    sealing::seal_with(keyring, &context(id), secret)
}

/// A channel's secret from its stored form.
pub fn open(keyring: &Keyring, id: ChannelId, stored: &str) -> Result<String> {
    sealing::open_with(keyring, &context(id), stored)
}

fn spec_row(
    keyring: &Keyring,
    id: ChannelId,
    spec: &ChannelSpec,
    created_at: DateTime<Utc>,
) -> Result<row::ActiveModel> {
    let mut r = row::ActiveModel {
        id: Set(id.0),
        name: Set(spec.name.clone()),
        kind: Set(spec.kind.as_str().to_owned()),
        url: Set(spec.url.clone()),
        emails: Set(spec.emails.join(",")),
        created_at: Set(time::to_micros(created_at)),
        updated_at: Set(time::to_micros(time::now())),
        ..Default::default()
    };
    match &spec.secret {
        Change::Set(plain) => r.secret = Set(Some(seal(keyring, id, plain)?)),
        Change::Clear => r.secret = Set(None),
        Change::Keep => {}
    }
    Ok(r)
}

/// Looks a channel up without an authorisation check.
pub async fn find(conn: &impl ConnectionTrait, id: ChannelId) -> Result<Option<Channel>> {
    row::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a notification channel")?
        .map(Channel::try_from)
        .transpose()
}

/// A channel's opened secret (WEBHOOK: the signing key; SLACK: the URL); for delivery.
pub async fn secret(
    conn: &impl ConnectionTrait,
    keyring: &Keyring,
    id: ChannelId,
) -> Result<Option<String>> {
    row::Entity::find_by_id(id.0)
        .one(conn)
        .await
        .context("reading a notification channel's secret")?
        .and_then(|r| r.secret)
        .map(|s| open(keyring, id, &s))
        .transpose()
}

/// Every channel, by name (READ).
pub async fn list(conn: &impl ConnectionTrait, principal: &Principal) -> Result<Vec<Channel>> {
    principal.require(Scope::Read)?;
    row::Entity::find()
        .order_by_asc(row::Column::Name)
        .order_by_asc(row::Column::Id)
        .all(conn)
        .await
        .context("listing notification channels")?
        .into_iter()
        .map(Channel::try_from)
        .collect()
}

/// One channel (READ).
pub async fn get(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ChannelId,
) -> Result<Channel> {
    principal.require(Scope::Read)?;
    find(conn, id).await?.ok_or(Error::NotFound {
        what: "notification channel",
    })
}

/// Creates a channel (an admin not bound to a project).
pub async fn create(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    keyring: &Keyring,
    allow: &OperatorAllowList,
    raw: RawChannel,
) -> Result<Channel> {
    principal.require_global_admin()?;
    let spec = raw.parse_new(allow)?;
    let id = ChannelId::generate();
    row::Entity::insert(spec_row(keyring, id, &spec, time::now())?)
        .exec_without_returning(conn)
        .await
        .context("inserting a notification channel")?;
    loaded(conn, id).await
}

/// Changes a channel (an admin not bound to a project); absent fields keep their value.
pub async fn update(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    keyring: &Keyring,
    allow: &OperatorAllowList,
    id: ChannelId,
    raw: RawChannel,
) -> Result<Channel> {
    principal.require_global_admin()?;
    let current = find(conn, id).await?.ok_or(Error::NotFound {
        what: "notification channel",
    })?;
    let spec = raw.parse_update(&current, allow)?;
    row::Entity::update(spec_row(keyring, id, &spec, current.created_at)?)
        .exec(conn)
        .await
        .context("updating a notification channel")?;
    loaded(conn, id).await
}

/// Deletes a channel no budget names (an admin not bound to a project). Deliveries
/// still queued for it are skipped.
pub async fn delete(
    conn: &impl ConnectionTrait,
    principal: &Principal,
    id: ChannelId,
) -> Result<()> {
    principal.require_global_admin()?;
    if find(conn, id).await?.is_none() {
        return Err(Error::NotFound {
            what: "notification channel",
        });
    }
    let users = budget::Entity::find()
        .filter(budget::Column::ChannelIds.contains(id.to_string()))
        .order_by_asc(budget::Column::Name)
        .all(conn)
        .await
        .context("finding the budgets of a notification channel")?;
    if let Some(b) = users.first() {
        return Err(Error::invalid(
            "id",
            format!(
                "is used by budget `{}` ({} in all); remove it from their channelIds first",
                b.name,
                users.len()
            ),
        ));
    }
    if let Some((watch, n)) = crate::domain::anomaly_watch::using_channel(conn, id).await? {
        return Err(Error::invalid(
            "id",
            format!(
                "is used by anomaly watch `{watch}` ({n} in all); remove it from their channelIds first"
            ),
        ));
    }
    row::Entity::delete_by_id(id.0)
        .exec(conn)
        .await
        .context("deleting a notification channel")?;
    Ok(())
}

async fn loaded(conn: &impl ConnectionTrait, id: ChannelId) -> Result<Channel> {
    find(conn, id).await?.ok_or_else(|| {
        Error::internal(
            "reading a notification channel just written",
            anyhow::anyhow!("channel {id} vanished"),
        )
    })
}

/// Parses the channel ids a budget names and checks each exists; problems are
/// reported as `channelIds.<i>`.
pub async fn check_ids(conn: &impl ConnectionTrait, raw: &[String]) -> Result<Vec<ChannelId>> {
    let mut errors = vec![];
    if raw.len() > MAX_PER_BUDGET {
        errors.push(FieldError::new(
            "channelIds",
            format!("at most {MAX_PER_BUDGET} channels"),
        ));
    }
    let mut out = vec![];
    for (i, r) in raw.iter().enumerate() {
        match r.parse::<ChannelId>() {
            Ok(id) => match find(conn, id).await? {
                Some(_) => out.push(id),
                None => errors.push(FieldError::new(
                    format!("channelIds.{i}"),
                    "is not a notification channel",
                )),
            },
            Err(_) => errors.push(FieldError::new(
                format!("channelIds.{i}"),
                "is not a notification channel id",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::InvalidInput(errors));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> OperatorAllowList {
        OperatorAllowList::default()
    }

    #[test]
    fn fields_of_another_kind_are_refused_by_name() {
        let err = RawChannel {
            name: Some("ops".into()),
            kind: Some(ChannelKind::Email),
            url: Change::Set("https://hooks.example.com/x".into()),
            emails: Change::Set(vec!["ops@example.com".into(), "not an address".into()]),
            secret: Change::Keep,
        }
        .parse_new(&allow())
        .unwrap_err();
        let Error::InvalidInput(errors) = err else {
            panic!("invalid input expected")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["url", "emails.1"]);
    }

    #[test]
    fn a_slack_url_is_kept_only_masked_in_clear() {
        let spec = RawChannel {
            name: Some("alerts".into()),
            kind: Some(ChannelKind::Slack),
            url: Change::Set("https://hooks.slack.com/services/T0/B0/secretpart".into()),
            ..Default::default()
        }
        .parse_new(&allow())
        .unwrap();
        assert_eq!(spec.url.as_deref(), Some("https://hooks.slack.com/…"));
        assert!(matches!(spec.secret, Change::Set(ref u) if u.ends_with("secretpart")));
    }

    #[test]
    fn e_mail_addresses_are_checked() {
        assert_eq!(parse_email(" a@example.com ").unwrap(), "a@example.com");
        for bad in ["", "a", "a@", "@b", "a b@c.d", "a@b.c,d@e.f", "a@b\n.c"] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
    }
}
