//! Limits on what one GraphQL request may ask for, checked on the parsed document
//! before validation and execution: a dashboard never comes near them, a request
//! that tries to make one call do the work of thousands is refused whole with
//! `INVALID_INPUT` (and nothing runs).
//!
//! - [`MAX_ROOT_FIELDS`] top-level fields per operation;
//! - [`MAX_ALIASES`] aliased fields per document;
//! - [`MAX_EXPENSIVE`] expensive fields per document — each analytic (summary,
//!   breakdown, trend, filters, recommendations, anomalies, reconciliation, the
//!   event log) reads many rows, so each counts once wherever it appears;
//! - fragments are followed (a spread counts what it spreads) up to a nesting depth,
//!   so they cannot hide fields.
//!
//! The depth and complexity limits of the schema builder still apply after these.

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};
use std::sync::Arc;

/// Top-level fields one operation may select.
pub const MAX_ROOT_FIELDS: usize = 30;
/// Aliased fields one document may contain.
pub const MAX_ALIASES: usize = 30;
/// Expensive fields (analytics) one document may select.
pub const MAX_EXPENSIVE: usize = 20;
/// Fragment spreads followed inside one another before the document is refused.
const MAX_FRAGMENT_NESTING: usize = 16;

/// Root fields that each read many rows.
pub const EXPENSIVE_FIELDS: &[&str] = &[
    "costSummary",
    "costBreakdown",
    "costTrend",
    "filters",
    "recommendations",
    "anomalies",
    "reconciliation",
    "usageEvents",
];

/// What a document asks for, counted.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    root_fields: usize,
    aliases: usize,
    expensive: usize,
    introspection: bool,
}

fn refuse(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "INVALID_INPUT");
    error.extensions = Some(ext);
    error
}

fn walk(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    root: bool,
    nesting: usize,
    counts: &mut Counts,
) -> ServerResult<()> {
    if nesting > MAX_FRAGMENT_NESTING {
        return Err(refuse(format!(
            "fragments are nested more than {MAX_FRAGMENT_NESTING} deep"
        )));
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                if field.alias.is_some() {
                    counts.aliases += 1;
                }
                if root {
                    counts.root_fields += 1;
                    if matches!(field.name.node.as_str(), "__schema" | "__type") {
                        counts.introspection = true;
                    }
                    if EXPENSIVE_FIELDS.contains(&field.name.node.as_str()) {
                        counts.expensive += 1;
                    }
                }
                walk(doc, &field.selection_set.node, false, nesting, counts)?;
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    walk(
                        doc,
                        &fragment.node.selection_set.node,
                        root,
                        nesting + 1,
                        counts,
                    )?;
                }
            }
            Selection::InlineFragment(inline) => {
                walk(
                    doc,
                    &inline.node.selection_set.node,
                    root,
                    nesting + 1,
                    counts,
                )?;
            }
        }
    }
    Ok(())
}

/// Checks a parsed document against the limits (and refuses introspection when it is
/// turned off).
pub fn check(doc: &ExecutableDocument, introspection: bool) -> ServerResult<()> {
    let mut total = Counts::default();
    for (_, operation) in doc.operations.iter() {
        let mut counts = Counts::default();
        walk(
            doc,
            &operation.node.selection_set.node,
            true,
            0,
            &mut counts,
        )?;
        if counts.root_fields > MAX_ROOT_FIELDS {
            return Err(refuse(format!(
                "an operation may select at most {MAX_ROOT_FIELDS} top-level fields; this one selects {}",
                counts.root_fields
            )));
        }
        if counts.introspection && !introspection {
            return Err(refuse(
                "introspection is turned off on this server (AISPEND_GRAPHQL_INTROSPECTION)".into(),
            ));
        }
        total.aliases += counts.aliases;
        total.expensive += counts.expensive;
    }
    if total.aliases > MAX_ALIASES {
        return Err(refuse(format!(
            "a request may use at most {MAX_ALIASES} aliases; this one uses {}",
            total.aliases
        )));
    }
    if total.expensive > MAX_EXPENSIVE {
        return Err(refuse(format!(
            "a request may ask for at most {MAX_EXPENSIVE} analytics ({}); this one asks for {}",
            EXPENSIVE_FIELDS.join(", "),
            total.expensive
        )));
    }
    Ok(())
}

/// The schema extension that applies [`check`] to every request.
pub struct RequestLimits {
    /// Whether `__schema` and `__type` may be asked for.
    pub introspection: bool,
}

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimits {
            introspection: self.introspection,
        })
    }
}

#[async_trait::async_trait]
impl Extension for RequestLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        check(&doc, self.introspection)?;
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(query: &str) -> ServerResult<()> {
        check(
            &async_graphql::parser::parse_query(query).expect("a valid document"),
            true,
        )
    }

    fn aliased(field: &str, n: usize) -> String {
        let fields: Vec<String> = (0..n).map(|i| format!("a{i}: {field}")).collect();
        format!("{{ {} }}", fields.join(" "))
    }

    #[test]
    fn a_dashboard_page_passes() {
        assert!(checked(
            "{ costSummary { basis } costBreakdown(groupBy: [MODEL]) { model } costTrend(granularity: DAY) { start } filters { models } recommendations { model } anomalies { day } budgets { id } }"
        )
        .is_ok());
    }

    #[test]
    fn too_many_analytics_are_refused_even_behind_fragments() {
        assert!(checked(&aliased("costSummary { basis }", MAX_EXPENSIVE)).is_ok());
        let e = checked(&aliased("costSummary { basis }", MAX_EXPENSIVE + 1)).unwrap_err();
        assert!(e.message.contains("at most 20 analytics"), "{}", e.message);
        let spread = "query { ...a ...a ...a } fragment a on Query { ...b ...b ...b ...b ...b ...b ...b } fragment b on Query { costTrend(granularity: DAY) { start } }";
        assert!(checked(spread).is_err(), "21 trends through fragments");
    }

    #[test]
    fn too_many_aliases_or_root_fields_are_refused() {
        let nested: Vec<String> = (0..=MAX_ALIASES).map(|i| format!("a{i}: id")).collect();
        let e = checked(&format!("{{ projects {{ {} }} }}", nested.join(" "))).unwrap_err();
        assert!(e.message.contains("aliases"), "{}", e.message);
        let fields: Vec<String> = (0..=MAX_ROOT_FIELDS)
            .map(|_| "projects { id }".to_owned())
            .collect();
        let e = checked(&format!("{{ {} }}", fields.join(" "))).unwrap_err();
        assert!(e.message.contains("top-level fields"), "{}", e.message);
        let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INVALID_INPUT")));
    }

    #[test]
    fn self_spreading_fragments_end() {
        assert!(checked("query { ...a } fragment a on Query { ...a }").is_err());
    }
}
