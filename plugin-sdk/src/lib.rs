//! The aispend provider plugin SDK.
//!
//! A provider plugin is a WebAssembly component that aispend runs in a sandbox. Write
//! one by implementing [`Plugin`] and calling [`export_plugin!`] once:
//!
//! ```text
//! use aispend_plugin_sdk::*;
//!
//! struct Acme;
//!
//! impl Plugin for Acme {
//!     fn metadata() -> Metadata {
//!         MetadataBuilder::new("acme", "Acme AI", env!("CARGO_PKG_VERSION"))
//!             .capability(Capability::FetchUsage)
//!             .host("api.acme.example")
//!             .credential_help("An Acme admin key")
//!             .build()
//!     }
//!
//!     fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
//!         let page: serde_json::Value = http::get_json(
//!             &format!("{}/usage", credential.base_url_or("https://api.acme.example")),
//!             &[("authorization", &format!("Bearer {}", credential.secret))],
//!         )?;
//!         // ... turn `page` into rows ...
//!         Ok(UsagePage { rows: vec![], next_cursor: None })
//!     }
//! }
//!
//! export_plugin!(Acme);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` and drop the `.wasm`
//! into `AISPEND_PLUGIN_DIR`. Authors never touch wit-bindgen: the types below are the
//! contract in `wit/provider.wit`, re-exported under plain names.

// Lets the generated code name this crate the way plugins do.
extern crate self as aispend_plugin_sdk;

/// The SDK's README, compiled: its Rust example is a doc test, so the guide plugin
/// authors copy from always builds against this SDK.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;

pub mod decimal;
pub mod http;
pub mod log;
pub mod time;

#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "provider",
        pub_export_macro: true,
        export_macro_name: "__export_provider_world",
        default_bindings_module: "aispend_plugin_sdk::bindings",
        runtime_path: "::aispend_plugin_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use bindings::aispend::provider::types::{
    BucketWidth, Capability, CostPage, CostRow, Credential, Metadata, ProviderError, Query,
    RateLimit, UnitCount, UsagePage, UsageRow, Window,
};
pub use decimal::Decimal;

/// The version of the WIT contract (`aispend:provider@0.1.0`) this SDK implements.
/// The host reads it from the component before compiling it and refuses a plugin built
/// for a version it does not support.
pub const SDK_VERSION: &str = "0.1.0";

/// [`SDK_VERSION`] as the bytes of the `aispend:sdk-version` custom section that
/// [`export_plugin!`] puts into every plugin.
pub const SDK_VERSION_SECTION: [u8; 5] = *b"0.1.0";

const _: () = assert!(SDK_VERSION.len() == SDK_VERSION_SECTION.len());

/// Name of the custom section holding [`SDK_VERSION`].
pub const SDK_VERSION_SECTION_NAME: &str = "aispend:sdk-version";

/// What a provider plugin does. Every method but [`Plugin::metadata`] has a default
/// that answers `not-supported`, so a plugin implements only what its provider offers.
///
/// Methods are associated functions (no `self`): the host instantiates a fresh plugin
/// for every call, so there is no state to keep between calls.
pub trait Plugin {
    /// Who the plugin is, what it can do and which hosts it calls.
    fn metadata() -> Metadata;

    /// Checks that a credential works (one cheap request), without fetching data.
    fn validate_credential(_credential: Credential) -> Result<(), ProviderError> {
        Err(ProviderError::NotSupported(
            "this plugin cannot validate credentials".into(),
        ))
    }

    /// One page of usage for `query.window`, in `query.bucket` buckets, starting at
    /// `query.cursor`.
    fn fetch_usage(_credential: Credential, _query: Query) -> Result<UsagePage, ProviderError> {
        Err(ProviderError::NotSupported(
            "this provider has no usage API".into(),
        ))
    }

    /// One page of costs for `query.window`, starting at `query.cursor`.
    fn fetch_costs(_credential: Credential, _query: Query) -> Result<CostPage, ProviderError> {
        Err(ProviderError::NotSupported(
            "this provider has no cost API".into(),
        ))
    }
}

impl<P: Plugin> bindings::Guest for P {
    fn metadata() -> Metadata {
        P::metadata()
    }
    fn validate_credential(credential: Credential) -> Result<(), ProviderError> {
        P::validate_credential(credential)
    }
    fn fetch_usage(credential: Credential, query: Query) -> Result<UsagePage, ProviderError> {
        P::fetch_usage(credential, query)
    }
    fn fetch_costs(credential: Credential, query: Query) -> Result<CostPage, ProviderError> {
        P::fetch_costs(credential, query)
    }
}

