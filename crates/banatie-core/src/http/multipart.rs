//! A progressive answer's body: `multipart/x-mixed-replace`, the MJPEG way
//! of showing a sequence of images in one `<img>` (each part replaces the
//! one before). Framed for how browsers paint it: Chromium shows a part only
//! once the next part's header block has arrived (seen with Debian's
//! headless Chromium, 2026-12; ../shared/DESIGN.md, "Progressive MISS"), so
//! each part is written together with the next delimiter and an empty
//! header block (Chromium sniffs each part's type), and the stream ends with
//! the closing delimiter:
//!
//! ```text
//! --B\r\nContent-Type: image/png\r\n\r\n <placeholder> \r\n--B\r\n\r\n <preview> \r\n--B\r\n\r\n <final> \r\n--B--\r\n
//! ```
//!
//! Only the first part's type is known when its header block is written.
//!
//! Pure framing: what goes in each part is `api::live`'s.

/// The boundary's length in random hex digits: 128 bits, so no image or
/// error picture holds it by chance (RFC 2046 §5.1.1 asks that it not
/// occur in any part; the parts are written as they come, so it cannot be
/// chosen after them).
const BOUNDARY_HEX: usize = 32;

/// One answer's boundary, from 16 random bytes.
pub fn boundary(random: [u8; 16]) -> String {
    let hex = crate::decide::cache_key::hex(&random);
    debug_assert_eq!(hex.len(), BOUNDARY_HEX);
    format!("banatie-{hex}")
}

/// The answer's `Content-Type`.
pub fn content_type(boundary: &str) -> String {
    format!("multipart/x-mixed-replace; boundary={boundary}")
}

/// What opens the body: the first delimiter and the first part's header
/// block, which names its type.
pub fn opening(boundary: &str, first_type: &str) -> Vec<u8> {
    format!("--{boundary}\r\nContent-Type: {first_type}\r\n\r\n").into_bytes()
}

/// A part that more will follow: its bytes, then the next delimiter and its
/// empty header block at once (so the part is shown now, not when the next
/// one begins).
pub fn part(boundary: &str, bytes: &[u8]) -> Vec<u8> {
    framed(bytes, format!("\r\n--{boundary}\r\n\r\n").as_bytes())
}

/// The last part: its bytes, then the closing delimiter.
pub fn last(boundary: &str, bytes: &[u8]) -> Vec<u8> {
    framed(bytes, format!("\r\n--{boundary}--\r\n").as_bytes())
}

fn framed(bytes: &[u8], after: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + after.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(after);
    out
}

/// The parts of a body framed as above, in order (for tests and the bench;
/// `None` when it is not one, or not closed).
pub fn split(body: &[u8], boundary: &str) -> Option<Vec<Vec<u8>>> {
    let head = format!("--{boundary}\r\n");
    let after_head = body.strip_prefix(head.as_bytes())?;
    let blank = after_head.windows(4).position(|w| w == b"\r\n\r\n");
    let open_len = match (after_head.starts_with(b"\r\n"), blank) {
        (true, _) => head.len() + 2,
        (false, Some(at)) => head.len() + at + 4,
        (false, None) => return None,
    };
    let next = format!("\r\n--{boundary}\r\n\r\n").into_bytes();
    let close = format!("\r\n--{boundary}--\r\n").into_bytes();
    let mut rest = &body[open_len..];
    let mut parts = Vec::new();
    loop {
        let at = rest.windows(next.len()).position(|w| w == next.as_slice());
        match at {
            Some(at) => {
                parts.push(rest[..at].to_vec());
                rest = &rest[at + next.len()..];
            }
            None => {
                parts.push(rest.strip_suffix(close.as_slice())?.to_vec());
                return Some(parts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_framed_so_each_shows_when_it_arrives() {
        let b = boundary([0xab; 16]);
        assert_eq!(b, "banatie-abababababababababababababababab");
        assert_eq!(content_type(&b), format!("multipart/x-mixed-replace; boundary={b}"));
        let mut body = opening(&b, "image/png");
        body.extend(part(&b, b"placeholder"));
        body.extend(part(&b, b"preview"));
        body.extend(last(&b, b"final"));
        let text = String::from_utf8(body.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "--{b}\r\nContent-Type: image/png\r\n\r\nplaceholder\r\n--{b}\r\n\r\npreview\r\n--{b}\r\n\r\nfinal\r\n--{b}--\r\n"
            )
        );
        let parts = split(&body, &b).unwrap();
        assert_eq!(parts, [b"placeholder".to_vec(), b"preview".to_vec(), b"final".to_vec()]);
    }

    #[test]
    fn an_unclosed_or_foreign_body_is_not_split() {
        let b = boundary([1; 16]);
        let mut body = opening(&b, "image/png");
        body.extend(part(&b, b"one"));
        assert_eq!(split(&body, &b), None, "not closed");
        assert_eq!(split(b"plain bytes", &b), None);
    }
}
