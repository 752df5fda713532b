//! The plain input: one item a line. A line that starts with `/`, `http://`
//! or `https://` is a live URL (`url::live_item`); any other is a prompt;
//! blank lines and `#` comments are skipped. Every line is kept, repeats
//! too: the file is the operator's list (the service makes a repeated image
//! once and answers `cached` after).

use super::item::{clip, Item};
use super::url::live_item;

/// What is wrong with the input, and where (1-based line).
#[derive(Debug, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The items of `text`, or the first line that is none.
pub fn items(text: &str) -> Result<Vec<Item>, BadLine> {
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| BadLine { line: n + 1, reason };
        if looks_like_url(line) {
            match live_item(line) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => {
                    return Err(bad(format!(
                        "'{}' is not a live URL (…/api/v1/live/generate?… or …/cdn/PROJECT/live/SCOPE?…)",
                        clip(line, 80)
                    )))
                }
                Err(reason) => return Err(bad(reason)),
            }
        } else {
            items.push(Item::prompt(line));
        }
    }
    Ok(items)
}

fn looks_like_url(line: &str) -> bool {
    let lower = |n: usize| line.get(..n).map(str::to_ascii_lowercase);
    line.starts_with('/') || lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prompts_urls_comments_and_blanks() {
        let text = "\u{feff}# the landing page\n\
                    a red fox in the snow\n\
                    \n\
                    \t  a lighthouse at dusk  \n\
                    /api/v1/live/generate?prompt=a+lighthouse&w=384&format=avif\n\
                    https://img.example.com/cdn/acme/live/hero?prompt=a+hero&ref=%40logo&ref=abc\n\
                    a red fox in the snow\n";
        let got: Vec<_> = items(text).unwrap().iter().map(Item::to_json).collect();
        assert_eq!(
            got,
            [
                json!({"prompt": "a red fox in the snow"}),
                json!({"prompt": "a lighthouse at dusk"}),
                json!({"prompt": "a lighthouse", "w": "384", "format": "avif"}),
                json!({"prompt": "a hero", "ref": ["@logo", "abc"], "scope": "hero"}),
                json!({"prompt": "a red fox in the snow"}),
            ]
        );
    }

    #[test]
    fn a_url_that_is_not_live_names_its_line() {
        let e = items("a fox\n\nhttps://img.example.com/logo.png\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string().starts_with("line 3: 'https://img.example.com/logo.png' is not a live URL"),
            "{e}"
        );
        let e = items("/api/v1/live/generate?prompt=a&prompt=b").unwrap_err();
        assert_eq!(e.to_string(), "line 1: parameter 'prompt' given more than once");
    }

    #[test]
    fn a_prompt_that_merely_mentions_http_is_a_prompt() {
        let got = items("httpd logo on a t-shirt\nan http:// sign").unwrap();
        assert_eq!(got, [Item::prompt("httpd logo on a t-shirt"), Item::prompt("an http:// sign")]);
    }
}
