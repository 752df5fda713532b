//! `POST /api/v1/live/warm`: its body (a JSON array of at most
//! [`MAX_ITEMS`] items, each an object of the parameters a live URL takes)
//! read into one query per item, and its answer's lines (NDJSON, one per
//! item, written as each completes). A bad item is that item's error line;
//! a bad body is the request's 400.

use serde_json::{json, Map, Value};

use super::error::short;
use super::request::{RawQuery, SIGNATURE_PARAMS};
use crate::Error;

/// Items one warm request may carry.
pub const MAX_ITEMS: usize = 100;
/// The largest warm body: a hundred items of the longest prompts fit.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The items of a warm body, each the query its parameters make (or why it
/// cannot be one).
pub fn parse(body: &[u8]) -> Result<Vec<Result<RawQuery, Error>>, Error> {
    let bad = |m: String| Error::BadRequest(m);
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            r#"body must be a JSON array like [{{"prompt":"a red fox","aspect_ratio":"16:9"}}]: {e}"#
        ))
    })?;
    let Value::Array(items) = value else { return Err(bad("body must be a JSON array of items".into())) };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(bad(format!("body must hold 1 to {MAX_ITEMS} items, not {}", items.len())));
    }
    Ok(items.iter().map(item).collect())
}

/// One item's parameters as a live URL's query: strings as they are,
/// numbers and booleans spelled as a URL would (`384`, `true`), a list for
/// `ref` (one pair each). No signature: the request's key is the credential.
fn item(value: &Value) -> Result<RawQuery, Error> {
    let bad = |m: String| Err(Error::BadRequest(m));
    let Value::Object(fields) = value else { return bad("each item must be an object of parameters".into()) };
    let mut pairs = Vec::new();
    for (name, value) in fields {
        if SIGNATURE_PARAMS.contains(&name.as_str()) {
            return bad(format!("parameter '{}' has no place in a warm item", short(name)));
        }
        match value {
            Value::Array(values) if name == "ref" => {
                for v in values {
                    pairs.push((name.clone(), scalar(name, v)?));
                }
            }
            v => pairs.push((name.clone(), scalar(name, v)?)),
        }
    }
    Ok(RawQuery { pairs, signed: None })
}

fn scalar(name: &str, value: &Value) -> Result<String, Error> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => {
            Err(Error::BadRequest(format!("parameter '{}' must be a string, number or boolean", short(name))))
        }
    }
}

/// How one item ended.
pub enum Done<'a> {
    /// It was in the cache.
    Cached {
        image_id: &'a str,
    },
    /// It was made now (by this request, or by another while it waited).
    Generated {
        image_id: &'a str,
    },
    Failed(&'a Error),
}

/// The answer's line for item `index` (JSON and a newline).
pub fn line(index: usize, done: Done<'_>) -> Vec<u8> {
    let mut out = Map::new();
    out.insert("index".into(), json!(index));
    match done {
        Done::Cached { image_id } => {
            out.insert("status".into(), json!("cached"));
            out.insert("image_id".into(), json!(image_id));
        }
        Done::Generated { image_id } => {
            out.insert("status".into(), json!("generated"));
            out.insert("image_id".into(), json!(image_id));
        }
        Done::Failed(e) => {
            out.insert("status".into(), json!("error"));
            out.insert("error".into(), json!({"code": e.code(), "message": e.public_message()}));
        }
    }
    let mut bytes = serde_json::to_vec(&Value::Object(out)).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_queries_and_a_bad_item_is_its_own_error() {
        let body = br#"[{"prompt":"a red fox","aspect_ratio":"16:9"},{"prompt":"b","w":384,"format":"avif"},
            {"prompt":"c","ref":["@logo","abc"],"enhance":true},{"prompt":"d","sig":"x"},7,{"prompt":{"x":1}}]"#;
        let items = parse(body).unwrap();
        assert_eq!(items.len(), 6);
        let pairs = |i: usize| items[i].as_ref().unwrap().pairs.clone();
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(pairs(0), [p("aspect_ratio", "16:9"), p("prompt", "a red fox")]);
        assert_eq!(pairs(1), [p("format", "avif"), p("prompt", "b"), p("w", "384")]);
        assert_eq!(pairs(2), [p("enhance", "true"), p("prompt", "c"), p("ref", "@logo"), p("ref", "abc")]);
        for bad in [3, 4, 5] {
            assert!(matches!(items[bad], Err(Error::BadRequest(_))), "item {bad}");
        }
    }

    #[test]
    fn a_bad_body_is_refused_whole() {
        for body in [&b"not json"[..], b"{}", b"[]", b"\"x\""] {
            assert!(matches!(parse(body), Err(Error::BadRequest(_))), "{:?}", String::from_utf8_lossy(body));
        }
        let many = format!("[{}]", vec![r#"{"prompt":"x"}"#; MAX_ITEMS + 1].join(","));
        assert!(matches!(parse(many.as_bytes()), Err(Error::BadRequest(m)) if m.contains("101")));
        assert_eq!(
            parse(format!("[{}]", vec![r#"{"prompt":"x"}"#; MAX_ITEMS].join(",")).as_bytes()).unwrap().len(),
            100
        );
    }

    #[test]
    fn each_line_says_how_its_item_ended() {
        assert_eq!(
            line(0, Done::Cached { image_id: "i1" }),
            b"{\"image_id\":\"i1\",\"index\":0,\"status\":\"cached\"}\n"
        );
        assert_eq!(
            line(2, Done::Generated { image_id: "i2" }),
            b"{\"image_id\":\"i2\",\"index\":2,\"status\":\"generated\"}\n"
        );
        let e = Error::BudgetExceeded { retry_after: 5 };
        let failed: Value = serde_json::from_slice(&line(3, Done::Failed(&e))).unwrap();
        assert_eq!(failed["status"], "error");
        assert_eq!(failed["error"]["code"], "budget_exceeded");
    }
}
