//! The sender never goes through a proxy named in the environment
//! (`HTTP_PROXY`, `ALL_PROXY`): a proxy would resolve the endpoint's name
//! itself, past the sender's refusal of private addresses.

use super::receiver::{Answer, Receiver};
use crate::common::*;
use crate::crash::{start_server_with, token, wait_ready};
use serde_json::Value;

async fn a_proxy_in_the_environment_is_not_used_to_deliver_events(b: Backend) {
    let endpoint = Receiver::start(vec![Answer::Status(200)]).await;
    let proxy = Receiver::start(vec![Answer::Status(200)]).await;
    let db = TestDb::new(b).await;
    let proxy_url = format!("http://{}", proxy.addr);
    let mut settings = super::configured_endpoint(endpoint.url());
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY"] {
        settings.push((var, proxy_url.clone()));
    }
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let port = free_port();
    let mut server = start_server_with(&db.url, port, &settings);
    wait_ready(&http, port).await;
    let tok = token(&http, port).await;
    let url = format!("http://127.0.0.1:{port}{NOTIFY_PATH}");
    let ext = unique_digits();
    let body = notify_body("INV-PROXY", "FP-PROXY", "00", "1000.00");
    let answer: Value = signed_notify(&http, &url, NOTIFY_PATH, &tok, &ext, &body, &now_ts())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["responseCode"], "2005200", "{answer}");

    let got = endpoint.wait_for(1).await;
    server.kill().unwrap();
    let _ = server.wait();
    assert!(got[0].body.contains("INV-PROXY"));
    assert!(
        proxy.received().is_empty(),
        "the proxy was asked: {:?}",
        proxy.received()
    );
}

on_both_backends!(a_proxy_in_the_environment_is_not_used_to_deliver_events);
