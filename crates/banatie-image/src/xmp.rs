//! An XMP packet in an AVIF file. ravif's serializer (avif-serialize) writes
//! Exif but not XMP, so the finished file is rewritten: HEIF (ISO/IEC
//! 23008-12 §A.2.2) carries XMP as a `mime` item of content type
//! `application/rdf+xml`, described by an `infe` (version 2) in `iinf`,
//! located by `iloc`, and linked to the image it describes by a `cdsc`
//! reference in `iref`. Its bytes go into a second `mdat` at the end; the
//! items' absolute `iloc` offsets move by what `meta` grew.
//!
//! Only what this crate writes is read: `ftyp`, `meta`, `mdat` with 32-bit
//! sizes; `iloc` of version 0 or 1; `iinf` of version 0; `iref` of version
//! 0. Anything else is an error (a bug of ours, not a client's input).

/// A box: its type and its payload (after the 8-byte header).
struct Boxed<'a> {
    typ: [u8; 4],
    body: &'a [u8],
}

fn boxes(mut data: &[u8]) -> Result<Vec<Boxed<'_>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let size =
            data.get(..4).map(|s| u32::from_be_bytes(s.try_into().unwrap()) as usize).ok_or("short box")?;
        if size < 8 || size > data.len() {
            return Err(format!("box size {size}"));
        }
        out.push(Boxed { typ: data[4..8].try_into().unwrap(), body: &data[8..size] });
        data = &data[size..];
    }
    Ok(out)
}

fn boxed(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
    out.extend_from_slice(typ);
    out.extend_from_slice(body);
    out
}

