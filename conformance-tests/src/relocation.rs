//! Relocation: state written through one backend and a changelog restores into a fresh
//! store of any backend with identical contents.

use std::collections::BTreeMap;
use std::time::Duration;

use state_core::{
    ChangelogReader, LoggedStore, NoopRestoreListener, ProcessingGuarantee, RestoreOptions,
    SinkOptions, TopicSpec, restore,
};
use test_support::eventually;

use crate::changelogs::ChangelogFactory;
use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::support;

/// The partition relocation uses (not 0, so a partition mix-up shows).
const PARTITION: i32 = 1;

/// How long the broker may take to write a commit's markers.
const MARKERS_WITHIN: Duration = Duration::from_secs(30);

/// Waits until the last transaction's commit marker is in the log (the last stable
/// offset reaches the log's end). A commit returns once the transaction coordinator
/// logged it; the broker writes the partitions' markers after, and until then a
/// read-committed restore ends before the last transaction. A new owner in a group waits
/// for the same thing on the input offsets before it restores.
fn wait_until_markers_land(reader: &dyn ChangelogReader) {
    eventually(
        MARKERS_WITHIN,
        "the committed transaction's marker landing in the log",
        || {
            let offsets = block_on(reader.offsets(PARTITION)).unwrap();
            if offsets.end == offsets.log_end {
                Ok(())
            } else {
                Err(format!(
                    "last stable offset {} below the log end {}",
                    offsets.end, offsets.log_end
                ))
            }
        },
    );
}

/// Writes through `from` (puts, overwrites, deletes over several commits), drops that
/// instance, then restores the changelog into a fresh `to` store elsewhere: both hold the
/// same entries.
pub fn relocate(
    from: &dyn BackendFactory,
    to: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
) {
    let cut = changelogs.create();
    let spec = TopicSpec::changelog(&cut.topic, 2, &BTreeMap::new());
    block_on(cut.changelog.ensure_topic(&spec)).unwrap();
    let options = SinkOptions::new(guarantee, format!("{}-{PARTITION}", cut.topic));
    let sink = block_on(cut.changelog.sink(&options)).unwrap();
    let source = Fixture::new(from, "store");
    let mut logged = LoggedStore::new(source.open(), sink, &cut.topic, PARTITION);
    support::write_and_commit(&mut logged, 0..200);
    for i in (0..200u32).step_by(3) {
        logged.delete(format!("key-{i:03}").as_bytes()).unwrap();
    }
    support::write_and_commit(&mut logged, 150..260);
    let written = contents(logged.inner().as_ref());
    drop(logged);

    let target = Fixture::new(to, "store");
    let store = target.open();
    let reader = block_on(cut.changelog.reader(&cut.topic, guarantee.isolation())).unwrap();
    wait_until_markers_land(reader.as_ref());
    let summary = block_on(restore(
        store.as_ref(),
        reader.as_ref(),
        PARTITION,
        &RestoreOptions::default(),
        &NoopRestoreListener,
    ))
    .unwrap();
    assert!(summary.restored > 0);
    assert_eq!(
        contents(store.as_ref()),
        written,
        "{} -> {} relocation over {} differs",
        from.name(),
        to.name(),
        changelogs.name()
    );
}
