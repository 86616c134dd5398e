//! `aispend plugins list` and `aispend plugins inspect FILE`, run as the binary.

use aispend::plugins::bundled::BUILD_DIR;
use std::process::Command;

fn aispend(args: &[&str], data_dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_aispend"))
        .args(args)
        .env("AISPEND_DATA_DIR", data_dir)
        .env_remove("AISPEND_PLUGIN_DIR")
        .env_remove("AISPEND_PLUGIN_ALLOW_HOSTS")
        .output()
        .expect("running aispend");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn plugins_list_shows_the_bundled_plugins() {
    let data = tempfile::tempdir().unwrap();
    let (ok, out) = aispend(&["plugins", "list"], data.path());
    assert!(ok, "{out}");
    for line in [
        "openai ",
        "anthropic ",
        "github-copilot ",
        "groq ",
        "perplexity ",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(line) && l.contains("bundled")),
            "{line} in {out}"
        );
    }
    assert!(out.contains("api.openai.com"), "{out}");
    assert!(out.contains("manual-entry"), "{out}");
}

#[test]
fn plugins_list_fails_on_a_plugin_that_does_not_load() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{BUILD_DIR}/aispend_fixture_reads_files.wasm"),
        dir.path().join("reads.wasm"),
    )
    .unwrap();
    std::fs::write(dir.path().join("garbage.wasm"), b"not wasm").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_aispend"))
        .args(["plugins", "list", "--plugin-dir"])
        .arg(dir.path())
        .env("AISPEND_DATA_DIR", data.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        out.contains("reads") && out.contains("NOT LOADED") && out.contains("wasi:filesystem"),
        "{out}"
    );
    assert!(
        out.contains("garbage") && out.contains("not a valid WebAssembly component"),
        "{out}"
    );
}

#[test]
fn inspect_prints_metadata_and_imports() {
    let data = tempfile::tempdir().unwrap();
    let example = format!("{BUILD_DIR}/aispend_plugin_example.wasm");
    let (ok, out) = aispend(&["plugins", "inspect", &example], data.path());
    assert!(ok, "{out}");
    assert!(out.contains("sdk version: 0.1.0"), "{out}");
    assert!(out.contains("id:          example-ai"), "{out}");
    assert!(out.contains("hosts:       api.example-ai.test"), "{out}");
    assert!(
        out.contains("allowed  aispend:provider/http@0.1.0"),
        "{out}"
    );
    assert!(out.contains("verdict:     OK"), "{out}");

    let refused = format!("{BUILD_DIR}/aispend_fixture_reads_files.wasm");
    let (ok, out) = aispend(&["plugins", "inspect", &refused], data.path());
    assert!(!ok);
    assert!(out.contains("REFUSED  wasi:filesystem/preopens"), "{out}");
    assert!(out.contains("verdict:     REFUSED"), "{out}");
}
