//! `paperscope` binary: parse arguments, set up logging, run, map errors to exit code 2.

use clap::{CommandFactory, FromArgMatches};
use paperscope::cli::{self, args::Cli};
use paperscope::embed::EmbedOptions;

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
    let mut command = Cli::command();
    // `--version` also says which embedding engine runs here: probing it opens oneDNN,
    // so only when asked.
    if std::env::args_os().any(|a| a == "--version") {
        if let Some(cap) = std::env::var("PAPERSCOPE_CPU")
            .ok()
            .and_then(|c| c.parse().ok())
        {
            let _ = paperscope::vector::set_cpu_cap(cap);
        }
        let engine = EmbedOptions::default()
            .describe()
            .unwrap_or_else(|e| e.to_string());
        let version = format!("{}\nembedding: {engine}", env!("CARGO_PKG_VERSION"));
        command = command.long_version(Box::leak(version.into_boxed_str()) as &str);
    }
    let args = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    if let Err(e) = paperscope::vector::set_cpu_cap(args.cpu) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    if let Err(e) = cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}
