//! `format=auto`: which encoding an `Accept` header asks for.

use crate::variant::Format;

/// `format=auto`: AVIF, WebP or JPEG. A modern format is chosen only when
/// `Accept` names it (`image/avif`, `image/webp`) with a q-value above 0, as
/// browsers that decode it do; a wildcard (`image/*`, `*/*`) is not taken as
/// a promise to decode AVIF (old browsers send it too), which is how image
/// CDNs read it. Among the named ones the highest q wins, AVIF first on a tie;
/// JPEG otherwise (everyone decodes it).
pub fn negotiate(accept: &str) -> Format {
    let q_of = |wanted: &str| -> f32 {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                // A q that is not a number makes the item unacceptable.
                let q = match parts
                    .find_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                {
                    None => 1.0,
                    Some(v) => v.trim().parse::<f32>().ok().filter(|q| q.is_finite()).unwrap_or(0.0),
                };
                Some(q.clamp(0.0, 1.0))
            })
            .fold(0.0, f32::max)
    };
    let avif = q_of("image/avif");
    let webp = q_of("image/webp");
    if avif > 0.0 && avif >= webp {
        Format::Avif
    } else if webp > 0.0 {
        Format::Webp
    } else {
        Format::Jpeg
    }
}

/// Whether an error should be answered as an image (`core::http::error_image`):
/// `Accept` names an `image/` type, and no JSON type before it. Browsers
/// send `image/avif,image/webp,…,image/*,*/*;q=0.8` for an `<img>`; `fetch`,
/// curl and API clients send `*/*` or `application/json`.
pub fn prefers_image(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media == "application/json" || media.ends_with("+json") {
            return false;
        }
        if media.starts_with("image/") {
            return true;
        }
    }
    false
}

/// Whether the client takes an image at all (a progressive answer is
/// only for one that does): no `Accept`, or one that names `*/*`, `image/*`
/// or an image type with a quality above 0.
pub fn takes_images(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return true };
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| matches!(p.trim().split_once('='), Some(("q", q)) if q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)));
        !refused && (media == "*/*" || media.starts_with("image/"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_takes_images_unless_its_accept_leaves_them_out() {
        assert!(takes_images(None));
        assert!(takes_images(Some("*/*")));
        assert!(takes_images(Some("image/avif,image/webp,*/*;q=0.8")));
        assert!(takes_images(Some("text/html, image/png;q=0.5")));
        assert!(!takes_images(Some("application/json")));
        assert!(!takes_images(Some("text/html,application/xml;q=0.9")));
        assert!(!takes_images(Some("image/*;q=0, application/json")));
    }

    #[test]
    fn modern_formats_only_when_named_with_q_values_honoured() {
        let chosen = negotiate;
        assert_eq!(chosen("image/avif,image/webp,*/*"), Format::Avif);
        assert_eq!(chosen("image/webp,image/avif"), Format::Avif, "a tie goes to AVIF");
        assert_eq!(chosen("image/avif;q=0.5,image/webp"), Format::Webp);
        assert_eq!(chosen("image/avif;q=0,image/webp;q=0.2"), Format::Webp);
        assert_eq!(chosen("image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"), Format::Webp);
        assert_eq!(chosen("image/*,*/*"), Format::Jpeg, "a wildcard promises no AVIF");
        assert_eq!(chosen("IMAGE/AVIF ; Q=0.9"), Format::Avif);
        assert_eq!(chosen("image/avif;q=abc,image/webp"), Format::Webp, "a broken q accepts nothing");
        assert_eq!(chosen(""), Format::Jpeg);
    }

    #[test]
    fn an_img_prefers_an_image_and_api_clients_do_not() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert!(prefers_image(Some(chrome)));
        assert!(prefers_image(Some("image/png")));
        for api in
            [None, Some("*/*"), Some("application/json"), Some("application/json, image/png"), Some("")]
        {
            assert!(!prefers_image(api), "{api:?}");
        }
        assert!(prefers_image(Some("image/webp, application/json")));
    }
}
