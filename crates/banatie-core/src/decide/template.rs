//! `template=NAME`: a documented framing of the prompt, applied before
//! enhancement and the provider; its name (not the framed text) is part of
//! the cache key, so a template's wording can be improved without orphaning
//! what is cached (the images made with the old wording stay served).

/// Every template: its name and how it frames a prompt (`{}` is the prompt).
pub const TEMPLATES: [(&str, &str); 7] = [
    ("photorealistic", "A photorealistic photograph, natural light, sharp detail, of: {}"),
    ("illustration", "A digital illustration with clean lines and rich colour, of: {}"),
    ("minimalist", "A minimalist composition, flat colours, generous negative space, of: {}"),
    ("sticker", "A die-cut sticker with a thick white border on a plain background, of: {}"),
    ("product", "A studio product photograph on a seamless background under soft-box lighting, of: {}"),
    ("comic", "A comic-book panel with bold ink outlines and halftone shading, of: {}"),
    ("watercolor", "A watercolour painting on textured paper, soft washes, of: {}"),
];

/// The template of this name, if there is one.
pub fn find(name: &str) -> Option<&'static str> {
    TEMPLATES.iter().find(|(n, _)| *n == name).map(|(_, framing)| *framing)
}

/// The names, for an error message and the docs.
pub fn names() -> String {
    TEMPLATES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// `prompt` framed by the template `name` (unknown names were refused at
/// parse time; an unknown one here frames nothing).
pub fn frame(name: &str, prompt: &str) -> String {
    find(name).map_or_else(|| prompt.to_string(), |framing| framing.replace("{}", prompt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_frames_the_prompt_and_unknown_names_are_not_templates() {
        assert_eq!(
            frame("sticker", "a fox"),
            "A die-cut sticker with a thick white border on a plain background, of: a fox"
        );
        assert!(find("baroque").is_none());
        assert!(names().starts_with("photorealistic, illustration"));
        assert!(TEMPLATES.iter().all(|(_, f)| f.matches("{}").count() == 1));
    }
}
