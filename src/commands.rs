//! What each subcommand does; `main` only parses and reports.

use crate::app::Application;
use crate::cli::{Command, KeygenArgs, SignCommand};
use crate::config::Settings;
use crate::snap::{body, keys, signature, timestamp};
use anyhow::{bail, Context};
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub async fn run(config: Option<&Path>, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::CheckConfig(args) => crate::check_config::run(config, !args.no_database).await,
        Command::Keygen(args) => keygen(&args),
        Command::Sign(cmd) => sign(cmd),
        Command::Simulator(args) => crate::simulator::run(args).await,
        Command::Doctor(args) => crate::doctor::run(config, args).await,
        Command::Loadgen(args) => crate::loadgen::run(args).await,
        Command::Listen(args) => crate::events::listen::run(args).await,
    }
}

async fn serve(config: Option<&Path>) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let settings = Settings::load(config)?;
    let traces = crate::telemetry::init_serving(&settings.log.format, &settings.log.level)?;
    let app = Application::build(settings).await?;
    let store = app.state().store.clone();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        c.cancel();
    });
    let served = app.run(cancel).await;
    // A task still holding a connection past the grace period is not waited for.
    if tokio::time::timeout(std::time::Duration::from_secs(5), store.close())
        .await
        .is_err()
    {
        tracing::warn!("the database's connections did not close within 5 s");
    }
    if let Some(t) = traces {
        // The SDK's shutdown blocks until its export thread is done.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    served
}

/// SIGTERM or Ctrl-C. The handlers are installed when this is called, not
/// when the future is first polled: a signal that comes while the service is
/// still starting then stops it cleanly instead of killing it.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let term = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    let received = |s: Option<Signal>| async move {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    async move {
        tokio::select! { _ = received(term) => {}, _ = received(interrupt) => {} }
    }
}

#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn migrate(config: Option<&Path>) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    crate::telemetry::init(&settings.log.format, &settings.log.level);
    let db = &settings.database;
    let url = db.url.expose();
    let timeout = command_timeout(db);
    let store = open_store(db).await?;
    if let Err(e) = store.migrate().await {
        return Err(crate::store::explain(url, "applying migrations to", &e, timeout).await);
    }
    store.close().await;
    println!("migrations applied to {}", crate::secret::redact_url(db.url.expose()));
    Ok(())
}

/// How long a one-off command waits for the database.
fn command_timeout(db: &crate::config::DatabaseSettings) -> std::time::Duration {
    std::time::Duration::from_secs(db.acquire_timeout_secs.max(5))
}

/// The store of a one-off command (two connections), or why it cannot be opened.
pub(crate) async fn open_store(
    db: &crate::config::DatabaseSettings,
) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    let url = db.url.expose();
    let timeout = command_timeout(db);
    match crate::store::connect(url, 2, timeout.as_secs()).await {
        Ok(store) => Ok(store),
        Err(e) => Err(crate::store::explain(url, "opening", &e, timeout).await),
    }
}

fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("creating {}", args.out_dir.display()))?;
    let private_path = args.out_dir.join(format!("{}_private.pem", args.name));
    let public_path = args.out_dir.join(format!("{}_public.pem", args.name));
    if !args.force && (private_path.exists() || public_path.exists()) {
        bail!(
            "{} or {} exists; pass --force to overwrite",
            private_path.display(),
            public_path.display()
        );
    }
    let key = keys::generate_private_key();
    let public_pem = keys::public_key_pem(&key.to_public_key());
    write_private(&private_path, keys::private_key_pem(&key).as_bytes())?;
    std::fs::write(&public_path, &public_pem)?;
    eprintln!("private key: {} (owner read/write only)", private_path.display());
    eprintln!("public key:  {}", public_path.display());
    eprintln!("Register this public key with Finpay:\n");
    print!("{public_pem}");
    Ok(())
}

fn write_private(path: &Path, pem: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(pem)?;
    Ok(())
}

fn read_pem(value: &str) -> anyhow::Result<String> {
    if value.contains("-----BEGIN") {
        Ok(value.to_string())
    } else {
        std::fs::read_to_string(value).with_context(|| format!("reading {value}"))
    }
}

fn sign(cmd: SignCommand) -> anyhow::Result<()> {
    let now = || timestamp::format_jakarta(chrono::Utc::now());
    match cmd {
        SignCommand::Token {
            client_id,
            private_key,
            timestamp: ts,
            url,
            path,
        } => {
            let key = keys::parse_private_key(&read_pem(&private_key)?)?;
            let ts = ts.unwrap_or_else(now);
            let to_sign = signature::token_string_to_sign(&client_id, &ts);
            let sig = signature::rsa_sign(&key, &to_sign);
            println!("# stringToSign: {to_sign}");
            println!(
                "Content-Type: application/json\nX-TIMESTAMP: {ts}\nX-CLIENT-KEY: {client_id}\nX-SIGNATURE: {sig}\n"
            );
            println!(
                "curl -sS -X POST '{url}{path}' -H 'Content-Type: application/json' -H 'X-TIMESTAMP: {ts}' \\\n  -H 'X-CLIENT-KEY: {client_id}' -H 'X-SIGNATURE: {sig}' \\\n  -d '{{\"grantType\":\"client_credentials\"}}'"
            );
        }
        SignCommand::Request {
            path,
            method,
            body_file,
            token,
            secret,
            private_key,
            partner_id,
            external_id,
            channel_id,
            timestamp: ts,
            url,
        } => {
            let bytes = if body_file.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                v
            } else {
                std::fs::read(&body_file).with_context(|| format!("reading {}", body_file.display()))?
            };
            let ts = ts.unwrap_or_else(now);
            let hash = body::body_hash(&bytes);
            let (to_sign, sig) = match (&token, &secret, &private_key) {
                (Some(t), Some(s), _) => {
                    let sts = signature::symmetric_string_to_sign(&method, &path, t, &hash, &ts);
                    let sig = signature::HmacKey::new(s.as_bytes()).sign(&sts);
                    (sts, sig)
                }
                (_, _, Some(k)) => {
                    let key = keys::parse_private_key(&read_pem(k)?)?;
                    let sts = signature::asymmetric_string_to_sign(&method, &path, &hash, &ts);
                    let sig = signature::rsa_sign(&key, &sts);
                    (sts, sig)
                }
                _ => bail!("give --token and --secret (symmetric) or --private-key (asymmetric)"),
            };
            let external_id = external_id.unwrap_or_else(|| {
                use rand::Rng;
                let mut r = rand::thread_rng();
                (0..20).map(|_| char::from(b'0' + r.gen_range(0..10u8))).collect()
            });
            println!("# body sha256 (minified): {hash}");
            println!("# stringToSign: {to_sign}");
            let mut hs = vec![
                ("Content-Type".to_string(), "application/json".to_string()),
                ("X-TIMESTAMP".into(), ts.clone()),
                ("X-SIGNATURE".into(), sig.clone()),
                ("X-PARTNER-ID".into(), partner_id.clone()),
                ("X-EXTERNAL-ID".into(), external_id.clone()),
                ("CHANNEL-ID".into(), channel_id.clone()),
            ];
            if let Some(t) = &token {
                hs.insert(1, ("Authorization".into(), format!("Bearer {t}")));
            }
            for (k, v) in &hs {
                println!("{k}: {v}");
            }
            let hflags: Vec<String> = hs.iter().map(|(k, v)| format!("-H '{k}: {v}'")).collect();
            println!(
                "\ncurl -sS -X {method} '{url}{path}' {} --data-binary @{}",
                hflags.join(" "),
                body_file.display()
            );
        }
    }
    Ok(())
}
