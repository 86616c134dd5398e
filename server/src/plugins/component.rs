//! Checks a component before it is compiled: that it is a component, which SDK version
//! it was built with (the `aispend:sdk-version` custom section the SDK's export macro
//! embeds), and that it imports nothing beyond the provider world and the minimal WASI
//! interfaces Rust's `wasm32-wasip2` standard library needs. A component that imports
//! a filesystem, sockets, `wasi:http` or anything unknown is refused here, with the
//! import named.

use wasmparser::{Encoding, Parser, Payload};

/// The custom section the SDK writes its version into.
pub const SDK_VERSION_SECTION: &str = "aispend:sdk-version";

/// SDK (WIT package) versions this host has bindings for.
pub const SUPPORTED_SDK_VERSIONS: &[&str] = &["0.1.0"];

/// WASI interfaces a plugin may import, without version. None grants anything: the
/// environment is empty, stdin is empty, stdout is discarded, stderr is kept only to
/// explain a panic, and there are no preopened directories or sockets to ask for.
const ALLOWED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
];

/// The provider world's own imports, without version.
const ALLOWED_PROVIDER: &[&str] = &[
    "aispend:provider/types",
    "aispend:provider/http",
    "aispend:provider/log",
];

/// What a component says about itself before it is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The SDK version it was built with, if the section is there.
    pub sdk_version: Option<String>,
    /// Its top-level imports, as named in the component (`wasi:io/streams@0.2.6`).
    pub imports: Vec<String>,
}

impl Inspection {
    /// Imports this host refuses, with the reason.
    pub fn refused_imports(&self) -> Vec<String> {
        self.imports
            .iter()
            .filter(|i| !import_allowed(i))
            .cloned()
            .collect()
    }

    /// Why the component cannot be loaded, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let Some(version) = &self.sdk_version else {
            return Some(format!(
                "the component has no `{SDK_VERSION_SECTION}` section: it was not built with aispend-plugin-sdk's export_plugin!"
            ));
        };
        if !SUPPORTED_SDK_VERSIONS.contains(&version.as_str()) {
            return Some(format!(
                "the plugin was built with aispend-plugin-sdk {version}, which this server does not support (it supports {}); rebuild it with a supported SDK or upgrade aispend",
                SUPPORTED_SDK_VERSIONS.join(", ")
            ));
        }
        let refused = self.refused_imports();
        if !refused.is_empty() {
            return Some(format!(
                "the plugin imports {} — plugins may import only aispend:provider/{{http,log,types}} and the minimal WASI interfaces (no filesystem, sockets or environment)",
                refused.join(", ")
            ));
        }
        None
    }
}

/// Whether one import name is allowed.
pub fn import_allowed(name: &str) -> bool {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    if ALLOWED_PROVIDER.contains(&interface) {
        return SUPPORTED_SDK_VERSIONS.contains(&version);
    }
    ALLOWED_WASI.contains(&interface) && version.starts_with("0.2.")
}

/// Reads the SDK version and the top-level imports of a component.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, String> {
    let mut sdk_version = None;
    let mut imports = Vec::new();
    let mut depth = 0usize;
    let mut first = true;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| format!("the file is not a valid WebAssembly component: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } if first && encoding != Encoding::Component => {
                return Err("the file is a core WebAssembly module, not a component: build it for wasm32-wasip2".into());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import =
                        import.map_err(|e| format!("reading the component's imports: {e}"))?;
                    // Type imports (`use types.{...}` in the world) only name types.
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_owned());
                    }
                }
            }
            Payload::CustomSection(section) if section.name() == SDK_VERSION_SECTION => {
                let version = std::str::from_utf8(section.data())
                    .map_err(|_| format!("the `{SDK_VERSION_SECTION}` section is not text"))?
                    .trim()
                    .to_owned();
                match &sdk_version {
                    Some(existing) if *existing != version => {
                        return Err(format!(
                            "the component claims two SDK versions ({existing} and {version})"
                        ));
                    }
                    _ => sdk_version = Some(version),
                }
            }
            _ => {}
        }
        first = false;
    }
    if first {
        return Err("the file is empty".into());
    }
    Ok(Inspection {
        sdk_version,
        imports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component preamble followed by sections.
    fn component(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut out = b"\0asm\x0d\0\x01\0".to_vec();
        for s in sections {
            out.extend_from_slice(s);
        }
        out
    }

    fn custom(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut out = vec![0, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn reads_the_sdk_version_and_refuses_unknown_versions() {
        let ok = inspect(&component(&[custom(SDK_VERSION_SECTION, b"0.1.0")])).unwrap();
        assert_eq!(ok.sdk_version.as_deref(), Some("0.1.0"));
        assert_eq!(ok.problem(), None);
        let future = inspect(&component(&[custom(SDK_VERSION_SECTION, b"0.9.0")])).unwrap();
        let problem = future.problem().unwrap();
        assert!(
            problem.contains("0.9.0") && problem.contains("supports 0.1.0"),
            "{problem}"
        );
        let none = inspect(&component(&[custom("other", b"x")])).unwrap();
        assert!(none.problem().unwrap().contains("export_plugin!"));
        assert!(
            inspect(&component(&[
                custom(SDK_VERSION_SECTION, b"0.1.0"),
                custom(SDK_VERSION_SECTION, b"0.2.0")
            ]))
            .is_err()
        );
    }

    #[test]
    fn refuses_core_modules_and_garbage() {
        assert!(
            inspect(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(inspect(b"not wasm at all").is_err());
        assert!(inspect(b"").is_err());
    }

    #[test]
    fn allows_only_the_provider_world_and_minimal_wasi() {
        for ok in [
            "wasi:io/streams@0.2.6",
            "wasi:cli/environment@0.2.0",
            "aispend:provider/http@0.1.0",
            "wasi:random/random@0.2.3",
        ] {
            assert!(import_allowed(ok), "{ok}");
        }
        for bad in [
            "wasi:filesystem/preopens@0.2.6",
            "wasi:filesystem/types@0.2.0",
            "wasi:sockets/tcp@0.2.0",
            "wasi:http/outgoing-handler@0.2.0",
            "aispend:provider/http@0.2.0",
            "wasi:io/streams@0.3.0",
            "evil:thing/x",
        ] {
            assert!(!import_allowed(bad), "{bad}");
        }
    }
}
