//! One warm item: the parameters of a live URL, as the warm body takes them
//! (an object; `ref` a list). Made from a prompt or from a URL's decoded
//! query; what a warm item may not carry (a signature: the key is the
//! credential; `progressive`, which shapes an answer a warm item never gets)
//! is dropped here. Does not validate parameters: the service judges each
//! item and answers its error line.

use serde_json::{Map, Value};

/// A signed URL's own parameters: the warm request's key stands in for them.
const SIGNATURE: [&str; 3] = ["project", "exp", "sig"];
/// Parameters that shape a live answer, not the image.
const ANSWER_ONLY: [&str; 1] = ["progressive"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Name and value, in the order given; only `ref` repeats.
    params: Vec<(String, String)>,
}

impl Item {
    /// An item of a prompt alone.
    pub fn prompt(text: &str) -> Item {
        Item { params: vec![("prompt".into(), text.to_string())] }
    }

    /// An item of decoded query pairs: signature and answer parameters
    /// dropped; a name given twice (but `ref`) refused, as the service
    /// would refuse the URL.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Item, String> {
        let mut params: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if SIGNATURE.contains(&name.as_str()) || ANSWER_ONLY.contains(&name.as_str()) {
                continue;
            }
            if name != "ref" && params.iter().any(|(n, _)| *n == name) {
                return Err(format!("parameter '{}' given more than once", clip(&name, 40)));
            }
            params.push((name, value));
        }
        Ok(Item { params })
    }

    /// Add a parameter the URL's path names (a public URL's scope), unless
    /// its query names it too.
    pub fn with(mut self, name: &str, value: &str) -> Result<Item, String> {
        if self.get(name).is_some() {
            return Err(format!("a public URL takes no '{name}' parameter: it is in the path"));
        }
        self.params.push((name.into(), value.into()));
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// What the operator reads to know the item: its prompt (empty when it
    /// has none; the service then answers why).
    pub fn label(&self) -> &str {
        self.get("prompt").unwrap_or("")
    }

    /// The item in the warm body: an object of strings (the service takes a
    /// number's spelling as a string too), `ref` a list.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for (name, value) in &self.params {
            if name == "ref" {
                let refs = object.entry("ref").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = refs {
                    list.push(Value::String(value.clone()));
                }
            } else {
                object.insert(name.clone(), Value::String(value.clone()));
            }
        }
        Value::Object(object)
    }

    /// The item whatever the order of its parameters (and of its refs, a
    /// set to the service): two items with one identity name one image.
    pub fn identity(&self) -> Vec<(String, String)> {
        let mut params = self.params.clone();
        params.sort();
        params
    }
}

/// `text` cut at `max` characters, with `…` when cut, and with control
/// characters (tabs, newlines) as spaces, so it stays on its line.
pub fn clip(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_signed_urls_signature_and_progressive_are_dropped() {
        let item = Item::from_pairs(pairs(&[
            ("prompt", "a red fox"),
            ("project", "p1"),
            ("exp", "1767225600"),
            ("aspect_ratio", "16:9"),
            ("sig", "abc"),
            ("progressive", "1"),
        ]))
        .unwrap();
        assert_eq!(item.params(), pairs(&[("prompt", "a red fox"), ("aspect_ratio", "16:9")]).as_slice());
        assert_eq!(item.to_json(), serde_json::json!({"prompt": "a red fox", "aspect_ratio": "16:9"}));
    }

    #[test]
    fn refs_are_a_list_and_other_repeats_are_refused() {
        let item =
            Item::from_pairs(pairs(&[("prompt", "a mug"), ("ref", "@logo"), ("w", "384"), ("ref", "abc")]))
                .unwrap();
        assert_eq!(
            item.to_json(),
            serde_json::json!({"prompt": "a mug", "ref": ["@logo", "abc"], "w": "384"})
        );
        let twice = Item::from_pairs(pairs(&[("prompt", "a"), ("prompt", "b")]));
        assert_eq!(twice, Err("parameter 'prompt' given more than once".into()));
    }

    #[test]
    fn a_path_scope_is_added_unless_the_query_has_one() {
        let item = Item::prompt("a fox").with("scope", "hero").unwrap();
        assert_eq!(item.to_json(), serde_json::json!({"prompt": "a fox", "scope": "hero"}));
        assert!(item.with("scope", "blog").is_err());
    }

    #[test]
    fn identity_ignores_the_order_of_parameters() {
        let a =
            Item::from_pairs(pairs(&[("prompt", "x"), ("w", "384"), ("ref", "b"), ("ref", "a")])).unwrap();
        let b =
            Item::from_pairs(pairs(&[("ref", "a"), ("w", "384"), ("ref", "b"), ("prompt", "x")])).unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_ne!(a.identity(), Item::prompt("x").identity());
    }

    #[test]
    fn clip_cuts_long_text_and_keeps_it_on_one_line() {
        assert_eq!(clip("a red fox", 20), "a red fox");
        assert_eq!(clip("a red fox", 5), "a red…");
        assert_eq!(clip("a\tb\nc", 10), "a b c");
        assert_eq!(clip("éééé", 2), "éé…");
    }
}
