//! Items into warm requests: consecutive runs of at most `size` items
//! (never more than the service's [`MAX_ITEMS`]) whose body stays within
//! its [`MAX_BODY_BYTES`], and each run's body. An item too large alone is
//! a request of its own (the service answers it 413). Does not send.

use std::ops::Range;

use super::item::Item;

/// Items one warm request may carry (the service's limit).
pub const MAX_ITEMS: usize = 100;
/// The largest warm body the service reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The runs of `items` to send, in order, as index ranges.
pub fn batches(items: &[Item], size: usize) -> Vec<Range<usize>> {
    let size = size.clamp(1, MAX_ITEMS);
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 2); // "[" and "]"
    for (i, item) in items.iter().enumerate() {
        let len = encoded_len(item) + usize::from(i > start); // a comma before all but the first
        if i > start && (i - start == size || bytes + len > MAX_BODY_BYTES) {
            runs.push(start..i);
            (start, bytes) = (i, 2 + encoded_len(item));
        } else {
            bytes += len;
        }
    }
    if start < items.len() {
        runs.push(start..items.len());
    }
    runs
}

/// The warm body of `items`: a JSON array of their objects.
pub fn body(items: &[Item]) -> Vec<u8> {
    let array: Vec<_> = items.iter().map(Item::to_json).collect();
    serde_json::to_vec(&array).unwrap_or_default()
}

fn encoded_len(item: &Item) -> usize {
    serde_json::to_vec(&item.to_json()).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts(n: usize) -> Vec<Item> {
        (0..n).map(|i| Item::prompt(&format!("prompt {i}"))).collect()
    }

    #[test]
    fn items_go_in_runs_of_at_most_a_hundred_in_order() {
        assert_eq!(batches(&prompts(250), 100), [0..100, 100..200, 200..250]);
        let whole = |n: usize| vec![Range { start: 0, end: n }];
        assert_eq!(batches(&prompts(100), 100), whole(100));
        assert_eq!(batches(&prompts(7), 3), [0..3, 3..6, 6..7]);
        assert_eq!(batches(&prompts(5), 500), whole(5), "never more than the service takes");
        assert!(batches(&[], 100).is_empty());
    }

    #[test]
    fn a_run_ends_before_its_body_would_pass_a_mebibyte() {
        // 2,000-character prompts of escaped characters: 12,000 bytes each.
        let long: Vec<Item> =
            (0..100).map(|i| Item::prompt(&format!("{i:04}{}", "\u{1}".repeat(1996)))).collect();
        let runs = batches(&long, 100);
        assert!(runs.len() > 1, "{runs:?}");
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 100);
        for run in &runs {
            assert!(body(&long[run.clone()]).len() <= MAX_BODY_BYTES, "{run:?}");
        }
        // As full as it may be: one more item would not have fitted.
        let first = runs[0].clone();
        assert!(body(&long[first.start..first.end + 1]).len() > MAX_BODY_BYTES);
    }

    #[test]
    fn an_item_larger_than_a_body_is_sent_alone() {
        let items = vec![Item::prompt("a"), Item::prompt(&"x".repeat(MAX_BODY_BYTES)), Item::prompt("b")];
        assert_eq!(batches(&items, 100), [0..1, 1..2, 2..3]);
    }

    #[test]
    fn the_body_is_a_json_array_of_the_items() {
        let body = body(&prompts(2));
        assert_eq!(body, br#"[{"prompt":"prompt 0"},{"prompt":"prompt 1"}]"#);
    }
}
