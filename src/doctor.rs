//! `finpay-qris doctor`: explains refused signatures from the command line,
//! from the journal of refusals in the configured database, or from a request
//! someone captured (a raw HTTP request, or a curl command). Fails when
//! nothing explains a signature, so scripts can tell.

mod captured;

use crate::config::{env_name, Settings};
use crate::inbound::issued::RecentTokens;
use crate::inbound::suspect::{DoctorKeys, Route, Suspect};
use crate::store::{Refusal, RefusalFilter};
use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// A raw HTTP request saved to a file (`-`: standard input).
    #[arg(long, conflicts_with = "curl")]
    pub request: Option<PathBuf>,
    /// A file holding a curl command (`-`: standard input).
    #[arg(long)]
    pub curl: Option<PathBuf>,
    /// Without --request or --curl: how many of the latest refused signatures to show.
    #[arg(long, default_value_t = 1, conflicts_with_all = ["request", "curl"], value_parser = clap::value_parser!(i64).range(1..=200))]
    pub last: i64,
}

pub async fn run(config: Option<&Path>, args: DoctorArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let inbound = settings.inbound_credentials()?;
    let unconfigured = format!(
        "no inbound credentials are configured ({}, {}, and {} for HMAC notifications): \
         the doctor checks signatures with the service's own; run it with the service's \
         environment or --config",
        env_name("inbound.client_id"),
        env_name("inbound.public_key"),
        env_name("inbound.client_secret")
    );
    let finpay = settings.finpay_credentials()?;
    // A separate process knows no recently issued token: no `stale-token` here.
    let keys = DoctorKeys::new(
        inbound.as_ref(),
        finpay.as_ref(),
        &settings,
        Arc::new(RecentTokens::new(0)),
    );
    let captured = match (&args.request, &args.curl) {
        (Some(file), _) => Some(captured::parse_raw(&read(file)?).map_err(anyhow::Error::msg)?),
        (None, Some(file)) => {
            let text = String::from_utf8(read(file)?).context("the curl command is not UTF-8")?;
            Some(captured::parse_curl(&text).map_err(anyhow::Error::msg)?)
        }
        (None, None) => None,
    };
    match captured {
        Some(_) if inbound.is_none() => bail!("{unconfigured}"),
        Some(c) => {
            let route = route_of(&settings, &c.path, &c.headers);
            let body = Bytes::from(c.body);
            let Some(suspect) =
                Suspect::from_request(route, settings.inbound.signature, &c.path, &c.headers, Some(&body))
            else {
                bail!("the request has no X-TIMESTAMP, X-SIGNATURE, X-CLIENT-KEY (token) or bearer token (notify): nothing to check");
            };
            let d = keys.diagnose(&suspect);
            print_findings(
                &d.dialects.iter().map(|x| x.id().to_string()).collect::<Vec<_>>(),
                &d.explanation,
            );
            if d.dialects.is_empty() && !d.valid_as_received {
                bail!("no known dialect explains this signature");
            }
            Ok(())
        }
        None => {
            // The journal keeps what was found at receipt; only a refusal
            // not diagnosed then needs the credentials here.
            let keys = match inbound {
                Some(_) => Some(&keys),
                None => {
                    eprintln!("note: {unconfigured}; refusals not diagnosed when received are not checked again");
                    None
                }
            };
            from_journal(&settings, keys, args.last).await
        }
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    }
    Ok(bytes)
}

/// The token route by its path, or by its headers (a token request names
/// `X-CLIENT-KEY`, a notification `X-PARTNER-ID`).
fn route_of(settings: &Settings, path: &str, headers: &HeaderMap) -> Route {
    let bare = path.split('?').next().unwrap_or(path);
    if bare == settings.inbound.token_path
        || (headers.contains_key("x-client-key") && !headers.contains_key("x-partner-id"))
    {
        Route::Token
    } else {
        Route::Notify
    }
}

async fn from_journal(settings: &Settings, keys: Option<&DoctorKeys>, last: i64) -> anyhow::Result<()> {
    let url = settings.database.url.expose();
    // Reading the journal must not leave an empty database behind.
    if let Some(file) = crate::check_config::sqlite_file(url).filter(|f| !f.exists()) {
        bail!(
            "the database file {} does not exist ({} = {}): there is no journal to read",
            file.display(),
            env_name("database.url"),
            crate::secret::redact_url(url)
        );
    }
    let store = crate::commands::open_store(&settings.database).await?;
    let filter = RefusalFilter {
        reason: Some("invalid_signature".into()),
        limit: last,
        ..Default::default()
    };
    let rows = store
        .list_refusals(&filter)
        .await
        .context("reading the journal of refusals (is the database migrated?)")?;
    if rows.is_empty() {
        bail!("the journal holds no refused signature");
    }
    let mut unexplained = 0;
    for r in &rows {
        println!(
            "{} {} {} {} {}: {}{}",
            r.id,
            r.received_at.to_rfc3339(),
            r.route,
            r.path,
            r.response_code,
            r.message,
            r.sender.as_deref().map(|s| format!(" (from {s})")).unwrap_or_default()
        );
        let (dialects, text) = match (&r.dialects, &r.diagnosis) {
            (Some(d), Some(text)) => (d.0.clone(), text.clone()),
            _ => match keys
                .ok_or("the service's secrets are not set here")
                .and_then(|keys| again(settings, keys, r))
            {
                Ok(d) => (d.dialects.iter().map(|x| x.id().to_string()).collect(), d.explanation),
                Err(why) => (
                    Vec::new(),
                    format!(
                        "Not diagnosed when received (more refusals than the doctor's budget), nor now: \
                         {why}. Capture the request and run `finpay-qris doctor --request FILE`."
                    ),
                ),
            },
        };
        if dialects.is_empty() {
            unexplained += 1;
        }
        print_findings(&dialects, &text);
        println!();
    }
    if unexplained > 0 {
        bail!(
            "{unexplained} of {} refused signatures have no known explanation",
            rows.len()
        );
    }
    Ok(())
}

/// Diagnoses a journaled refusal that was not diagnosed when received: only
/// possible without a token (RSA) and with the whole body kept.
/// The doctor's finding on a journaled refusal, or why there can be none.
fn again(settings: &Settings, keys: &DoctorKeys, r: &Refusal) -> Result<crate::snap::doctor::Diagnosis, &'static str> {
    let body = r.body.clone().unwrap_or_default();
    if body.len() as i64 != r.body_bytes {
        return Err("only the start of its body was kept (`REFUSALS__BODY_LIMIT_BYTES`)");
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &r.headers.0 {
        let (Ok(name), Some(value)) = (HeaderName::from_bytes(name.as_bytes()), value.as_str()) else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    let route = if r.route == "token" {
        Route::Token
    } else {
        Route::Notify
    };
    let suspect = Suspect::from_request(
        route,
        settings.inbound.signature,
        &r.path,
        &headers,
        Some(&Bytes::from(body)),
    )
    .ok_or("it is not a signature this service checks")?;
    if suspect.token.is_some() {
        return Err("an HMAC notification is signed with its bearer token, which is not stored");
    }
    Ok(keys.diagnose(&suspect))
}

fn print_findings(dialects: &[String], explanation: &str) {
    if dialects.is_empty() {
        println!("  dialects: none");
    } else {
        println!("  dialects: {}", dialects.join(", "));
    }
    println!("  {explanation}");
}
