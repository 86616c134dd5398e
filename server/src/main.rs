//! The `aispend` binary.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    aispend::cli::main()
}
