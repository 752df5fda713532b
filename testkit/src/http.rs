//! The test client: ureq, statuses are values not errors, bounded in time.

use std::time::Duration;

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent()
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of a JSON error body, after checking the error contract.
    pub fn error_code(&self) -> String {
        assert_eq!(self.header("cache-control"), Some("no-store"), "errors are never cached");
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()["error"]["code"].as_str().expect("error.code").to_string()
    }
}

/// (method, path, status) of every exchange `send` made, for the check that
/// docs/openapi.yaml describes all of them.
static OBSERVED: std::sync::Mutex<Vec<(String, String, u16)>> = std::sync::Mutex::new(Vec::new());

pub fn observed() -> Vec<(String, String, u16)> {
    OBSERVED.lock().unwrap().clone()
}

/// Every credential the tests sent or were given (API keys, bearer tokens,
/// signing secrets, signatures), for the whole-run check that no log holds
/// one.
static SECRETS: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Note a credential (shorter than 8 bytes: too short to find reliably).
pub fn note_secret(secret: &str) {
    if secret.len() >= 8 {
        SECRETS.lock().unwrap().insert(secret.to_string());
    }
}

pub fn secrets() -> Vec<String> {
    SECRETS.lock().unwrap().iter().cloned().collect()
}

/// What in an exchange is secret: the key and bearer headers, a URL's
/// `sig`, the keys and secrets a JSON answer hands out, signed URLs in it.
fn note_secrets(url: &str, headers: &[(&str, &str)], body: &[u8]) {
    for (name, value) in headers {
        match name.to_ascii_lowercase().as_str() {
            "x-api-key" => note_secret(value),
            "authorization" => note_secret(value.trim_start_matches("Bearer ")),
            _ => {}
        }
    }
    note_signatures(url);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        note_json(&value);
    }
}

fn note_signatures(text: &str) {
    for part in text.split(['?', '&', '"']).filter_map(|p| p.strip_prefix("sig=")) {
        note_secret(part);
    }
}

fn note_json(value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("api_key" | "signing_secret" | "admin_token", serde_json::Value::String(s)) => {
                        note_secret(s)
                    }
                    (_, serde_json::Value::String(s)) => note_signatures(s),
                    _ => note_json(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(note_json),
        _ => {}
    }
}

fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split('?').next().unwrap_or("/").to_string()
}

pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let headers_sent = headers;
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    let request = builder.body(body.to_vec()).unwrap();
    let mut resp = agent().run(request).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        resp.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap()
    };
    observe(method, url, status, headers_sent, &body);
    Reply { status, headers, body }
}

/// Note an exchange made by another client (`stream`): for the check against
/// docs/openapi.yaml and the secrets it carried.
pub fn observe(method: &str, url: &str, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    OBSERVED.lock().unwrap().push((method.to_string(), path_of(url), status));
    note_secrets(url, headers, body);
}
