//! Command-line interface.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "finpay-qris", version, about = "Finpay SNAP QRIS service for merchants")]
pub struct Cli {
    /// TOML configuration file (also FINPAY_QRIS_CONFIG). Environment variables win over it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration (and that the database is reachable and migrated) without starting.
    CheckConfig(CheckConfigArgs),
    /// Write an RSA-2048 key pair (PEM) and print the public key to register with Finpay.
    Keygen(KeygenArgs),
    /// Print the SNAP headers (and a curl command) for a request: for integrators and debugging.
    #[command(subcommand)]
    Sign(SignCommand),
    /// Run the Finpay simulator (a local stand-in for Finpay's SNAP QRIS API).
    Simulator(crate::simulator::SimulatorArgs),
    /// Explain refused signatures: the latest in the journal, or a saved request or curl command.
    Doctor(crate::doctor::DoctorArgs),
    /// Load generator: signed notifications against a running server.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Receive payment events: verify each (Standard Webhooks) and print it.
    Listen(crate::events::listen::ListenArgs),
}

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// Check the settings only; do not connect to the database.
    #[arg(long)]
    pub no_database: bool,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Directory for the key files.
    #[arg(long, default_value = "keys")]
    pub out_dir: PathBuf,
    /// File name prefix: NAME_private.pem and NAME_public.pem.
    #[arg(long, default_value = "merchant")]
    pub name: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum SignCommand {
    /// Headers for an access-token request: X-SIGNATURE = SHA256withRSA(clientId|X-TIMESTAMP).
    Token {
        #[arg(long)]
        client_id: String,
        /// PEM file (or inline PEM) of the signer's private key.
        #[arg(long)]
        private_key: String,
        /// Defaults to now in +07:00.
        #[arg(long)]
        timestamp: Option<String>,
        /// Base URL to put in the printed curl command.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        #[arg(long, default_value = "/v1.0/access-token/b2b")]
        path: String,
    },
    /// Headers for a notification (or any transactional SNAP request).
    Request {
        /// Request path as sent, with its query string if any.
        #[arg(long, default_value = "/v1.0/qr/qr-mpm-notify")]
        path: String,
        #[arg(long, default_value = "POST")]
        method: String,
        /// File with the exact body bytes to send (`-` for stdin).
        #[arg(long)]
        body_file: PathBuf,
        /// Bearer token (symmetric signature).
        #[arg(long)]
        token: Option<String>,
        /// Client secret for HMAC-SHA512 (symmetric).
        #[arg(long, env = "FINPAY_QRIS_SIGN_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Private key for SHA256withRSA (asymmetric, no token).
        #[arg(long)]
        private_key: Option<String>,
        #[arg(long)]
        partner_id: String,
        #[arg(long)]
        external_id: Option<String>,
        #[arg(long, default_value = "95221")]
        channel_id: String,
        #[arg(long)]
        timestamp: Option<String>,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}
