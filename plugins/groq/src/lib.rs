//! Groq: no usage or billing API exists, so usage is entered by hand (and per-request
//! ingest works as for any OpenAI-compatible API: Groq's responses carry a `usage`
//! object).
//!
//! Checked against Groq's documentation on 2026-11-23: the Billing FAQs
//! (<https://console.groq.com/docs/billing-faqs>) describe usage and spend only in the
//! console's dashboard, the Spend Limits page (<https://console.groq.com/docs/spend-limits>)
//! tracks spend only under Settings → Billing, and the API reference
//! (<https://console.groq.com/docs/api-reference>) has no usage or billing endpoint.

use aispend_plugin_sdk::{Capability, Metadata, MetadataBuilder, Plugin, export_plugin};

/// The plugin.
pub struct Groq;

impl Plugin for Groq {
    fn metadata() -> Metadata {
        MetadataBuilder::new("groq", "Groq", env!("CARGO_PKG_VERSION"))
            .capability(Capability::ManualEntry)
            .credential_help("No credential is needed: Groq has no usage API. Record requests with `recordUsage` (pass the response's `usage` object) or enter the console's numbers by hand.")
            .manual_entry_help("GroqCloud console → Dashboard → Usage (https://console.groq.com/dashboard/usage): daily spend and tokens per model; invoices under Settings → Billing.")
            .docs_url("https://console.groq.com/docs/billing-faqs")
            .build()
    }
}

export_plugin!(Groq);
