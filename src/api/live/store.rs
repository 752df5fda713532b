//! Storing what a maker made (`api::live::make`), for both kinds of image: the one
//! place that puts objects, writes entries (always after their object, so no
//! entry points at nothing), deletes the objects they replace, and moves the
//! project's counters by kind.
//!
//! Each slot must still hold what the request replaces (nothing, or the
//! stale entry it saw): an entry found there instead was stored by another
//! request meanwhile (a lease that expired under a slow generation, or a race
//! between a lookup and a lease), and it stays — this request's object is
//! deleted and its entry never written ([`Stored::Lost`]), so counters count
//! entries, not generations, and no object is left without an entry.

use super::make::Made;
use crate::api::context::Context;
use crate::api::kv::counters::{self, bump};
use crate::api::kv::slot::Slot;
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::entries::LogRecord;
use crate::core::stored::entry::Entry;
use crate::core::stored::keys;
use crate::core::stored::stats::Counter;
use crate::core::Error;

/// The two kinds of image, and the counters each moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Original,
    Variant,
}

impl Kind {
    /// (entries of this kind, their bytes).
    fn counters(self) -> (Counter, Counter) {
        match self {
            Kind::Original => (Counter::Entries, Counter::Bytes),
            Kind::Variant => (Counter::Variants, Counter::VariantBytes),
        }
    }
}

/// One image to store: where, what, and what it replaces.
pub struct Item<'a> {
    pub kind: Kind,
    pub slot: &'a Slot,
    pub made: &'a Made,
    pub replacing: Replacing<'a>,
    /// The slot was read under this request's lease, which is still live:
    /// it holds exactly `replacing` (nobody else can have written it), so it
    /// is not read again.
    pub read_under_lease: bool,
}

/// What an item may replace where it goes; anything else found there was
/// stored meanwhile by another request, and stays.
#[derive(Clone, Copy)]
pub enum Replacing<'a> {
    /// Nothing: a new image.
    Nothing,
    /// The entry this request saw there (stale, or regenerated).
    This(&'a Entry),
    /// A variant: any entry not made from the original (this image id)
    /// the new one was made from.
    VariantsNotOf(&'a str),
}

/// What became of an item.
pub enum Stored {
    Written,
    /// Another request's entry is there; this one was not written.
    Lost(Box<Entry>),
    /// The KV store failed: the image is answered anyway, the next request
    /// makes it again (logged).
    Unrecorded,
}

/// What one lease's owner stores: the image of its slot and, made with it
/// (a variant derived from an original generated for it), another.
pub struct Batch<'a> {
    pub image: Item<'a>,
    pub with: Option<Item<'a>>,
}

/// What became of each item of a [`Batch`].
pub struct Outcome {
    pub image: Result<Stored, Error>,
    pub with: Option<Result<Stored, Error>>,
}

/// Store a batch: each object, then their entries in one `set_many` (an
/// original and the variant made with it are written together). An item
/// whose object cannot be put is that item's error (502), and nothing of it
/// is written; when the KV store fails, no entry is written and each put
/// item is [`Stored::Unrecorded`].
pub async fn store<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    batch: Batch<'_>,
) -> Outcome {
    let image = put(ctx, &batch.image).await;
    let with = match &batch.with {
        Some(item) => Some(put(ctx, item).await),
        None => None,
    };
    let mut image = match image {
        Ok(()) => Ok(read(ctx, &batch.image).await),
        Err(e) => Err(e),
    };
    let mut with = match (&batch.with, with) {
        (Some(item), Some(Ok(()))) => Some(Ok(read(ctx, item).await)),
        (_, Some(Err(e))) => Some(Err(e)),
        _ => None,
    };
    let written = write(&ctx.kv, [image.as_mut().ok(), with.as_mut().and_then(|w| w.as_mut().ok())]);
    if let Err(e) = written {
        crate::diag!("entry not recorded, image served anyway: {e}");
    }
    let image = match image {
        Ok(read) => Ok(finish(ctx, &batch.image, read).await),
        Err(e) => Err(e),
    };
    let with = match (&batch.with, with) {
        (Some(item), Some(Ok(read))) => Some(Ok(finish(ctx, item, read).await)),
        (_, Some(Err(e))) => Some(Err(e)),
        _ => None,
    };
    Outcome { image, with }
}

async fn put<K, S: ObjectStore, P, E>(ctx: &Context<K, S, P, E>, item: &Item<'_>) -> Result<(), Error> {
    let entry = &item.made.entry;
    ctx.store.put(&entry.object_key, &entry.content_type, item.made.bytes.clone()).await
}

/// An item whose object is put, read against its slot: what it will be, and
/// the rows that record it.
#[derive(Default)]
struct Read {
    written: Written,
    rows: Vec<(String, Vec<u8>)>,
}

#[derive(Default)]
enum Written {
    Yes {
        replaced: Option<Box<Entry>>,
    },
    Lost(Box<Entry>),
    /// Not (yet) recorded.
    #[default]
    Unrecorded,
}

