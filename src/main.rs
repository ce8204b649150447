//! `paperscope` binary: parse arguments, set up logging, run, map the outcome to an exit
//! status: 0 success (also when stdout is closed early, as by `| head`), 1 a failure while
//! running, 2 a usage error (clap's own, or a flag value found unusable later).

use clap::{CommandFactory, FromArgMatches};
use paperscope::cli::{self, args::Cli};
use paperscope::embed::EmbedOptions;
use std::io::IsTerminal;
use std::process::ExitCode;

// mimalloc: the embedder allocates and frees large activation buffers per layer; the
// system allocator returned them to the kernel each time (a third of CPU time was page
// faults, see shared/notes), mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Colours only for a person at a terminal, and never when NO_COLOR is set
    // (no-color.org: present and not empty): log files and pipes get plain text.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PAPERSCOPE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
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
    // Exits 2 for a usage error, 0 for --help and --version.
    let args = Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    // A level this CPU lacks is a usage error, like an unknown one.
    if let Err(e) = paperscope::vector::set_cpu_cap(args.cpu) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`paperscope embed | head -1`): it has what it wanted.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", chain_text(&e));
            ExitCode::from(if cli::is_usage_error(&e) { 2 } else { 1 })
        }
    }
}

/// Whether writing stdout failed because its reader closed it (EPIPE; Rust ignores
/// SIGPIPE, so writes fail instead of killing the process).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |kind| kind == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| broken(io.kind()))
            // serde_json keeps the io::Error inside, not as a source.
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(broken)
    })
}

/// The error and its causes joined with ": ", leaving out a cause that the message before
/// it already contains (our error enums put their source into their own message, so
/// `{:#}` would print an OS error twice).
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if !previous.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        previous = message;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithSource {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let said = io.to_string();
        let e = anyhow::Error::new(WithSource {
            path: "/x/meta.json",
            source: io,
        })
        .context("opening index /x");
        let text = chain_text(&e);
        assert_eq!(text, format!("opening index /x: /x/meta.json: {said}"));
        assert_eq!(text.matches(&said).count(), 1, "{text}");
        // A cause not in the message before it is kept.
        let e = anyhow::anyhow!("disk full").context("writing the index");
        assert_eq!(chain_text(&e), "writing the index: disk full");
    }

    #[test]
    fn a_closed_stdout_is_recognised_through_context_and_serde_json() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(
            &anyhow::Error::new(pipe()).context("writing")
        ));
        let json = serde_json::Error::io(pipe());
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
    }
}
