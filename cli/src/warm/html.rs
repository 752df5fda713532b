//! `--from-html`: the live URLs of a page's images, each once. Read with
//! html5ever's tokenizer (the WHATWG one): attribute values arrive with
//! their character references decoded (`&amp;` in a URL), and the text of
//! `<script>`, `<style>`, `<textarea>` and the like is text, never tags. The
//! URLs are those of `<img src>`, `<img srcset>` and `<source srcset>` (a
//! srcset candidate is a URL, then a descriptor such as `384w`); those that
//! are not live URLs (`url::live_item`) are other images, left alone. Two
//! URLs of one image (their parameters in another order, one signed and one
//! not) are one item. Does not fetch anything, nor resolve relative URLs.

use std::cell::RefCell;
use std::collections::HashSet;

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, StartTag, Tag, TagToken, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::item::{clip, Item};
use super::lines::BadLine;
use super::url::live_item;

/// The items of the page `html`, in the order their URLs appear; or the
/// first live URL the service would refuse whole, with its line.
pub fn items(html: &str) -> Result<Vec<Item>, BadLine> {
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    for (line, url) in image_urls(html) {
        match live_item(&url) {
            Ok(Some(item)) => {
                if seen.insert(item.identity()) {
                    items.push(item);
                }
            }
            Ok(None) => {}
            Err(reason) => return Err(BadLine { line, reason: format!("{reason}: {}", clip(&url, 80)) }),
        }
    }
    Ok(items)
}

/// Every image URL of the page, with its line.
fn image_urls(html: &str) -> Vec<(usize, String)> {
    let queue = BufferQueue::default();
    queue.push_back(html.into());
    let tokenizer = Tokenizer::new(Images::default(), TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.urls.into_inner()
}

#[derive(Default)]
struct Images {
    urls: RefCell<Vec<(usize, String)>>,
}

impl TokenSink for Images {
    type Handle = ();

    fn process_token(&self, token: Token, line: u64) -> TokenSinkResult<()> {
        let TagToken(tag) = token else { return TokenSinkResult::Continue };
        if tag.kind != StartTag {
            return TokenSinkResult::Continue;
        }
        let line = line as usize;
        let mut urls = self.urls.borrow_mut();
        match &*tag.name {
            "img" => {
                urls.extend(attr(&tag, "src").map(|src| (line, src.trim().to_string())));
                urls.extend(attr(&tag, "srcset").into_iter().flat_map(srcset).map(|u| (line, u)));
            }
            "source" => urls.extend(attr(&tag, "srcset").into_iter().flat_map(srcset).map(|u| (line, u))),
            _ => {}
        }
        // What the tree builder would tell the tokenizer: these elements
        // hold text (`<noscript>`'s images count, as without scripts).
        match &*tag.name {
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" => TokenSinkResult::RawData(RawKind::Rawtext),
            "textarea" | "title" => TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        }
    }
}

fn attr<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
    tag.attrs.iter().find(|a| &*a.name.local == name).map(|a| &*a.value)
}

/// The URLs of a srcset, as the HTML standard splits it: candidates are
/// separated by commas; a candidate is a URL (no whitespace in it; commas
/// at its end are separators) and descriptors up to the next comma outside
/// parentheses.
fn srcset(value: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return urls;
        }
        let end = rest.find(|c: char| c.is_ascii_whitespace()).unwrap_or(rest.len());
        let url = &rest[..end];
        rest = &rest[end..];
        if url.ends_with(',') {
            urls.push(url.trim_end_matches(',').to_string());
            continue;
        }
        urls.push(url.to_string());
        let mut depth = 0usize;
        let cut = rest.char_indices().find_map(|(i, c)| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => return Some(i),
                _ => {}
            }
            None
        });
        rest = &rest[cut.unwrap_or(rest.len())..];
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn srcset_candidates_are_a_url_then_a_descriptor() {
        assert_eq!(srcset("a.png 1x, b.png 2x"), ["a.png", "b.png"]);
        assert_eq!(srcset(" /x?p=a,b 384w ,\n /y 768w "), ["/x?p=a,b", "/y"]);
        assert_eq!(srcset("a.png,b.png 2x"), ["a.png,b.png"]);
        assert_eq!(srcset("a.png, b.png"), ["a.png", "b.png"]);
        assert_eq!(srcset("a.png,, b.png"), ["a.png", "b.png"]);
        assert_eq!(srcset("a.png 100w (odd, descriptor), b.png"), ["a.png", "b.png"]);
        assert!(srcset("  ").is_empty());
    }

    const PAGE: &str = r#"<!doctype html>
<html><head><title>a <img src="/api/v1/live/generate?prompt=in+the+title"></title>
<style>img[src="/api/v1/live/generate?prompt=in+css"] {}</style>
<script>document.write('<img src="/api/v1/live/generate?prompt=in+a+script">')</script></head>
<body>
<img src="/static/logo.png" alt="not live">
<img src="https://img.example.com/api/v1/live/generate?prompt=a+red+fox&amp;aspect_ratio=16:9" alt="fox">
<picture>
  <source type="image/avif" srcset="/api/v1/live/generate?prompt=a%20lighthouse&amp;w=384&amp;format=avif 384w,
                                    /api/v1/live/generate?prompt=a%20lighthouse&amp;w=768&amp;format=avif 768w">
  <img src="/api/v1/live/generate?w=384&amp;prompt=a%20lighthouse&amp;format=avif"
       srcset="/cdn/acme/live/hero?prompt=a+hero 1x, /cdn/acme/live/hero?prompt=a+hero&amp;dpr=2 2x">
</picture>
<img src="/api/v1/live/generate?aspect_ratio=16:9&amp;prompt=a+red+fox&amp;project=p1&amp;sig=abc">
<noscript><img src="/api/v1/live/generate?prompt=without+scripts"></noscript>
<textarea><img src="/api/v1/live/generate?prompt=in+a+textarea"></textarea>
<!-- <img src="/api/v1/live/generate?prompt=in+a+comment"> -->
</body></html>"#;

    #[test]
    fn a_pages_live_image_urls_are_its_items_each_once() {
        let got: Vec<_> = items(PAGE).unwrap().iter().map(Item::to_json).collect();
        assert_eq!(
            got,
            [
                json!({"prompt": "a red fox", "aspect_ratio": "16:9"}),
                json!({"prompt": "a lighthouse", "w": "384", "format": "avif"}),
                json!({"prompt": "a lighthouse", "w": "768", "format": "avif"}),
                json!({"prompt": "a hero", "scope": "hero"}),
                json!({"prompt": "a hero", "dpr": "2", "scope": "hero"}),
                json!({"prompt": "without scripts"}),
            ]
        );
    }

    #[test]
    fn a_live_url_the_service_would_refuse_names_its_line() {
        let page = "<p>\n<img\n src=\"/api/v1/live/generate?prompt=a&amp;prompt=b\">";
        let e = items(page).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.starts_with("parameter 'prompt' given more than once"), "{}", e.reason);
    }

    #[test]
    fn a_page_without_live_urls_has_no_items() {
        assert!(items("<img src=/a.png><p>hello</p>").unwrap().is_empty());
        assert!(items("").unwrap().is_empty());
    }
}
