//! Provider plugins over GraphQL: what is installed, what each can do, and why a plugin
//! did not load.

use super::context::ContextExt;
use super::error::GqlResult;
use crate::domain::auth::Scope;
use crate::plugins::{Capability, PluginInfo, Source};
use async_graphql::{Context, Enum, Object, SimpleObject};

/// What a plugin can do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PluginCapability")]
pub enum CapabilityGql {
    /// Check a credential.
    ValidateCredential,
    /// Fetch the provider's usage reports.
    FetchUsage,
    /// Fetch the provider's cost reports.
    FetchCosts,
    /// No usage API: numbers are entered by hand.
    ManualEntry,
}

impl From<Capability> for CapabilityGql {
    fn from(c: Capability) -> Self {
        match c {
            Capability::ValidateCredential => CapabilityGql::ValidateCredential,
            Capability::FetchUsage => CapabilityGql::FetchUsage,
            Capability::FetchCosts => CapabilityGql::FetchCosts,
            Capability::ManualEntry => CapabilityGql::ManualEntry,
        }
    }
}

/// Where a plugin came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PluginSource")]
pub enum SourceGql {
    /// Built from `plugins/` and shipped inside the binary.
    Bundled,
    /// A `.wasm` file in `AISPEND_PLUGIN_DIR`.
    Directory,
}

/// A provider plugin, loaded or not.
#[derive(SimpleObject)]
#[graphql(name = "Plugin")]
pub struct PluginGql {
    /// The plugin id, which is also the provider name (the file name when it did not load).
    pub id: String,
    /// Name for people.
    pub name: Option<String>,
    /// The plugin's own version.
    pub version: Option<String>,
    /// The SDK (WIT contract) version it was built with.
    pub sdk_version: Option<String>,
    /// What it can do.
    pub capabilities: Vec<CapabilityGql>,
    /// Hosts it calls over https.
    pub hosts: Vec<String>,
    /// Bundled or from the plugin folder.
    pub source: SourceGql,
    /// `bundled:<id>` or the file's path.
    pub origin: String,
    /// How to get a credential.
    pub credential_help: Option<String>,
    /// For manual-entry providers: where in the provider's console the numbers are.
    pub manual_entry_help: Option<String>,
    /// The provider documentation the plugin follows.
    pub docs_url: Option<String>,
    /// Why it did not load (null when it did).
    pub load_error: Option<String>,
    /// True for a bundled plugin replaced by a directory plugin with the same id.
    pub replaced: bool,
}

impl From<PluginInfo> for PluginGql {
    fn from(p: PluginInfo) -> Self {
        let m = p.metadata;
        PluginGql {
            id: p.id,
            name: m.as_ref().map(|m| m.name.clone()),
            version: m.as_ref().map(|m| m.version.clone()),
            sdk_version: p.sdk_version,
            capabilities: m
                .as_ref()
                .map(|m| m.capabilities.iter().copied().map(Into::into).collect())
                .unwrap_or_default(),
            hosts: m.as_ref().map(|m| m.hosts.clone()).unwrap_or_default(),
            source: match p.source {
                Source::Bundled => SourceGql::Bundled,
                Source::Directory => SourceGql::Directory,
            },
            origin: p.origin,
            credential_help: m.as_ref().map(|m| m.credential_help.clone()),
            manual_entry_help: m.as_ref().and_then(|m| m.manual_entry_help.clone()),
            docs_url: m.as_ref().and_then(|m| m.docs_url.clone()),
            load_error: p.load_error,
            replaced: p.replaced,
        }
    }
}

/// Plugin queries.
#[derive(Default)]
pub struct PluginQuery;

#[Object]
impl PluginQuery {
    /// Every provider plugin: bundled first, then those in the plugin folder, each with
    /// its load error if it did not load.
    async fn plugins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PluginGql>> {
        let state = ctx.state()?;
        ctx.principal().require(Scope::Read).gql()?;
        Ok(state
            .plugins
            .list()
            .await
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