/// What is in the item's slot, and the rows that record it there; a KV
/// failure leaves it unrecorded (and so the whole batch: [`write`]).
async fn read<K: KeyValue, S, P, E: Env>(ctx: &Context<K, S, P, E>, item: &Item<'_>) -> Result<Read, Error> {
    let kv = &ctx.kv;
    let there = match (item.read_under_lease, item.replacing) {
        (true, Replacing::This(old)) => Some(old.clone()),
        (true, Replacing::Nothing) => None,
        _ => item.slot.lookup(kv)?,
    };
    let replaced = match (there, item.replacing) {
        // Gone meanwhile (purged): counted as gone already.
        (None, _) => None,
        (Some(now), Replacing::This(old)) if now.image_id == old.image_id => Some(now),
        (Some(now), Replacing::VariantsNotOf(source)) if now.variant_of.as_deref() != Some(source) => {
            Some(now)
        }
        (Some(now), _) => return Ok(Read { written: Written::Lost(Box::new(now)), rows: Vec::new() }),
    };
    if !kv.flavour().first_increment_is_atomic() {
        // Before anyone can hit it: its first increments would race.
        kv.create_counter(&item.slot.hits_key())?;
    }
    let mut rows = vec![(item.slot.entry_key.clone(), item.made.entry.encode())];
    if item.kind == Kind::Original {
        // Its image id → its hash, for `ref=` (`api::records::aliases::original`).
        let image_id = &item.made.entry.image_id;
        rows.push((keys::image_index(&item.slot.project, image_id), item.slot.hash.clone().into_bytes()));
    }
    if let Some(log) = log_record(ctx, item, replaced.is_some()).await? {
        rows.push(log);
    }
    Ok(Read { written: Written::Yes { replaced: replaced.map(Box::new) }, rows })
}

/// The rows of every item read, in one call; when any item could not be
/// read, or the call fails, none is written (each stays unrecorded).
fn write(kv: &impl KeyValue, reads: [Option<&mut Result<Read, Error>>; 2]) -> Result<(), Error> {
    let mut reads: Vec<&mut Result<Read, Error>> = reads.into_iter().flatten().collect();
    let failed = reads.iter_mut().find_map(|r| r.as_mut().err().map(|e| e.clone()));
    let outcome = match failed {
        Some(e) => Err(e),
        None => {
            let rows: Vec<(String, Vec<u8>)> =
                reads.iter().flat_map(|r| r.as_ref().map_or(&[][..], |r| &r.rows[..])).cloned().collect();
            if rows.is_empty() {
                Ok(())
            } else {
                kv.set_many(&rows)
            }
        }
    };
    if outcome.is_err() {
        for read in reads {
            *read = Ok(Read::default());
        }
    }
    outcome
}

/// After the write: the project's counters by kind, and the objects that
/// went — the one replaced, or this one when another's entry won.
async fn finish<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    item: &Item<'_>,
    read: Result<Read, Error>,
) -> Stored {
    let kv = &ctx.kv;
    let project = &item.slot.project;
    let written = read.map_or(Written::Unrecorded, |r| r.written);
    if let Written::Yes { replaced } = &written {
        let (count, bytes) = item.kind.counters();
        let old_size = replaced.as_ref().map_or(0, |old| old.size as i64);
        bump(kv, project, count, if replaced.is_some() { 0 } else { 1 });
        bump(kv, project, bytes, item.made.entry.size as i64 - old_size);
        if item.kind == Kind::Original {
            bump(kv, project, Counter::Generations, 1);
        }
    }
    bump(kv, project, Counter::DeriveMs, item.made.derive_ms as i64);
    let gone = match &written {
        Written::Yes { replaced: Some(old) } if old.object_key != item.made.entry.object_key => {
            Some(old.object_key.clone())
        }
        Written::Lost(_) => Some(item.made.entry.object_key.clone()),
        _ => None,
    };
    if let Some(object) = gone {
        if let Err(e) = ctx.store.delete(&object).await {
            crate::diag!("object {object} (replaced, or of a lost race) not deleted: {e}");
        }
    }
    if let (Kind::Original, Written::Yes { replaced: Some(old) }) = (item.kind, &written) {
        // The replaced original's id names nothing now.
        if let Err(e) = kv.delete(&keys::image_index(project, &old.image_id)) {
            crate::diag!("image index of a replaced original not removed: {e}");
        }
    }
    match written {
        Written::Yes { .. } => Stored::Written,
        Written::Lost(winner) => Stored::Lost(winner),
        Written::Unrecorded => Stored::Unrecorded,
    }
}

/// The log record that lists the new image: every new original in its
/// project's entries log (`core::stored::entries`; a replaced one is listed again, as
/// new), every new variant in its original's variant log (a purge walks it).
async fn log_record<K: KeyValue, S, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    item: &Item<'_>,
    replaces: bool,
) -> Result<Option<(String, Vec<u8>)>, Error> {
    let (slot, entry) = (item.slot, &item.made.entry);
    match item.kind {
        Kind::Original => {
            let seq = ctx.kv.increment(&keys::entry_seq(&slot.project), 1)?;
            let record = LogRecord { hash: slot.hash.clone(), image_id: entry.image_id.clone() };
            Ok(Some((keys::entry_log(&slot.project, seq), record.encode())))
        }
        Kind::Variant if replaces => Ok(None),
        Kind::Variant => {
            let original = slot.image_hash();
            let seq_key = keys::variant_seq(&slot.project, original);
            counters::ensure(ctx, &seq_key).await?;
            let n = ctx.kv.increment(&seq_key, 1)?;
            let suffix = entry.variant.clone().unwrap_or_default();
            Ok(Some((keys::variant_log(&slot.project, original, n), suffix.into_bytes())))
        }
    }
}
