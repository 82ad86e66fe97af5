use clap::Parser;
use finpay_qris::cli::{Cli, Command};
use std::process::ExitCode;

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
