//! What the owner of a lease (`api::live::flight`) does with what its maker made
//! (`api::live::make`): store it (`api::live::store`), tidy what it replaced, and settle
//! the lease — succeed once the image of its slot is stored (or another
//! request's is found there), fail when making or storing it failed (its
//! waiters read why). The one place a lease is settled, for both kinds of
//! image. What it does not do: decide (that is `api::live::obtain`), or clean up
//! after an early return — a lease dropped unsettled is released
//! (`flight::Lease`), a reservation dropped unspent is given back
//! (`gate::Reserved`).

use super::flight::Lease;
use super::make::Made;
use super::plan::Got;
use super::store::{self, Batch, Item, Kind, Replacing, Stored};
use crate::api::context::Context;
use crate::api::kv::slot::Slot;
use crate::api::records::images;
use crate::core::ports::{Env, KeyValue, ObjectStore};
use crate::core::stored::entry::Entry;
use crate::core::Error;

/// The image a lease's owner made for its slot (or why it could not).
pub struct Making<'a> {
    pub kind: Kind,
    pub slot: &'a Slot,
    /// What the lease found in the slot.
    pub replacing: Replacing<'a>,
    pub made: Result<Made, Error>,
}

/// What follows once the slot's image is stored, still under its lease.
pub enum Then<'a> {
    Nothing,
    /// An original made in place of another (regenerated, or healed): the
    /// old one's variants go now, not when next asked for.
    RemoveOldVariants,
    /// A variant derived from the cached original in this slot: a purge (or
    /// regenerate) of that original may have come and gone while it was
    /// derived; then it is taken back (and answered as made).
    TakeBackIfOrphaned(&'a Slot),
}

/// Store what was made under `lease` — the slot's image and, made with it,
/// `with` (a variant of a new original, derived from the bytes in hand) —
/// then settle the lease. The answer is `with`'s image when there is one.
pub async fn store_and_settle<'c, K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &'c Context<K, S, P, E>,
    lease: Lease<'c, K, E>,
    image: Making<'_>,
    with: Option<(&Slot, Result<Made, Error>)>,
    then: Then<'_>,
) -> Result<Got, Error> {
    let made = match image.made {
        Ok(made) => made,
        Err(e) => {
            lease.fail(&e);
            return Err(e);
        }
    };
    let read_under_lease = lease.exclusive();
    let item = Item {
        kind: image.kind,
        slot: image.slot,
        made: &made,
        replacing: image.replacing,
        read_under_lease,
    };
    // Whatever is in the variant's slot was made from an earlier original
    // (read now: this request holds the original's lease, not the variant's).
    let replacing = Replacing::VariantsNotOf(&made.entry.image_id);
    let with_item = match &with {
        Some((slot, Ok(made))) => {
            Some(Item { kind: Kind::Variant, slot, made, replacing, read_under_lease: false })
        }
        _ => None,
    };
    let outcome = store::store(ctx, Batch { image: item, with: with_item }).await;
    match outcome.image {
        Err(e) => {
            lease.fail(&e);
            return Err(e);
        }
        Ok(Stored::Lost(winner)) => {
            lease.succeed();
            return Ok(Got::cached(*winner, true));
        }
        Ok(stored) => {
            tidy(ctx, then, image.slot, &stored, &made.entry).await;
            lease.succeed();
        }
    }
    match (with, outcome.with) {
        (None, _) => Ok(made.into()),
        (Some((_, Err(e))), _) | (_, Some(Err(e))) => Err(e),
        (Some(_), Some(Ok(Stored::Lost(winner)))) => Ok(Got::cached(*winner, true)),
        (Some((_, Ok(variant))), _) => Ok(variant.into()),
    }
}

async fn tidy<K: KeyValue, S: ObjectStore, P, E: Env>(
    ctx: &Context<K, S, P, E>,
    then: Then<'_>,
    slot: &Slot,
    stored: &Stored,
    made: &Entry,
) {
    match then {
        Then::Nothing => {}
        Then::RemoveOldVariants => {
            images::purge_variants(ctx, &slot.project, &slot.hash, Some(made.image_id.as_str())).await
        }
        Then::TakeBackIfOrphaned(original) => {
            if matches!(stored, Stored::Written) {
                if let Err(e) = images::take_back_variant(ctx, original, slot, made).await {
                    crate::diag!("variant of a removed original not taken back: {e}");
                }
            }
        }
    }
}
