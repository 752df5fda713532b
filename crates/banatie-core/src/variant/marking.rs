//! How an image says it is AI-generated. Every variant we encode carries an
//! XMP packet with the IPTC Digital Source Type `trainedAlgorithmicMedia`
//! (IPTC Photo Metadata User Guide, "Guidance for using Digital Source
//! Type"), the system that made it (`Iptc4xmpExt:AISystemUsed`, IPTC Photo
//! Metadata Standard 2025.1) and its own and its original's image ids
//! (`xmpMM:DocumentID`, `xmpMM:DerivedFrom`); `banatie_image` writes it into
//! each format. An original keeps the provider's bytes (and with them any
//! C2PA manifest or watermark). Every image answer says it in a header.
//! The prompt is not written: it is the user's text, not ours to publish in
//! every copy of the file.

/// The IPTC NewsCodes term for "created by a trained algorithm".
pub const DIGITAL_SOURCE_TYPE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";

/// On every image answer (HIT, MISS, HEAD, 304).
pub const HEADER: (&str, &str) = ("x-ai-generated", "true");

/// What a variant's XMP says about it.
pub struct Provenance<'a> {
    /// `gemini`, `openai`, … and the model, as the entry records them.
    pub provider: &'a str,
    pub model: &'a str,
    /// The variant's own image id, and its original's.
    pub image_id: &'a str,
    pub original_id: &'a str,
}

/// XML text: `&`, `<`, `>`, `"` escaped (values go in attributes).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The XMP packet (UTF-8, read-only packet: `end="r"`).
pub fn xmp(p: &Provenance<'_>) -> String {
    let system = escape(&format!("{} {}", p.provider, p.model));
    let (id, original) = (escape(p.image_id), escape(p.original_id));
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\
<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
<rdf:Description rdf:about=\"\" \
xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\" \
xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\" \
xmlns:stRef=\"http://ns.adobe.com/xap/1.0/sType/ResourceRef#\" \
Iptc4xmpExt:DigitalSourceType=\"{DIGITAL_SOURCE_TYPE}\" \
Iptc4xmpExt:AISystemUsed=\"{system}\" \
xmpMM:DocumentID=\"urn:banatie:image:{id}\">\
<xmpMM:DerivedFrom rdf:parseType=\"Resource\"><stRef:documentID>urn:banatie:image:{original}</stRef:documentID></xmpMM:DerivedFrom>\
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end=\"r\"?>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packet_names_the_source_type_system_and_ids_escaped() {
        let x =
            xmp(&Provenance { provider: "gemini", model: "a<b>\"c\"&d", image_id: "v1", original_id: "o1" });
        assert!(x.contains(&format!("Iptc4xmpExt:DigitalSourceType=\"{DIGITAL_SOURCE_TYPE}\"")), "{x}");
        assert!(x.contains("AISystemUsed=\"gemini a&lt;b&gt;&quot;c&quot;&amp;d\""), "{x}");
        assert!(x.contains("xmpMM:DocumentID=\"urn:banatie:image:v1\""));
        assert!(x.contains("<stRef:documentID>urn:banatie:image:o1</stRef:documentID>"));
        assert!(x.starts_with("<?xpacket begin=\"\u{feff}\""));
        assert!(x.ends_with("<?xpacket end=\"r\"?>"));
    }
}
