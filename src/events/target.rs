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
/// repeats it as a literal; a test holds the two equal): http(s); a host
/// name of lowercase labels (letters, digits and inner hyphens, as punycode
/// has them; at most 63 characters each) whose last label starts with a
/// letter (so it cannot be read as an address), or an IPv4 address; an optional port; a path and a query of RFC 3986's characters,
/// percent-encoding included.
pub const URL_PATTERN: &str = r"^https?://(([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?|(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$";

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

/// Loopback, private, link-local, CGNAT, benchmarking, documentation,
/// reserved, multicast and unspecified addresses; in IPv6 also unique-local,
/// site-local, discard-only, documentation and Teredo, and an IPv4 address
/// carried inside an IPv6 one (mapped, translated, compatible, 6to4, NAT64),
/// judged as that IPv4 address.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 0
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || o[0] >= 240
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || matches!((o[0], o[1], o[2]), (192, 0, 2) | (198, 51, 100) | (203, 0, 113))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let o = v6.octets();
            let v4 = |at: usize| IpAddr::V4(std::net::Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]));
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
                || (s[..6] == [0; 6] && is_private(v4(12)))
                || (s[..6] == [0, 0, 0, 0, 0xffff, 0] && is_private(v4(12)))
                || s[..4] == [0x100, 0, 0, 0]
                || (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0xdb8))
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_private(v4(12)))
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || (s[0] == 0x2002 && is_private(v4(2)))
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
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:0a00:0001::1",
            "::10.0.0.1",
            "fec0::1",
            "ff02::1",
            "192.0.2.7",
            "203.0.113.9",
            "::ffff:0:a00:1",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "100::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
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

    #[test]
    fn ordinary_https_urls_are_accepted_and_lookalike_addresses_are_not() {
        let strict = settings(false, false);
        for url in [
            "https://hooks.example.com:60443/x",
            "https://1shop.example.com/hooks",
            "https://shop.example.com/webhooks/finpay?token=a%2Bb&at=10:00",
            "https://shop.example.com/a+b/(c)/~d;e,f@g",
            "https://xn--bcher-kva.example/hooks",
            "https://my--shop.example.com/hooks",
            format!("https://{}.example.com/", "a".repeat(63)).as_str(),
        ] {
            assert!(check_url(url, &strict).is_ok(), "{url}");
        }
        for url in [
            "https://hooks.example.com:65536/",
            "https://1.2.3/",
            "https://1.2.3.04/",
            "https://Hooks.example.com/",
            "https://shop.example.com/%zz",
            "https://shop.example.com/a b",
            "https://shop.example.com/#part",
            "https://-shop.example.com/",
            "https://shop-.example.com/",
            format!("https://{}.example.com/", "a".repeat(64)).as_str(),
        ] {
            assert!(check_url(url, &strict).is_err(), "{url}");
        }
    }
}
