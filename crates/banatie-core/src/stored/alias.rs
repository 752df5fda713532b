//! Aliases: a project's names for its images (`ref=@name`). A name is a slug
//! (`core::stored::scope::valid_slug`); the API's body and bound are here, where
//! they are stored is `core::stored::keys::aliases`, the routes `api::aliases`.

use crate::Error;

/// Aliases a project may have (its record stays a few KB).
pub const MAX_ALIASES: usize = 100;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    image_id: String,
}

/// `PUT /api/v1/aliases/{name}`'s body: the image id it names.
pub fn parse_put_body(body: &[u8]) -> Result<String, Error> {
    let body: PutBody = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("body must be JSON like {{\"image_id\":\"...\"}}: {e}")))?;
    let id = body.image_id;
    let valid = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(Error::BadRequest("image_id must be an image's id (its X-Image-Id)".into()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_names_one_image_id() {
        assert_eq!(parse_put_body(br#"{"image_id":"0d56ce37-e090"}"#).unwrap(), "0d56ce37-e090");
        for bad in [&br#"{"image_id":"a/b"}"#[..], br#"{"image_id":""}"#, br#"{"id":"x"}"#, b"[]", b""] {
            assert_eq!(parse_put_body(bad).unwrap_err().status(), 400);
        }
    }
}
