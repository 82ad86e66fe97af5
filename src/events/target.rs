//! Which URLs may receive events: `https` unless `events.allow_http`, and no
//! loopback, link-local or private address unless
//! `events.allow_private_networks`. The URL is checked when an endpoint is
//! created or changed, and the addresses its host resolves to are checked
//! again at every delivery (by the resolver the sender's client uses), so a
//! name that later points inside the network is still refused.

use crate::config::EventSettings;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};

/// Longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// The URLs accepted, as the OpenAPI document states them (`events_model.rs`
/// repeats it as a literal; a test holds the two equal): http(s), a host
/// name of lowercase letters, digits and single hyphens, or an IPv4 address,
/// an optional port, path and query.
pub const URL_PATTERN: &str = r"^https?://([a-z][a-z0-9]*(-[a-z0-9]+)*(\.[a-z][a-z0-9]*(-[a-z0-9]+)*)*|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})(:([1-9][0-9]{0,3}|[1-5][0-9]{4}))?(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&-]*)?$";

fn well_formed(url: &str) -> bool {
    static SHAPE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    SHAPE
        .get_or_init(|| regex::Regex::new(URL_PATTERN).expect("URL_PATTERN is a valid regex"))
        .is_match(url)
}

/// Why `url` may not receive events, if it may not.
pub fn check_url(url: &str, s: &EventSettings) -> Result<reqwest::Url, String> {
    if url.len() > MAX_URL_CHARS {
        return Err(format!("at most {MAX_URL_CHARS} characters"));
    }
    if !well_formed(url) {
        return Err("must be http(s)://host[:port][/path][?query] with a lowercase host name or IPv4 address".into());
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if s.allow_http => {}
        "http" => return Err("must be https (http only with FINPAY_QRIS__EVENTS__ALLOW_HTTP=true)".into()),
        other => return Err(format!("scheme {other} is not http(s)")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not hold credentials".into());
    }
    let Some(host) = parsed.host() else {
        return Err("has no host".into());
    };
    if !s.allow_private_networks {
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
                return Err(private_message());
            }
            url::Host::Domain(_) => None,
        };
        if literal.is_some_and(is_private) {
            return Err(private_message());
        }
    }
    Ok(parsed)
}

fn private_message() -> String {
    "is a loopback, link-local or private address (allowed only with \
     FINPAY_QRIS__EVENTS__ALLOW_PRIVATE_NETWORKS=true)"
        .into()
}

/// Loopback, link-local, private, unique-local, unspecified or CGNAT.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Resolves names for the sender, dropping private addresses unless allowed.
#[derive(Debug, Clone)]
pub struct PublicResolver {
    pub allow_private_networks: bool,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private_networks;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow || !is_private(a.ip())).collect();
            if kept.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_http: bool, allow_private_networks: bool) -> EventSettings {
        let mut s = crate::config::Settings::load_from(None, Vec::new()).unwrap().events;
        s.allow_http = allow_http;
        s.allow_private_networks = allow_private_networks;
        s
    }

    #[test]
    fn resolved_private_addresses_are_recognised_in_both_families() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn https_to_a_public_host_is_accepted_by_default() {
        assert!(check_url("https://orders.example.com/finpay", &settings(false, false)).is_ok());
    }

    #[test]
    fn http_and_private_addresses_are_refused_unless_allowed() {
        let strict = settings(false, false);
        assert!(check_url("http://orders.example.com/", &strict)
            .unwrap_err()
            .contains("https"));
        for url in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://192.168.0.9/",
            "https://169.254.169.254/",
            "https://localhost/",
        ] {
            assert!(check_url(url, &strict).unwrap_err().contains("private"), "{url}");
        }
        assert!(check_url("http://127.0.0.1:9000/", &settings(true, true)).is_ok());
        assert!(check_url("ftp://orders.example.com/", &settings(true, true)).is_err());
        assert!(check_url("http://a*", &settings(true, true)).is_err());
        assert!(
            check_url("https://[::1]/", &settings(true, true)).is_err(),
            "IPv6 literals are not accepted"
        );
        assert!(check_url(
            "https://orders-api.example.com:8443/finpay/events?tenant=7",
            &settings(false, false)
        )
        .is_ok());
        assert!(check_url("https://user:pw@orders.example.com/", &strict).is_err());
    }
}
