//! The GraphQL API: thin resolvers that read the context, parse input into domain
//! types, call the domain and map results to output types. Only this module imports
//! async-graphql; SeaORM entities never appear here.

pub mod alert;
pub mod analytics;
pub mod anomaly_watch;
pub mod api_token;
pub mod budget;
pub mod channel;
pub mod context;
pub mod credential;
pub mod error;
pub mod limits;
pub mod plugin;
pub mod price;
pub mod project;
pub mod reconciliation;
pub mod scalars;
pub mod subscription;
pub mod sync;
pub mod timing;
pub mod usage;

use crate::domain::auth::Principal;
use crate::state::AppState;
use async_graphql::{MergedObject, Object, Schema, SimpleObject};
use context::ContextExt;

/// Who the caller is.
#[derive(SimpleObject)]
pub struct Viewer {
    /// `ANONYMOUS`, `OPERATOR` (the bootstrap token) or `TOKEN`.
    pub kind: String,
    /// The token's id.
    pub token_id: Option<async_graphql::ID>,
    /// The project the caller is bound to.
    pub project_id: Option<async_graphql::ID>,
    /// Scopes.
    pub scopes: Vec<api_token::ScopeGql>,
}

/// Queries about the API itself.
#[derive(Default)]
pub struct MetaQuery;

#[Object]
impl MetaQuery {
    /// The caller, as the server sees it (handy to check a token).
    async fn viewer(&self, ctx: &async_graphql::Context<'_>) -> Viewer {
        match ctx.principal() {
            Principal::Anonymous => Viewer {
                kind: "ANONYMOUS".into(),
                token_id: None,
                project_id: None,
                scopes: vec![],
            },
            Principal::Operator => Viewer {
                kind: "OPERATOR".into(),
                token_id: None,
                project_id: None,
                scopes: vec![api_token::ScopeGql::Admin],
            },
            Principal::Token {
                id,
                project,
                scopes,
            } => Viewer {
                kind: "TOKEN".into(),
                token_id: Some(async_graphql::ID(id.to_string())),
                project_id: project.map(|p| async_graphql::ID(p.to_string())),
                scopes: scopes.iter().map(Into::into).collect(),
            },
        }
    }

    /// The server's version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// The server's clock: what "today" and "this month" are computed from (a client
    /// whose own clock differs asks here before it picks a range).
    async fn server_time(&self) -> scalars::Timestamp {
        scalars::Timestamp(crate::domain::time::now())
    }
}

/// The query root.
#[derive(MergedObject, Default)]
pub struct Query(
    MetaQuery,
    project::ProjectQuery,
    api_token::ApiTokenQuery,
    usage::UsageQuery,
    price::PriceQuery,
    plugin::PluginQuery,
    credential::CredentialQuery,
    budget::BudgetQuery,
    channel::ChannelQuery,
    anomaly_watch::AnomalyWatchQuery,
    alert::AlertQuery,
    sync::SyncQuery,
    reconciliation::ReconciliationQuery,
    analytics::AnalyticsQuery,
    analytics::InsightsQuery,
);

/// The mutation root.
#[derive(MergedObject, Default)]
pub struct Mutation(
    project::ProjectMutation,
    api_token::ApiTokenMutation,
    usage::UsageMutation,
    price::PriceMutation,
    credential::CredentialMutation,
    budget::BudgetMutation,
    channel::ChannelMutation,
    anomaly_watch::AnomalyWatchMutation,
    alert::AlertMutation,
    sync::SyncMutation,
);

/// The schema type.
pub type AispendSchema = Schema<Query, Mutation, subscription::Subscription>;

/// The schema's SDL (`aispend schema`, the committed `schema.graphql`): the types do
/// not depend on the process state, so no database is needed.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .finish()
    .sdl()
}

/// Builds the schema with the process state. Depth and complexity limits keep a
/// hostile query from taking the server down.
pub fn schema(state: AppState, introspection: bool) -> AispendSchema {
    let prices = async_graphql::dataloader::DataLoader::new(
        price::PriceLoader {
            db: state.db.clone(),
        },
        tokio::spawn,
    );
    let builder = Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .data(prices)
    .extension(timing::Timing {
        metrics: state.metrics.clone(),
    })
    .data(state)
    .extension(limits::RequestLimits { introspection })
    .limit_depth(16)
    .limit_complexity(20_000)
    .limit_recursive_depth(64);
    let builder = if introspection {
        builder
    } else {
        builder.disable_introspection()
    };
    builder.finish()
}
