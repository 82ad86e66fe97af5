//! A refused signature as the doctor (`snap::doctor`) takes it, and the
//! secrets and keys it is tried against: the inbound ones, the ones
//! configured for calling Finpay (a sender that swapped them), and the tokens
//! this process issued recently. Used by the journal's writer and by
//! `finpay-qris doctor`.

use super::issued::RecentTokens;
use crate::config::{FinpayCredentials, InboundCredentials, SignatureMode};
use crate::snap::doctor::{self, Diagnosis, Keys, Refused, Signed};
use crate::snap::signature::{HmacKey, MacEncoding};
use axum::body::Bytes;
use axum::http::HeaderMap;
use rsa::RsaPublicKey;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Token,
    Notify,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Token => "token",
            Route::Notify => "notify",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    HmacNotification,
    RsaNotification,
    TokenRequest,
}

/// What a refused signature was over. Holds the bearer token in memory only,
/// for the doctor; `Debug` does not show it.
#[derive(Clone)]
pub struct Suspect {
    pub scheme: Scheme,
    pub path: String,
    /// `X-Forwarded-Host` (a proxy's public name) and `Host`.
    pub hosts: Vec<String>,
    pub token: Option<String>,
    pub client_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
}

impl fmt::Debug for Suspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suspect")
            .field("scheme", &self.scheme)
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Suspect {
    /// From a refused request; `None` when a header the doctor needs is absent.
    pub fn from_request(
        route: Route,
        mode: SignatureMode,
        path: &str,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> Option<Self> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let token = header("authorization").and_then(|a| super::headers::bearer_token(&a).map(str::to_string));
        let scheme = match (route, mode) {
            (Route::Token, _) => Scheme::TokenRequest,
            (Route::Notify, SignatureMode::Symmetric) => Scheme::HmacNotification,
            (Route::Notify, SignatureMode::Asymmetric) => Scheme::RsaNotification,
        };
        let client_id = match route {
            Route::Token => header("x-client-key")?,
            Route::Notify => header("x-partner-id").unwrap_or_default(),
        };
        Some(Self {
            scheme,
            path: path.to_string(),
            hosts: ["x-forwarded-host", "host"].into_iter().filter_map(header).collect(),
            token: if scheme == Scheme::HmacNotification {
                Some(token?)
            } else {
                None
            },
            client_id,
            timestamp: header("x-timestamp")?,
            signature: header("x-signature")?,
            body: match route {
                Route::Token => Bytes::new(),
                Route::Notify => body?.clone(),
            },
        })
    }
}

/// The secrets and keys a refused signature is tried against.
pub struct DoctorKeys {
    hmac: Option<HmacKey>,
    public_keys: Vec<RsaPublicKey>,
    other_hmac: Vec<(HmacKey, &'static str)>,
    other_public_keys: Vec<(RsaPublicKey, &'static str)>,
    path_prefixes: Vec<String>,
    encoding: MacEncoding,
    recent: Arc<RecentTokens>,
}

impl DoctorKeys {
    pub fn new(
        inbound: Option<&InboundCredentials>,
        finpay: Option<&FinpayCredentials>,
        settings: &crate::config::Settings,
        recent: Arc<RecentTokens>,
    ) -> Self {
        Self {
            hmac: inbound.and_then(|c| c.hmac.clone()),
            public_keys: inbound.map(|c| c.public_keys.clone()).unwrap_or_default(),
            other_hmac: finpay
                .map(|f| (f.hmac.clone(), "finpay.client_secret (the secret for calling Finpay)"))
                .into_iter()
                .collect(),
            other_public_keys: finpay
                .map(|f| {
                    (
                        f.private_key.to_public_key(),
                        "finpay.private_key (the merchant's own key)",
                    )
                })
                .into_iter()
                .collect(),
            path_prefixes: settings.refusals.path_prefixes.clone(),
            encoding: settings.inbound.hmac_encoding,
            recent,
        }
    }

    /// Runs the doctor (CPU only: about a thousand HMACs or hashes with the
    /// default settings, a few thousand with every recent token kept).
    pub fn diagnose(&self, s: &Suspect) -> Diagnosis {
        let earlier = self.recent.snapshot();
        let hosts: Vec<&str> = s.hosts.iter().map(String::as_str).collect();
        let signed = match s.scheme {
            Scheme::HmacNotification => Signed::HmacNotification {
                path: &s.path,
                hosts: &hosts,
                token: s.token.as_deref().unwrap_or_default(),
                body: &s.body,
            },
            Scheme::RsaNotification => Signed::RsaNotification {
                path: &s.path,
                hosts: &hosts,
                body: &s.body,
            },
            Scheme::TokenRequest => Signed::TokenRequest {
                client_id: &s.client_id,
            },
        };
        let keys = Keys {
            hmac: self.hmac.iter().collect(),
            other_hmac: self.other_hmac.iter().map(|(k, l)| (k, *l)).collect(),
            public_keys: self.public_keys.iter().collect(),
            other_public_keys: self.other_public_keys.iter().map(|(k, l)| (k, *l)).collect(),
            earlier_tokens: earlier.iter().map(String::as_str).collect(),
            path_prefixes: &self.path_prefixes,
            hmac_encoding: Some(self.encoding),
        };
        let refused = Refused {
            signed,
            timestamp: &s.timestamp,
            signature: &s.signature,
        };
        doctor::diagnose(&refused, &keys)
    }
}
