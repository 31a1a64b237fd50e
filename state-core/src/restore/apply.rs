//! Applying one chunk of changelog records to a store: the one write both a restore and a
//! standby's tail make, so a record is checked and positioned the same way whoever reads it.

use super::{RestoreOptions, RestoreTarget, check_record};
use crate::{ChangelogChunk, KeyValueStore, Offset, Position, Result};

/// Checks every record of `chunk` with the options' validator, then writes the chunk to
/// `store` together with the position `reached - 1` (the last offset the chunk covers:
/// transaction markers and compaction leave gaps, so it may lie past the last record).
/// Returns the records applied.
pub(crate) fn apply_chunk(
    store: &dyn KeyValueStore,
    chunk: &ChangelogChunk,
    reached: Offset,
    target: RestoreTarget<'_>,
    options: &RestoreOptions,
) -> Result<u64> {
    validate(chunk, target, options)?;
    store.write_with_position(chunk.batch(), &Position::of(target.partition, reached - 1))?;
    Ok(chunk.len() as u64)
}

/// Checks every record of `chunk` with the options' validator, naming the first one it
/// rejects by topic, partition and offset.
fn validate(
    chunk: &ChangelogChunk,
    target: RestoreTarget<'_>,
    options: &RestoreOptions,
) -> Result<()> {
    let Some(validator) = &options.validator else {
        return Ok(());
    };
    for (op, &offset) in chunk.batch().iter().zip(chunk.offsets()) {
        check_record(
            validator.as_ref(),
            target.topic,
            chunk.partition(),
            offset,
            op.key(),
            op.value(),
        )?;
    }
    Ok(())
}
