//! The one error type of the domain. Transports translate it exactly once
//! (`graphql::error`, `http::error`); nothing below them knows about status codes.

use std::fmt;

/// One invalid piece of input, with the path of the field it came from
/// (`inputs.3.inputTokens`), so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path to the field, as the client named it.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// Builds a field error; used by every parser in the domain.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the path, e.g. `inputTokens` becomes `inputs.3.inputTokens`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// Parses every item of an optional list, naming a bad one by its index
/// (`providers.2`) so that one answer reports every problem; the good items are kept
/// in order.
pub fn parse_each<S: AsRef<str>, T>(
    items: Option<Vec<S>>,
    field: &str,
    message: &str,
    parse: impl Fn(&str) -> Option<T>,
    errors: &mut Vec<FieldError>,
) -> Vec<T> {
    let mut parsed = Vec::new();
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        match parse(item.as_ref()) {
            Some(value) => parsed.push(value),
            None => errors.push(FieldError::new(format!("{field}.{i}"), message)),
        }
    }
    parsed
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every way a domain operation can fail. The variants map one-to-one onto the
/// error codes of the API contract (`INVALID_INPUT`, `NOT_FOUND`, ...).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input was rejected; nothing was written.
    #[error("invalid input: {}", summarize(.0))]
    InvalidInput(Vec<FieldError>),
    /// A time range whose start is after its end.
    #[error("invalid date range: {0}")]
    InvalidDateRange(String),
    /// No credentials, or credentials that are wrong or revoked.
    #[error("authentication required: send a valid token as `Authorization: Bearer <token>`")]
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{what} not found")]
    NotFound {
        /// What kind of thing, e.g. "project".
        what: &'static str,
    },
    /// The request conflicts with existing state (a duplicate name, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many requests; try again later.
    #[error("rate limited")]
    RateLimited {
        /// Seconds to wait, when known.
        retry_after_secs: Option<u64>,
    },
    /// A provider plugin failed; the message names the plugin and its version.
    #[error("plugin {plugin}: {message}")]
    Plugin {
        /// `id@version` of the plugin.
        plugin: String,
        /// What went wrong, safe to show.
        message: String,
    },
    /// The database cannot be reached (refused, dropped, shutting down, or no pooled
    /// connection within the acquire timeout): nothing was written by this request and
    /// the same request may be retried. The context is logged, never shown.
    #[error("database unavailable while {context}: {source}")]
    Unavailable {
        /// What the server was doing.
        context: &'static str,
        /// The underlying cause.
        #[source]
        source: anyhow::Error,
    },
    /// A failure the client cannot fix. The context is logged, never shown.
    #[error("internal error while {context}: {source}")]
    Internal {
        /// What the server was doing.
        context: &'static str,
        /// The underlying cause.
        #[source]
        source: anyhow::Error,
    },
}

fn summarize(errors: &[FieldError]) -> String {
    errors
        .iter()
        .take(5)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput(vec![FieldError::new(field, message)])
    }

    /// Wraps an unexpected failure with what the server was doing at the time. A
    /// failure to reach the database becomes [`Error::Unavailable`] instead.
    pub fn internal(context: &'static str, source: impl Into<anyhow::Error>) -> Self {
        let source = source.into();
        if is_unavailable(&source) {
            Self::Unavailable { context, source }
        } else {
            Self::Internal { context, source }
        }
    }

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "INVALID_INPUT",
            Error::InvalidDateRange(_) => "INVALID_DATE_RANGE",
            Error::Unauthorized => "UNAUTHORIZED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Plugin { .. } => "PLUGIN_ERROR",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Internal { .. } => "INTERNAL",
        }
    }
}

/// Whether an error says the database could not be reached, as opposed to a query
/// it refused: no pooled connection in time, a refused or dropped connection, or the
/// server shutting down or starting up (SQLSTATE class 08, and 57P01–57P03).
fn is_unavailable(error: &anyhow::Error) -> bool {
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
    error.chain().any(|cause| {
        if let Some(db) = cause.downcast_ref::<DbErr>() {
            return match db {
                DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)
                | DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed) => true,
                DbErr::Conn(RuntimeErr::SqlxError(e))
                | DbErr::Exec(RuntimeErr::SqlxError(e))
                | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unavailable(e),
                DbErr::Conn(_) => true,
                _ => false,
            };
        }
        cause
            .downcast_ref::<sea_orm::sqlx::Error>()
            .is_some_and(sqlx_unavailable)
    })
}

fn sqlx_unavailable(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match error {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The result type of every domain service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds "what was I doing" to database and other infrastructure errors, so that a
/// logged internal error says where it happened.
pub trait Context<T> {
    /// Converts the error into [`Error::Internal`] with the given context.
    fn context(self, context: &'static str) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn context(self, context: &'static str) -> Result<T> {
        self.map_err(|e| Error::internal(context, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_each_keeps_the_good_items_and_names_every_bad_one_by_index() {
        let mut errors = vec![FieldError::new("earlier", "stays")];
        let parsed = parse_each(
            Some(vec!["1", "x", "3", "y"]),
            "numbers",
            "is not a number",
            |s| s.parse::<u32>().ok(),
            &mut errors,
        );
        assert_eq!(parsed, vec![1, 3]);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["earlier", "numbers.1", "numbers.3"]);
        assert_eq!(errors[2].message, "is not a number");
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_unavailable_and_other_failures_internal() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
        use std::sync::Arc;
        let unreachable = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(
                sea_orm::sqlx::Error::PoolTimedOut,
            ))),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            )))),
        ];
        for e in unreachable {
            let error = Error::internal("reading", e);
            assert_eq!(error.code(), "UNAVAILABLE", "{error}");
        }
        let bug = Error::internal("reading", DbErr::RecordNotFound("x".into()));
        assert_eq!(bug.code(), "INTERNAL");
        let other = Error::internal("reading", anyhow::anyhow!("no database involved"));
        assert_eq!(other.code(), "INTERNAL");
    }

    #[test]
    fn parse_each_of_no_list_is_empty_and_adds_no_error() {
        let mut errors = Vec::new();
        let parsed: Vec<u32> = parse_each(
            None::<Vec<String>>,
            "numbers",
            "is not a number",
            |s| s.parse().ok(),
            &mut errors,
        );
        assert!(parsed.is_empty() && errors.is_empty());
    }
}
