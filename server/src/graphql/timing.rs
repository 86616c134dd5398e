//! GraphQL latency for `/metrics`: each executed operation's duration, labelled by its
//! first root field (`recordUsage`, `costSummary`, …). The label comes from the
//! validated document, so its values are the schema's field names — never the
//! client-chosen operation name, which could be anything.

use crate::metrics::Metrics;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use async_graphql::{Response, ServerResult, Variables};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Times every operation into the server's [`Metrics`].
pub struct Timing {
    /// Where the durations go.
    pub metrics: Arc<Metrics>,
}

impl ExtensionFactory for Timing {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TimingExtension {
            metrics: self.metrics.clone(),
            document: Mutex::new(None),
        })
    }
}

struct TimingExtension {
    metrics: Arc<Metrics>,
    document: Mutex<Option<ExecutableDocument>>,
}

/// The first root field of the named operation (or of the only one).
fn root_field(doc: &ExecutableDocument, operation_name: Option<&str>) -> Option<String> {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) => ops.values().next()?,
    };
    operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|item| match &item.node {
            Selection::Field(field) => Some(field.node.name.node.to_string()),
            _ => None,
        })
}

#[async_trait::async_trait]
impl Extension for TimingExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Ok(mut slot) = self.document.lock() {
            *slot = Some(doc.clone());
        }
        Ok(doc)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let started = Instant::now();
        let response = next.run(ctx, operation_name).await;
        let root = self
            .document
            .lock()
            .ok()
            .and_then(|doc| doc.as_ref().and_then(|d| root_field(d, operation_name)));
        if let Some(root) = root {
            self.metrics.graphql_latency(&root, started.elapsed());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_is_the_first_root_field_of_the_chosen_operation() {
        let doc = async_graphql::parser::parse_query(
            "query A { projects { id } } mutation B { x: recordUsage(input: {}) { id } }",
        )
        .unwrap();
        assert_eq!(root_field(&doc, Some("B")).as_deref(), Some("recordUsage"));
        assert_eq!(root_field(&doc, Some("C")), None);
        let doc = async_graphql::parser::parse_query("{ __typename costSummary { x } }").unwrap();
        assert_eq!(root_field(&doc, None).as_deref(), Some("__typename"));
    }
}
