//! A console user in tests: a session cookie, the CSRF token the pages
//! carry, and forms posted the way a browser posts them.
#![allow(dead_code)]

use crate::common::{self, Backend, TestApp};

/// Keys of the console tests: `finance` operates, `support` only reads.
pub const READ_KEY: &str = "read-only-key-0123456789abcdef01234567";

pub async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, roles_env).await
}

pub fn roles_env(env: &mut Vec<(String, String)>) {
    common::set_env(env, "FINPAY_QRIS__API__KEYS", &format!("finance:{}", common::API_KEY));
    common::set_env(env, "FINPAY_QRIS__API__READ_KEYS", &format!("support:{READ_KEY}"));
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// The CSRF token of this page's forms.
    pub fn csrf(&self) -> Option<String> {
        let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#).unwrap();
        re.captures(&self.body).map(|c| c[1].to_string())
    }
}

pub struct Console {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", finpay_qris::console::payments::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn page(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Page {
        status,
        headers,
        body: resp.text().await.unwrap(),
    }
}

/// Posts the sign-in form with `key` (and `extra` headers).
pub async fn sign_in_raw(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> Page {
    sign_in_form(app, &[("key", key)], extra).await
}

/// Posts the sign-in form with these fields and headers.
pub async fn sign_in_form(app: &TestApp, fields: &[(&str, &str)], extra: &[(&str, &str)]) -> Page {
    let mut req = client()
        .post(app.api_url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    page(req.send().await.unwrap()).await
}

impl Console {
    pub async fn sign_in(app: &TestApp, key: &str) -> Console {
        let signed = sign_in_raw(app, key, &[]).await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        let set = signed.header("set-cookie");
        let cookie = set.split(';').next().unwrap().to_string();
        let mut c = Console {
            http: client(),
            base: format!("http://{}", app.internal),
            cookie,
            csrf: String::new(),
        };
        let home = c.get("/console").await;
        assert_eq!(home.status, 200, "{}", home.body);
        c.csrf = home.csrf().expect("pages carry the CSRF token");
        c
    }

    pub async fn get(&self, path: &str) -> Page {
        page(
            self.http
                .get(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `fields` as a form (no CSRF token added).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        page(
            self.http
                .post(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(fields))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `fields` with this session's CSRF token.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }
}

/// A payment flagged by a notification whose amount contradicts it.
pub async fn flagged_payment(app: &TestApp) -> finpay_qris::store::Payment {
    let p = crate::api::support::insert_payment(app, 1_000_000).await;
    let p = crate::api::support::attach_qr(app, &p, "00020101021226").await;
    let token = app.token().await;
    let body = common::notify_body(
        p.partner_reference_no.as_deref().unwrap(),
        p.reference_no.as_deref().unwrap(),
        "00",
        "999.00",
    );
    let (status, answer) = app.notify(&token, &common::unique_digits(), &body).await;
    assert_eq!(status, 200, "{answer}");
    let p = common::status_of(app, &p.id).await;
    assert!(p.flagged.is_some(), "a contradicting amount flags the payment");
    p
}
