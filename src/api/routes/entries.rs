//! `GET /api/v1/live/entries` (X-API-Key): the caller's cached images, newest
//! first, with their hit counts (see `core::stored::entries` for the log it reads).

use serde_json::json;

use crate::api::reply::Reply;
use crate::core::ports::KeyValue;
use crate::core::stored::entries::{self, LogRecord, Page};
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::stored::project::Project;
use crate::core::Error;

/// The page a query asks for (`core::stored::entries::parse_page`).
pub fn page(query: &str) -> Result<Page, Error> {
    entries::parse_page(&crate::core::http::request::parse_pairs(query)?)
}

pub fn list<B>(kv: &impl KeyValue, project: &Project, page: &Page) -> Result<Reply<B>, Error> {
    let head = kv.counter(&keys::entry_seq(&project.id))?.unwrap_or(0);
    let mut seq = page.before.map_or(head, |b| (b - 1).min(head));
    let mut items = Vec::new();
    let mut looked = 0;
    while seq > 0 && items.len() < page.limit && looked < page.limit * entries::SCAN_PER_ITEM {
        looked += 1;
        let current = seq;
        seq -= 1;
        let Some(record) =
            kv.get(&keys::entry_log(&project.id, current))?.as_deref().and_then(LogRecord::decode)
        else {
            continue;
        };
        let Some(entry) = kv
            .get(&keys::entry(&project.id, &record.hash))?
            .and_then(|b| Entry::decode(&b).ok())
            .filter(|e| e.image_id == record.image_id)
        else {
            continue; // purged, or replaced by a newer record
        };
        if page.scope.is_some() && entry.scope != page.scope {
            continue;
        }
        let hits = kv.counter(&keys::hits(&project.id, &record.hash))?.unwrap_or(0);
        let seen = kv.get(&keys::seen(&project.id, &record.hash))?;
        let last = seen.and_then(|b| String::from_utf8(b).ok()).and_then(|s| s.parse::<u64>().ok());
        items.push(json!({
            "prompt": entry.prompt,
            "aspect_ratio": entry.aspect_ratio,
            "scope": entry.scope,
            "enhanced_prompt": entry.enhanced_prompt,
            "model_used": entry.model_used(),
            "image_id": entry.image_id,
            "created_at": entry.created_at,
            "hit_count": hits,
            "last_accessed_at": last,
        }));
    }
    let next_cursor = (seq > 0).then_some(seq + 1);
    Ok(Reply::json(200, json!({ "entries": items, "next_cursor": next_cursor })))
}

#[cfg(test)]
mod tests {
    use crate::api::fakes::{body, request, World};
    use crate::core::http::routes::Method;

    fn list(w: &World, query: &str) -> serde_json::Value {
        let path = format!("/api/v1/live/entries{query}");
        let r = w.request(request(Method::Get, &path, &[("x-api-key", &w.alpha)], b"")).unwrap();
        serde_json::from_slice(&body(&r)).unwrap()
    }

    #[test]
    fn entries_are_listed_newest_first_with_exact_hits_and_pages() {
        let w = World::new();
        for p in ["one", "two", "three"] {
            w.get(&format!("prompt={p}"), Some(&w.alpha), false).unwrap();
        }
        let mut last = None;
        for _ in 0..4 {
            last = Some(w.get("prompt=two", Some(&w.alpha), false).unwrap());
        }
        let last = last.unwrap();
        let counted = last.header("x-cache-hit-count").unwrap().parse::<i64>().unwrap();
        let all = list(&w, "");
        let prompts: Vec<&str> =
            all["entries"].as_array().unwrap().iter().map(|e| e["prompt"].as_str().unwrap()).collect();
        assert_eq!(prompts, ["three", "two", "one"]);
        let two = &all["entries"][1];
        assert_eq!(two["hit_count"].as_i64(), Some(counted), "the list agrees with X-Cache-Hit-Count");
        assert_eq!(two["model_used"].as_str(), last.header("x-model-used"), "and with X-Model-Used");
        assert!(last.header("x-model-used").is_some());
        assert_eq!(two["last_accessed_at"].as_u64().map(|t| t % 60), Some(0), "coarse: a minute");
        assert!(all["entries"][0]["last_accessed_at"].is_null(), "never hit");
        assert!(all["next_cursor"].is_null());
        // Two per page.
        let first = list(&w, "?limit=2");
        assert_eq!(first["entries"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_i64().unwrap();
        let second = list(&w, &format!("?limit=2&cursor={cursor}"));
        assert_eq!(second["entries"][0]["prompt"], "one");
        assert!(second["next_cursor"].is_null());
        // Another project lists nothing of it.
        let r =
            w.request(request(Method::Get, "/api/v1/live/entries", &[("x-api-key", &w.beta)], b"")).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body(&r)).unwrap()["entries"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn purged_and_replaced_entries_appear_once_and_scopes_filter() {
        let w = World::new();
        w.request(request(Method::Post, "/api/v1/scopes", &[("x-api-key", &w.alpha)], br#"{"slug":"hero"}"#))
            .unwrap();
        w.get("prompt=a&scope=hero", Some(&w.alpha), false).unwrap();
        w.get("prompt=b", Some(&w.alpha), false).unwrap();
        w.get("prompt=c", Some(&w.alpha), false).unwrap();
        w.request(request(Method::Delete, "/api/v1/live/generate?prompt=c", &[("x-api-key", &w.alpha)], b""))
            .unwrap();
        w.request(request(Method::Post, "/api/v1/live/regenerate?prompt=b", &[("x-api-key", &w.alpha)], b""))
            .unwrap();
        let all = list(&w, "");
        let prompts: Vec<&str> =
            all["entries"].as_array().unwrap().iter().map(|e| e["prompt"].as_str().unwrap()).collect();
        assert_eq!(prompts, ["b", "a"], "purged gone, regenerated listed once (as new)");
        let hero = list(&w, "?scope=hero");
        assert_eq!(hero["entries"].as_array().unwrap().len(), 1);
        assert_eq!(hero["entries"][0]["scope"], "hero");
    }
}
