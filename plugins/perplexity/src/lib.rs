//! Perplexity: no usage or billing API exists, so usage is entered by hand. Per-request
//! ingest still works, and Perplexity's responses carry their own cost
//! (`usage.cost.total_cost`), which aispend records as the event's cost.
//!
//! Checked against Perplexity's documentation on 2026-11-23: the API reference
//! (<https://docs.perplexity.ai/api-reference/chat-completions-post>) documents the
//! `usage.cost` object of each response, and the API groups and billing page
//! (<https://docs.perplexity.ai/getting-started/api-groups>) shows usage and invoices only
//! in the API portal; there is no usage endpoint.

use aispend_plugin_sdk::{Capability, Metadata, MetadataBuilder, Plugin, export_plugin};

/// The plugin.
pub struct Perplexity;

impl Plugin for Perplexity {
    fn metadata() -> Metadata {
        MetadataBuilder::new("perplexity", "Perplexity", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ManualEntry)
            .credential_help("No credential is needed: Perplexity has no usage API. Send each response's `usage` object to `recordUsage`; its `cost.total_cost` becomes the event's cost.")
            .manual_entry_help("Perplexity API portal → Settings → Usage Metrics for calls and tokens per model and key; Invoice history → Invoices for billed amounts (each line names the key by its last 4 characters).")
            .docs_url("https://docs.perplexity.ai/getting-started/api-groups")
            .build()
    }
}

export_plugin!(Perplexity);