fn uint(bytes: &[u8], size: usize, at: &mut usize) -> Result<u64, String> {
    let field = bytes.get(*at..*at + size).ok_or("short iloc")?;
    *at += size;
    Ok(field.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
}

fn put(out: &mut Vec<u8>, value: u64, size: usize) {
    out.extend_from_slice(&value.to_be_bytes()[8 - size..]);
}

/// `iloc` with every construction-method-0 offset moved by `shift`, and one
/// more item (`id`) of one extent at (`offset`, `length`).
fn iloc(body: &[u8], shift: u64, id: u16, offset: u64, length: u64) -> Result<Vec<u8>, String> {
    let version = body[0];
    if version > 1 {
        return Err(format!("iloc version {version}"));
    }
    let (offset_size, length_size) = ((body[4] >> 4) as usize, (body[4] & 15) as usize);
    let (base_size, index_size) =
        ((body[5] >> 4) as usize, if version == 1 { (body[5] & 15) as usize } else { 0 });
    let (osize, lsize) = (offset_size.max(4), length_size.max(4));
    let mut out = vec![version, body[1], body[2], body[3], ((osize << 4) | lsize) as u8, body[5]];
    let mut at = 6;
    let count = uint(body, 2, &mut at)?;
    put(&mut out, count + 1, 2);
    for _ in 0..count {
        out.extend_from_slice(body.get(at..at + 2).ok_or("short iloc")?); // item_ID
        at += 2;
        let method = if version == 1 {
            let m = uint(body, 2, &mut at)?;
            put(&mut out, m, 2);
            m & 15
        } else {
            0
        };
        put(&mut out, uint(body, 2, &mut at)?, 2); // data_reference_index
        let base = uint(body, base_size, &mut at)?;
        let moved = |v: u64| if method == 0 && base_size > 0 { v + shift } else { v };
        put(&mut out, moved(base), base_size);
        let extents = uint(body, 2, &mut at)?;
        put(&mut out, extents, 2);
        for _ in 0..extents {
            put(&mut out, uint(body, index_size, &mut at)?, index_size);
            let off = uint(body, offset_size, &mut at)?;
            // With a base offset, extents are relative to it.
            put(&mut out, if method == 0 && base_size == 0 { off + shift } else { off }, osize);
            put(&mut out, uint(body, length_size, &mut at)?, lsize);
        }
    }
    put(&mut out, u64::from(id), 2);
    if version == 1 {
        put(&mut out, 0, 2);
    }
    put(&mut out, 0, 2); // data_reference_index: this file
    put(&mut out, 0, base_size);
    put(&mut out, 1, 2);
    put(&mut out, 0, index_size);
    put(&mut out, offset, osize);
    put(&mut out, length, lsize);
    Ok(out)
}

/// The item ids `iinf` lists (version 0: a 16-bit count; `infe` v2 or 3).
fn item_ids(iinf: &[u8]) -> Result<Vec<u16>, String> {
    if iinf[0] != 0 {
        return Err("iinf version".into());
    }
    boxes(&iinf[6..])?
        .iter()
        .map(|infe| {
            let id = infe.body.get(4..6).ok_or("short infe")?;
            Ok(u16::from_be_bytes(id.try_into().unwrap()))
        })
        .collect()
}

/// `file` (an AVIF this crate encoded) with `xmp` as a `mime` item describing
/// its primary image.
pub fn avif_with_xmp(file: &[u8], xmp: &[u8]) -> Result<Vec<u8>, String> {
    let top = boxes(file)?;
    let [ftyp, meta, mdat] = &top[..] else { return Err("not ftyp, meta, mdat".into()) };
    if (&ftyp.typ, &meta.typ, &mdat.typ) != (b"ftyp", b"meta", b"mdat") {
        return Err("not ftyp, meta, mdat".into());
    }
    let children = boxes(&meta.body[4..])?;
    let find = |t: &[u8; 4]| children.iter().find(|b| &b.typ == t);
    let pitm = find(b"pitm").ok_or("no pitm")?.body;
    let primary = u16::from_be_bytes(pitm.get(4..6).ok_or("short pitm")?.try_into().unwrap());
    let iinf = find(b"iinf").ok_or("no iinf")?.body;
    let id = item_ids(iinf)?.into_iter().max().unwrap_or(0) + 1;

    // infe v2: id, protection index 0, type `mime`, an empty name, the
    // content type.
    let mut infe = vec![2, 0, 0, 0];
    infe.extend_from_slice(&id.to_be_bytes());
    infe.extend_from_slice(&[0, 0]);
    infe.extend_from_slice(b"mime\0application/rdf+xml\0");
    let infe = boxed(b"infe", &infe);
    let mut new_iinf = iinf[..4].to_vec();
    put(&mut new_iinf, uint(iinf, 2, &mut 4)? + 1, 2);
    new_iinf.extend_from_slice(&iinf[6..]);
    new_iinf.extend_from_slice(&infe);

    let mut cdsc = Vec::new();
    cdsc.extend_from_slice(&id.to_be_bytes());
    cdsc.extend_from_slice(&1u16.to_be_bytes());
    cdsc.extend_from_slice(&primary.to_be_bytes());
    let cdsc = boxed(b"cdsc", &cdsc);
    let new_iref = match find(b"iref") {
        Some(iref) if iref.body[0] == 0 => [iref.body, &cdsc].concat(),
        Some(_) => return Err("iref version".into()),
        None => [&[0u8, 0, 0, 0][..], &cdsc].concat(),
    };

    // Everything in `meta` but `iloc` is final now; `iloc`'s size does not
    // depend on the offsets it holds, so measure with zeros, then write.
    let old_iloc = find(b"iloc").ok_or("no iloc")?.body;
    let rebuild = |iloc_body: &[u8]| {
        let mut body = meta.body[..4].to_vec();
        for child in &children {
            match &child.typ {
                b"iinf" => body.extend(boxed(b"iinf", &new_iinf)),
                b"iref" => body.extend(boxed(b"iref", &new_iref)),
                b"iloc" => body.extend(boxed(b"iloc", iloc_body)),
                t => body.extend(boxed(t, child.body)),
            }
        }
        if find(b"iref").is_none() {
            body.extend(boxed(b"iref", &new_iref));
        }
        boxed(b"meta", &body)
    };
    let sized = rebuild(&iloc(old_iloc, 0, id, 0, 0)?);
    let shift = (sized.len() - (meta.body.len() + 8)) as u64;
    let ftyp_len = ftyp.body.len() + 8;
    let xmp_at = (ftyp_len + sized.len() + mdat.body.len() + 8 + 8) as u64;
    let meta_box = rebuild(&iloc(old_iloc, shift, id, xmp_at, xmp.len() as u64)?);
    debug_assert_eq!(meta_box.len(), sized.len());
    let mut out = Vec::with_capacity(file.len() + xmp.len() + 128);
    out.extend_from_slice(&file[..ftyp_len]);
    out.extend(meta_box);
    out.extend(boxed(b"mdat", mdat.body));
    out.extend(boxed(b"mdat", xmp));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item's bytes by its `iloc` (version 0, as avif-serialize writes).
    fn items(file: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let top = boxes(file).unwrap();
        let meta = top.iter().find(|b| &b.typ == b"meta").unwrap();
        let children = boxes(&meta.body[4..]).unwrap();
        let iloc = children.iter().find(|b| &b.typ == b"iloc").unwrap().body;
        let (os, ls, bs) = ((iloc[4] >> 4) as usize, (iloc[4] & 15) as usize, (iloc[5] >> 4) as usize);
        let mut at = 6;
        let count = uint(iloc, 2, &mut at).unwrap();
        let mut out = Vec::new();
        for _ in 0..count {
            let id = uint(iloc, 2, &mut at).unwrap() as u16;
            at += 2;
            let base = uint(iloc, bs, &mut at).unwrap() as usize;
            let mut bytes = Vec::new();
            for _ in 0..uint(iloc, 2, &mut at).unwrap() {
                let (off, len) =
                    (uint(iloc, os, &mut at).unwrap() as usize, uint(iloc, ls, &mut at).unwrap() as usize);
                bytes.extend_from_slice(&file[base + off..base + off + len]);
            }
            out.push((id, bytes));
        }
        out
    }

    fn avif(alpha: bool) -> Vec<u8> {
        let px: Vec<u8> = (0..32 * 16 * if alpha { 4 } else { 3 }).map(|i| (i * 7 % 251) as u8).collect();
        crate::encode::avif(&px, 32, 16, alpha, 70, 9, None).unwrap()
    }

    #[test]
    fn the_packet_is_a_mime_item_that_describes_the_primary_image_and_the_images_stay_where_they_were() {
        for alpha in [false, true] {
            let plain = avif(alpha);
            let marked = avif_with_xmp(&plain, b"<x:xmpmeta>packet</x:xmpmeta>").unwrap();
            let (before, after) = (items(&plain), items(&marked));
            assert_eq!(after.len(), before.len() + 1, "alpha {alpha}");
            for (id, bytes) in &before {
                assert_eq!(
                    after.iter().find(|(i, _)| i == id).map(|(_, b)| b),
                    Some(bytes),
                    "item {id} moved"
                );
            }
            let (xmp_id, xmp) = after.iter().find(|(i, _)| !before.iter().any(|(b, _)| b == i)).unwrap();
            assert_eq!(xmp.as_slice(), b"<x:xmpmeta>packet</x:xmpmeta>");
            let meta = &boxes(&marked).unwrap()[1];
            let children = boxes(&meta.body[4..]).unwrap();
            let iinf = children.iter().find(|b| &b.typ == b"iinf").unwrap().body;
            let infe = boxes(&iinf[6..])
                .unwrap()
                .into_iter()
                .find(|b| b.body[4..6] == xmp_id.to_be_bytes())
                .unwrap();
            assert_eq!(&infe.body[8..], b"mime\0application/rdf+xml\0");
            let iref = children.iter().find(|b| &b.typ == b"iref").unwrap().body;
            let cdsc = boxes(&iref[4..]).unwrap().into_iter().find(|b| &b.typ == b"cdsc").unwrap();
            assert_eq!(cdsc.body, [&xmp_id.to_be_bytes()[..], &[0, 1, 0, 1]].concat(), "describes item 1");
        }
    }

    #[test]
    fn anything_but_this_crates_avif_is_an_error() {
        assert!(avif_with_xmp(b"not a box", b"x").is_err());
        assert!(avif_with_xmp(&[0, 0, 0, 8, b'f', b't', b'y', b'p'], b"x").is_err());
    }
}
