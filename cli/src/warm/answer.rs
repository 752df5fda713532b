//! The warm answer's lines: one JSON object per item, in the order items
//! complete: `{"index":0,"status":"cached"|"generated","image_id":"…"}` or
//! `{"index":3,"status":"error","error":{"code":"…","message":"…"}}`; and a
//! refused request's body, `{"error":{"code":"…","message":"…"}}`. Reads
//! text only; what arrives when is `client`'s.

use serde_json::Value;

/// How one item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Cached { image_id: String },
    Generated { image_id: String },
    Failed { code: String, message: String },
}

impl Outcome {
    /// The status word of the answer (and of the plain output).
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Cached { .. } => "cached",
            Outcome::Generated { .. } => "generated",
            Outcome::Failed { .. } => "error",
        }
    }
}

/// One line: the item's index within its request, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub index: usize,
    pub outcome: Outcome,
}

/// One line of the answer (without its newline).
pub fn line(text: &str) -> Result<Line, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let index = value["index"].as_u64().ok_or("no index")? as usize;
    let string = |v: &Value| v.as_str().map(str::to_string);
    let image_id = || string(&value["image_id"]).ok_or("no image_id");
    let outcome = match value["status"].as_str() {
        Some("cached") => Outcome::Cached { image_id: image_id()? },
        Some("generated") => Outcome::Generated { image_id: image_id()? },
        Some("error") => {
            let (code, message) = error(&value).ok_or("an error line without error.code")?;
            Outcome::Failed { code, message }
        }
        _ => return Err("no status this client knows".into()),
    };
    Ok(Line { index, outcome })
}

/// `{"error":{"code","message"}}`'s code and message (the message may be
/// absent).
pub fn error(value: &Value) -> Option<(String, String)> {
    let code = value["error"]["code"].as_str()?.to_string();
    let message = value["error"]["message"].as_str().unwrap_or("").to_string();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_generated_and_error_lines() {
        assert_eq!(
            line(r#"{"image_id":"i1","index":0,"status":"cached"}"#),
            Ok(Line { index: 0, outcome: Outcome::Cached { image_id: "i1".into() } })
        );
        assert_eq!(
            line(r#"{"index":12,"status":"generated","image_id":"i2"}"#),
            Ok(Line { index: 12, outcome: Outcome::Generated { image_id: "i2".into() } })
        );
        let failed = line(
            r#"{"index":3,"status":"error","error":{"code":"budget_exceeded","message":"the budget is spent"}}"#,
        )
        .unwrap();
        assert_eq!(
            failed.outcome,
            Outcome::Failed { code: "budget_exceeded".into(), message: "the budget is spent".into() }
        );
        assert_eq!(failed.outcome.status(), "error");
    }

    #[test]
    fn a_line_this_client_cannot_read_says_why() {
        assert!(line("<html>").unwrap_err().starts_with("not JSON"));
        assert_eq!(line(r#"{"status":"cached","image_id":"i"}"#), Err("no index".into()));
        assert_eq!(line(r#"{"index":1,"status":"cached"}"#), Err("no image_id".into()));
        assert_eq!(line(r#"{"index":1,"status":"later"}"#), Err("no status this client knows".into()));
        assert!(line(r#"{"index":1,"status":"error"}"#).is_err());
    }

    #[test]
    fn a_refused_requests_body_gives_its_code_and_message() {
        let body: Value =
            serde_json::from_str(r#"{"error":{"code":"unauthorized","message":"unknown key"}}"#).unwrap();
        assert_eq!(error(&body), Some(("unauthorized".into(), "unknown key".into())));
        assert_eq!(error(&serde_json::json!({"x": 1})), None);
    }
}
