use clap::Parser;
use finpay_qris::cli::{Cli, Command};
use std::process::ExitCode;

// Every request allocates dozens of small, short-lived buffers (headers, body,
// JSON, the audit record); glibc's malloc was about a sixth of the server's CPU
// under load (perf, bench/run.sh). mimalloc's thread-local free lists do the same
// work for less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match finpay_qris::commands::run(cli.config.as_deref(), cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("finpay-qris: {e:#}");
            ExitCode::FAILURE
        }
    }
}
