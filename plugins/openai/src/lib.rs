//! Work in progress.
use aispend_plugin_sdk::{Metadata, MetadataBuilder, Plugin, export_plugin};
/// The plugin.
pub struct P;
impl Plugin for P {
    fn metadata() -> Metadata {
        MetadataBuilder::new("wip", "wip", "0.0.0").build()
    }
}
export_plugin!(P);