/// Exports a [`Plugin`] implementation as the component's provider world and embeds
/// the SDK version the host checks. Call it once, at the crate root, with the type's
/// name. It expands to nothing when not compiling for WebAssembly, so a plugin's
/// parsing code can be unit-tested and benchmarked natively.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __aispend_plugin_export {
            #[unsafe(link_section = "aispend:sdk-version")]
            #[used]
            static SDK_VERSION: [u8; $crate::SDK_VERSION_SECTION.len()] = $crate::SDK_VERSION_SECTION;

            use super::$plugin;
            $crate::bindings::__export_provider_world!($plugin with_types_in $crate::bindings);
        }

        // Natively nothing is exported; name the entry points so the plugin's code
        // still counts as used (native unit tests and benchmarks call it directly).
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = (
                <$plugin as $crate::Plugin>::metadata,
                <$plugin as $crate::Plugin>::validate_credential,
                <$plugin as $crate::Plugin>::fetch_usage,
                <$plugin as $crate::Plugin>::fetch_costs,
            );
        };
    };
}

impl Credential {
    /// The value of an option, trimmed; `None` when absent or empty.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The base URL to call: the credential's override, or the provider's default,
    /// without a trailing slash.
    pub fn base_url_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
    }
}

impl BucketWidth {
    /// The width in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            BucketWidth::Minute => 60,
            BucketWidth::Hour => 3_600,
            BucketWidth::Day => 86_400,
        }
    }

    /// The spelling providers use (`1m`, `1h`, `1d`).
    pub fn as_str(self) -> &'static str {
        match self {
            BucketWidth::Minute => "1m",
            BucketWidth::Hour => "1h",
            BucketWidth::Day => "1d",
        }
    }
}

impl ProviderError {
    /// A `bad-response` error, for JSON the plugin cannot read.
    pub fn bad_response(message: impl Into<String>) -> ProviderError {
        ProviderError::BadResponse(message.into())
    }

    /// An `other` error.
    pub fn other(message: impl Into<String>) -> ProviderError {
        ProviderError::Other(message.into())
    }
}

impl UsageRow {
    /// An empty row for one bucket; set the fields the provider reports.
    pub fn new(bucket_start: i64, bucket_end: i64) -> UsageRow {
        UsageRow {
            bucket_start,
            bucket_end,
            model: None,
            project_id: None,
            workspace_id: None,
            api_key_id: None,
            service_tier: None,
            input_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cache_write_1h_tokens: 0,
            output_tokens: 0,
            reasoning_tokens: 0,
            requests: 0,
            units: Vec::new(),
        }
    }
}

impl CostRow {
    /// A row for one bucket with its exact amount; set the other fields as reported.
    pub fn new(bucket_start: i64, bucket_end: i64, amount: Decimal, currency: &str) -> CostRow {
        CostRow {
            bucket_start,
            bucket_end,
            model: None,
            project_id: None,
            workspace_id: None,
            api_key_id: None,
            service_tier: None,
            line_item: None,
            amount: amount.to_string(),
            currency: currency.to_ascii_lowercase(),
            units: Vec::new(),
        }
    }
}

impl UnitCount {
    /// A count of `unit` (`seats`, `premium-requests`, `web-searches`).
    pub fn new(unit: &str, quantity: Decimal) -> UnitCount {
        UnitCount {
            unit: unit.to_owned(),
            quantity: quantity.to_string(),
        }
    }
}

/// Builds [`Metadata`] without listing every field.
pub struct MetadataBuilder(Metadata);

impl MetadataBuilder {
    /// Starts with the id (also the provider name), a display name and the version.
    pub fn new(id: &str, name: &str, version: &str) -> MetadataBuilder {
        MetadataBuilder(Metadata {
            id: id.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            capabilities: Vec::new(),
            hosts: Vec::new(),
            credential_help: String::new(),
            manual_entry_help: None,
            docs_url: None,
        })
    }

    /// Adds a capability.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.0.capabilities.push(capability);
        self
    }

    /// Declares a host the plugin calls over https.
    pub fn host(mut self, host: &str) -> Self {
        self.0.hosts.push(host.to_owned());
        self
    }

    /// How to get a credential.
    pub fn credential_help(mut self, help: &str) -> Self {
        self.0.credential_help = help.to_owned();
        self
    }

    /// Where a person finds the numbers to enter by hand.
    pub fn manual_entry_help(mut self, help: &str) -> Self {
        self.0.manual_entry_help = Some(help.to_owned());
        self
    }

    /// The provider documentation the plugin follows.
    pub fn docs_url(mut self, url: &str) -> Self {
        self.0.docs_url = Some(url.to_owned());
        self
    }

    /// The metadata.
    pub fn build(self) -> Metadata {
        self.0
    }
}
