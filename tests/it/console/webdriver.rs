//! A minimal WebDriver client (the W3C protocol over reqwest) driving
//! Debian's `chromium` headless through `chromedriver`: enough to sign in,
//! click, type, read pages and take screenshots.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: tokio::process::Child,
}

fn find_program(env: &str, candidates: &[&str]) -> Option<String> {
    std::env::var(env)
        .ok()
        .into_iter()
        .chain(candidates.iter().map(|c| c.to_string()))
        .find(|p| Path::new(p).exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium. `None` (with the reason
    /// printed) when they are not installed, except under `CI=true`, where
    /// the browser tests must run: then it panics.
    pub async fn start() -> Option<Browser> {
        let driver = find_program("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
        let chromium = find_program("CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            let why = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {why}");
            }
            eprintln!("skipping the browser test: {why}");
            return None;
        };
        let port = crate::common::free_port();
        let child = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        crate::common::eventually("chromedriver to be ready", Duration::from_secs(20), || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let v: Value = http
                    .get(format!("{base}/status"))
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                v["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-US"]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("a browser session")
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Some(Browser {
            http,
            base: format!("{base}/session/{session}"),
            _driver: child,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("webdriver answers");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "webdriver {path}: {status} {v}");
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The elements matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// The one element a selector names (the first).
    pub async fn find(&self, css: &str) -> String {
        self.all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element {css}"))
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), Some(json!({})))
            .await;
    }

    /// Clicks what submits a form or follows a link, and waits for the next
    /// page (a new document has a new root element).
    pub async fn click_through(&self, css: &str) {
        let before = self.find("html").await;
        self.click(css).await;
        crate::common::eventually(
            &format!("the page after clicking {css}"),
            Duration::from_secs(20),
            || async {
                let now = self.all("html").await.into_iter().next()?;
                let ready = self
                    .call(
                        reqwest::Method::POST,
                        "/execute/sync",
                        Some(json!({"script": "return document.readyState", "args": []})),
                    )
                    .await;
                (now != before && ready == "complete").then_some(())
            },
        )
        .await;
    }

    /// Replaces what a field holds with `text`, typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/clear"), Some(json!({})))
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The visible text of the page's body.
    pub async fn text(&self) -> String {
        let e = self.find("body").await;
        self.call(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn cookie(&self, name: &str) -> String {
        let v = self.call(reqwest::Method::GET, &format!("/cookie/{name}"), None).await;
        v["value"].as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the whole page (the window is made as tall as the page).
    pub async fn screenshot(&self, path: &Path) {
        self.screenshot_at(path, 1280).await;
    }

    /// The same, `width` pixels wide (390: a phone).
    pub async fn screenshot_at(&self, path: &Path, width: i64) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": 900})),
        )
        .await;
        let height = self
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": "return document.documentElement.scrollHeight", "args": []})),
            )
            .await
            .as_i64()
            .unwrap_or(900)
            .clamp(600, 3000);
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height + 140})),
        )
        .await;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": 1280, "height": 900})),
        )
        .await;
    }

    pub async fn quit(self) {
        // Drop ends the session.
    }
}

impl Drop for Browser {
    /// Ends the session, which closes Chromium, also when a test failed
    /// (killing chromedriver alone would leave the browser running). A
    /// blocking request of its own: Drop cannot await.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.base.strip_prefix("http://") else {
            return;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(host) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req = format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
    }
}
