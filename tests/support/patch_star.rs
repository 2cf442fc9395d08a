//! A client's merge patch under `If-Match: *`, shared by the test files
//! that race such patches against each other.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, IF_MATCH};
use serde_json::Value;

/// Sends `patch` to `url` as a merge patch under `If-Match: *` until it is
/// applied (200), sending it again after each 409 (the server lost every
/// attempt to other writes), up to 100 times. Any other answer panics.
pub async fn patch_star(http: &reqwest::Client, url: &str, patch: &Value) {
    let mut busy = 0;
    loop {
        let res = http
            .patch(url)
            .header(IF_MATCH, "*")
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PATCH {url}: {e}"));
        match res.status() {
            StatusCode::OK => return,
            StatusCode::CONFLICT if busy < 100 => {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            status => {
                let text = res.text().await.unwrap_or_default();
                panic!("PATCH {url} {patch}: {status} {text}");
            }
        }
    }
}
