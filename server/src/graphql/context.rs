//! Reading the request context: the shared state and the caller.

use super::error::to_gql;
use crate::domain::Error;
use crate::domain::auth::Principal;
use crate::state::AppState;
use async_graphql::Context;

/// Accessors every resolver uses.
pub trait ContextExt {
    /// The process state (always present: the schema is built with it).
    fn state(&self) -> async_graphql::Result<&AppState>;
    /// The caller (anonymous when the request had no valid token).
    fn principal(&self) -> &Principal;
}

static ANONYMOUS: Principal = Principal::Anonymous;

impl ContextExt for Context<'_> {
    fn state(&self) -> async_graphql::Result<&AppState> {
        self.data::<AppState>().map_err(|_| {
            to_gql(Error::internal(
                "reading the GraphQL context",
                anyhow::anyhow!("the schema was built without its state"),
            ))
        })
    }

    fn principal(&self) -> &Principal {
        self.data_opt::<Principal>().unwrap_or(&ANONYMOUS)
    }
}
