//! `paperscope` binary: parse arguments, set up logging, run, map errors to exit code 2.

use clap::Parser;
use paperscope::cli::{self, args::Cli};

// mimalloc: the embedder allocates and frees large activation buffers per layer; the
// system allocator returned them to the kernel each time (a third of CPU time was page
// faults, see shared/notes), mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAPERSCOPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli::run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
