//! The `aispend` binary.
#![forbid(unsafe_code)]

/// mimalloc: GraphQL input handling allocates heavily (a 10,000-event batch is a tree
/// of small values); the system allocator spent a quarter of ingest time in
/// malloc/free. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    aispend::cli::main()
}
