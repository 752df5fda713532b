//! One warm request over HTTP (ureq): the body POSTed to
//! `{base}/api/v1/live/warm` with `X-API-Key`, and the answer read line by
//! line as it arrives, each line handed on at once. A request the service
//! refuses whole (4xx/5xx) is its status, code and message; a redirect is
//! not followed (the key would go with it: the operator says where). Knows
//! nothing of items or of what the operator sees.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use super::answer;
use super::Trouble;
use crate::args::Key;

/// The warm route, after the base URL.
pub const WARM_PATH: &str = "/api/v1/live/warm";
/// Longest wait to connect.
const CONNECT: Duration = Duration::from_secs(30);
/// Longest silence while reading an answer: the next line comes when an
/// item completes, which may take a generation or two, and a server's own
/// request limit is shorter (banatie-host's: 300 s).
const SILENCE: Duration = Duration::from_secs(600);

pub struct Client {
    agent: ureq::Agent,
    url: String,
    key: Key,
}

impl Client {
    /// A client of the service at `base` (`http://` or `https://`, any
    /// path prefix kept, a trailing `/` dropped).
    pub fn new(base: &str, key: Key) -> Result<Client, Trouble> {
        let base = base.trim().trim_end_matches('/');
        let lower = base.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) || base.contains(['?', '#']) {
            return Err(Trouble(format!(
                "--url must be the service's base URL, like https://img.example.com, not '{base}'"
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT))
            .timeout_per_read(Some(SILENCE))
            .user_agent(concat!("banatie/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Client { agent, url: format!("{base}{WARM_PATH}"), key })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// POST `body` and hand each line of the answer to `each` as it
    /// arrives; the count of lines read when the answer ended. `each`'s
    /// error stops the reading.
    pub fn warm(
        &self,
        body: &[u8],
        each: &mut dyn FnMut(answer::Line) -> Result<(), Trouble>,
    ) -> Result<usize, Trouble> {
        let response = self
            .agent
            .post(&self.url)
            .header("x-api-key", self.key.expose())
            .header("content-type", "application/json")
            .header("accept", "application/x-ndjson")
            .send(body)
            .map_err(|e| Trouble(format!("cannot reach {}: {e}", self.url)))?;
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = response.into_body();
        if status != 200 {
            let text =
                body.with_config().limit(64 * 1024).lossy_utf8(true).read_to_string().unwrap_or_default();
            return Err(refused(status, &text, location.as_deref()));
        }
        if !content_type.starts_with("application/x-ndjson") {
            return Err(Trouble(format!(
                "{} answered 200 as '{content_type}', not as application/x-ndjson: is --url a banatie-live service?",
                self.url
            )));
        }
        let mut reader = BufReader::new(body.into_reader());
        let (mut text, mut count) = (String::new(), 0);
        loop {
            text.clear();
            match reader.read_line(&mut text) {
                Ok(0) => return Ok(count),
                Ok(_) if text.trim().is_empty() => continue,
                Ok(_) => {
                    let line = answer::line(text.trim()).map_err(|why| {
                        Trouble(format!("the service answered a line this client cannot read ({why})"))
                    })?;
                    count += 1;
                    each(line)?;
                }
                Err(e) => {
                    return Err(Trouble(format!(
                        "the answer broke off after {count} items were answered: {e}"
                    )));
                }
            }
        }
    }
}

/// What a request refused whole says: its status, and the service's code
/// and message (or the start of whatever else it answered).
fn refused(status: u16, text: &str, location: Option<&str>) -> Trouble {
    if (300..400).contains(&status) {
        let to = location.unwrap_or("elsewhere");
        return Trouble(format!(
            "the service answered {status}, a redirect to {to}: give that base URL as --url (a key is never sent on)"
        ));
    }
    let said = serde_json::from_str(text).ok().and_then(|v| answer::error(&v));
    match said {
        Some((code, message)) => {
            Trouble(format!("the service refused the request: {status} {code}: {message}"))
        }
        None => {
            let start = super::item::clip(text.trim(), 200);
            Trouble(format!("the service refused the request: {status} {start}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_is_checked_and_the_warm_route_added() {
        let key = || "k".parse::<Key>().unwrap();
        assert_eq!(
            Client::new("https://img.example.com/", key()).unwrap().url(),
            "https://img.example.com/api/v1/live/warm"
        );
        assert_eq!(
            Client::new("http://127.0.0.1:3000/img", key()).unwrap().url(),
            "http://127.0.0.1:3000/img/api/v1/live/warm"
        );
        for bad in ["img.example.com", "ftp://x", "https://x/?a=1", ""] {
            let e = Client::new(bad, key()).err().unwrap();
            assert!(e.0.starts_with("--url must be"), "{bad}: {}", e.0);
        }
    }

    #[test]
    fn a_refusal_says_the_services_code_and_message() {
        let json = r#"{"error":{"code":"unauthorized","message":"missing or unknown API key"}}"#;
        assert_eq!(
            refused(401, json, None).0,
            "the service refused the request: 401 unauthorized: missing or unknown API key"
        );
        assert_eq!(
            refused(502, "<html>bad gateway</html>\n", None).0,
            "the service refused the request: 502 <html>bad gateway</html>"
        );
        assert!(refused(301, "", Some("https://img.example.com/api/v1/live/warm"))
            .0
            .contains("redirect to https://img.example.com"));
    }
}
