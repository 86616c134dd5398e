//! Domain errors as GraphQL errors: `extensions.code` always, `extensions.field` (and
//! `extensions.errors` with every problem) for input errors. Internal details are
//! logged with a reference and never shown.
//!
//! async-graphql converts anything `Display` into an error, which would silently drop
//! the code; resolvers therefore call `.gql()` instead of `?` on domain results.

use crate::domain::{Error, FieldError};
use async_graphql::{ErrorExtensionValues, Value};

/// Converts a domain result into a GraphQL result.
pub trait GqlResult<T> {
    /// Translates the error, if any.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, Error> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(to_gql)
    }
}

fn field_list(errors: &[FieldError]) -> Value {
    Value::List(
        errors
            .iter()
            .map(|e| {
                let mut obj = async_graphql::indexmap::IndexMap::new();
                obj.insert(
                    async_graphql::Name::new("field"),
                    Value::from(e.field.clone()),
                );
                obj.insert(
                    async_graphql::Name::new("message"),
                    Value::from(e.message.clone()),
                );
                Value::Object(obj)
            })
            .collect(),
    )
}

/// Translates one domain error.
pub fn to_gql(error: Error) -> async_graphql::Error {
    let code = error.code();
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    let message = match &error {
        Error::Internal { .. } => {
            let reference = uuid::Uuid::new_v4();
            tracing::error!(%reference, error = ?error, "internal error");
            format!("internal error (reference {reference})")
        }
        Error::Unavailable { .. } => {
            tracing::warn!(error = ?error, "database unavailable");
            "the database is unavailable; nothing was written, retry shortly".to_owned()
        }
        Error::InvalidInput(errors) => {
            if let Some(first) = errors.first() {
                ext.set("field", first.field.clone());
            }
            ext.set("errors", field_list(errors));
            error.to_string()
        }
        Error::Plugin { plugin, .. } => {
            ext.set("plugin", plugin.clone());
            error.to_string()
        }
        Error::RateLimited {
            retry_after_secs: Some(secs),
        } => {
            ext.set("retryAfterSeconds", *secs);
            error.to_string()
        }
        _ => error.to_string(),
    };
    let mut out = async_graphql::Error::new(message);
    out.extensions = Some(ext);
    out
}

/// Prefixes the field paths of an input error with the argument name (`filter`).
pub fn under_argument(error: Error, argument: &str) -> Error {
    match error {
        Error::InvalidInput(errors) => {
            Error::InvalidInput(errors.into_iter().map(|e| e.under(argument)).collect())
        }
        other => other,
    }
}
