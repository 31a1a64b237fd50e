//! Relocation: state written through one backend restores into a fresh store of any
//! backend with identical contents.

use state_core::ProcessingGuarantee;

use crate::harness::{BackendFactory, Fixture, contents};
use crate::support::{self, RecordingListener};

/// Writes through `from` (puts, overwrites, deletes over several commits), then restores
/// the changelog into a fresh `to` store: both hold the same entries.
pub fn relocate(
    from: &dyn BackendFactory,
    to: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let source = Fixture::new(from, "store");
    let changelog = support::changelog();
    let mut logged = support::logged(&changelog, source.open(), guarantee);
    support::write_and_commit(&mut logged, 0..200);
    for i in (0..200u32).step_by(3) {
        logged.delete(format!("key-{i:03}").as_bytes()).unwrap();
    }
    support::write_and_commit(&mut logged, 150..260);
    let written = contents(logged.inner().as_ref());

    let target = Fixture::new(to, "store");
    let store = target.open();
    let summary = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &RecordingListener::default(),
    )
    .unwrap();
    assert!(summary.restored > 0);
    assert_eq!(
        contents(store.as_ref()),
        written,
        "{} -> {} relocation differs",
        from.name(),
        to.name()
    );
}
