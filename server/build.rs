//! Builds the bundled provider plugins and embeds them in the binary.
//!
//! `plugins/` is a cargo workspace of its own (the plugins, the SDK, the example plugin
//! and the sandbox test fixtures), built here for `wasm32-wasip2` with a nested
//! `cargo build` into its own target directory (sharing the outer one deadlocks). The
//! bundled plugins' `.wasm` files are copied to `OUT_DIR` and listed in a generated
//! `include_bytes!` table; the fixtures are never embedded, tests load them from the
//! directory exported as `AISPEND_PLUGIN_BUILD_DIR`.
//!
//! It also builds the web dashboard (`web/`, a Vite + TypeScript project): `npm ci`
//! when `web/node_modules` is missing or older than the lockfile, then `npm run build`
//! (which checks every GraphQL document against `schema.graphql` and bundles) into
//! `OUT_DIR/web`; the files are listed in a generated `include_bytes!` table that
//! `http/web.rs` serves at `/`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bundled plugins: provider id and the crate's artifact name.
const BUNDLED: &[(&str, &str)] = &[
    ("openai", "aispend_plugin_openai"),
    ("anthropic", "aispend_plugin_anthropic"),
    ("github-copilot", "aispend_plugin_github_copilot"),
    ("groq", "aispend_plugin_groq"),
    ("perplexity", "aispend_plugin_perplexity"),
];

/// Plugin workspace folders whose changes require a rebuild (never `plugins/` itself:
/// its `target/` would retrigger every build).
const WATCHED: &[&str] = &[
    "plugins/Cargo.toml",
    "plugins/Cargo.lock",
    "plugins/openai",
    "plugins/anthropic",
    "plugins/github-copilot",
    "plugins/groq",
    "plugins/perplexity",
    "plugins/example",
    "plugins/fixtures",
    "plugin-sdk",
    "rust-toolchain.toml",
];

const TARGET: &str = "wasm32-wasip2";

/// Web project files whose changes require a rebuild of the dashboard (never
/// `web/node_modules`, nor `web/generated`, which the build itself writes).
const WEB_WATCHED: &[&str] = &[
    "web/src",
    "web/index.html",
    "web/package.json",
    "web/package-lock.json",
    "web/tsconfig.json",
    "web/vite.config.ts",
    "schema.graphql",
];

fn main() {
    if let Err(e) = run() {
        panic!("building the bundled plugins failed: {e}");
    }
    if let Err(e) = build_web() {
        panic!("building the web dashboard (web/) failed: {e}");
    }
}

/// `npm ci` when needed, `npm run build` into `OUT_DIR/web`, and the embedded table.
fn build_web() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("the server crate has no parent folder")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    for path in WEB_WATCHED {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=NPM");
    let web = root.join("web");
    let npm = env::var("NPM").unwrap_or_else(|_| "npm".into());
    let version = Command::new(&npm).arg("--version").output();
    if !matches!(&version, Ok(o) if o.status.success()) {
        return Err(format!(
            "`{npm}` was not found: the dashboard is built with Node.js 20 or later and npm \
             (install them, e.g. `apt-get install nodejs npm`, or set NPM to the npm binary)"
        ));
    }
    let installed = web.join("node_modules/.package-lock.json");
    let stale = match (
        fs::metadata(&installed).and_then(|m| m.modified()),
        fs::metadata(web.join("package-lock.json")).and_then(|m| m.modified()),
    ) {
        (Ok(installed), Ok(lock)) => installed < lock,
        _ => true,
    };
    if stale {
        npm_run(&npm, &web, &["ci", "--no-audit", "--no-fund"])?;
    }
    let dist = out_dir.join("web");
    let dist_arg = dist.to_string_lossy().into_owned();
    npm_run(
        &npm,
        &web,
        &["run", "build", "--", "--outDir", &dist_arg, "--emptyOutDir"],
    )?;

    let mut files = vec![];
    collect_files(&dist, &mut files)?;
    files.sort();
    let mut table = String::from(
        "/// The dashboard's built files: URL path and bytes, built from `web/`.\n\
         pub static WEB_ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for file in files {
        let relative = file
            .strip_prefix(&dist)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .replace('\\', "/");
        table.push_str(&format!(
            "    (\"/{relative}\", include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    table.push_str("];\n");
    fs::write(out_dir.join("web_assets.rs"), table).map_err(|e| e.to_string())?;
    Ok(())
}

fn npm_run(npm: &str, web: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new(npm)
        .args(args)
        .current_dir(web)
        .output()
        .map_err(|e| format!("running {npm}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`npm {}` in web/ failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("the server crate has no parent folder")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    for path in WATCHED {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }

    let target_dir = outer_target_dir(&out_dir)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    ensure_wasm_target()?;

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--workspace",
            "--target",
            TARGET,
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(root.join("plugins"));
    // Host settings of the outer build must not leak into the wasm build: host linker
    // flags break the wasm link, and clippy's wrapper would lint the plugins.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        command.env_remove(var);
    }
    let output = command
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build --target {TARGET}` of plugins/ failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let built = target_dir.join(TARGET).join("release");
    let mut table = String::from(
        "/// The bundled plugins: provider id and component bytes, built from `plugins/`.\n\
         pub static BUNDLED: &[(&str, &[u8])] = &[\n",
    );
    for (id, artifact) in BUNDLED {
        let from = built.join(format!("{artifact}.wasm"));
        let to = out_dir.join(format!("{id}.wasm"));
        fs::copy(&from, &to).map_err(|e| format!("copying {}: {e}", from.display()))?;
        table.push_str(&format!(
            "    ({id:?}, include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{id}.wasm\"))),\n"
        ));
    }
    table.push_str("];\n");
    fs::write(out_dir.join("bundled_plugins.rs"), table).map_err(|e| e.to_string())?;
    println!(
        "cargo:rustc-env=AISPEND_PLUGIN_BUILD_DIR={}",
        built.display()
    );
    Ok(())
}

/// The outer build's target directory: the nearest ancestor of `OUT_DIR` that cargo
/// marked with `CACHEDIR.TAG`.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// Installs the wasm target through rustup when the toolchain lacks it (rustup does
/// not always install the targets `rust-toolchain.toml` lists for a toolchain that is
/// already present), so a fresh clone builds with nothing installed by hand.
fn ensure_wasm_target() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc}: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).is_dir() {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let status = rustup.status().map_err(|e| {
        format!("the {TARGET} target is not installed and rustup could not be run ({e}); install it with `rustup target add {TARGET}`")
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`rustup target add {TARGET}` failed; install the target by hand"
        ))
    }
}
