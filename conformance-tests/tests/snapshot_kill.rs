//! SIGKILL around snapshots (issue 23): a child process uploading, downloading or
//! retiring snapshots dies at each crash point of the protocol and at random moments,
//! on a local directory and on the real S3 server; after each kill the snapshot store is
//! whole and a store restored from (snapshot + changelog tail) equals the replay of the
//! changelog and the model. See `conformance_tests::snapshot_kill`.
use std::path::Path;

use conformance_tests::snapshot_kill::crash_store::CrashPoint;
use conformance_tests::snapshot_kill::{
    Kill, download_killed_midway, retention_killed_midway, upload_killed,
};
use conformance_tests::snapshot_place::Where;
use conformance_tests::{BackendFactory, backends, durable_backends, for_each_backend};

fn child() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_snapshot_child"))
}

/// The backends that take snapshots.
fn snapshotting(durable_only: bool) -> Vec<Box<dyn BackendFactory>> {
    let all = if durable_only {
        durable_backends()
    } else {
        backends()
    };
    all.into_iter()
        .filter(|backend| backend.supplier("probe").capability().snapshots)
        .collect()
}

/// Every crash point of an upload, then random SIGKILLs from the parent.
fn upload_rounds(place: Where) {
    let seed = conformance_tests::seed_from_env();
    for_each_backend(&snapshotting(false), |backend| {
        for kill in [
            // No manifest yet, no older snapshot: a full replay.
            Kill::At(CrashPoint::MidFileUpload {
                upload: 1,
                bytes: 1 + seed % 64,
            }),
            // Half a file sent, the older snapshots stay the newest.
            Kill::At(CrashPoint::MidFileUpload {
                upload: 3,
                bytes: 1 + seed % 256,
            }),
            // Every file sent, no manifest: the older snapshot is used.
            Kill::At(CrashPoint::BeforeManifest(3)),
            // Published but never journaled: the new snapshot is used.
            Kill::At(CrashPoint::AfterManifest(2)),
        ] {
            upload_killed(child(), backend, place, kill, seed);
        }
        for round in 0..random_rounds() {
            let seed = seed.wrapping_add(round);
            let kill = Kill::AfterCommits(1 + (seed % 11) as usize);
            upload_killed(child(), backend, place, kill, seed);
        }
    });
}

/// Random-moment SIGKILL rounds per backend and place: `STATESTORE_SNAPSHOT_KILL_ROUNDS`,
/// 2 by default (more for a longer hunt).
fn random_rounds() -> u64 {
    std::env::var("STATESTORE_SNAPSHOT_KILL_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(2)
}

#[test]
fn snapshot_upload_sigkilled_at_each_step_on_a_directory() {
    upload_rounds(Where::Directory);
}

#[test]
fn snapshot_upload_sigkilled_at_each_step_on_s3() {
    upload_rounds(Where::S3);
}

fn retention_rounds(place: Where) {
    let seed = conformance_tests::seed_from_env();
    for_each_backend(&snapshotting(false), |backend| {
        for point in [
            CrashPoint::AfterManifestDelete(1),
            CrashPoint::AfterFileDelete(1),
        ] {
            retention_killed_midway(child(), backend, place, point, seed);
        }
    });
}

#[test]
fn snapshot_retention_sigkilled_midway_on_a_directory() {
    retention_rounds(Where::Directory);
}

#[test]
fn snapshot_retention_sigkilled_midway_on_s3() {
    retention_rounds(Where::S3);
}

#[test]
fn snapshot_download_sigkilled_midway_on_a_directory() {
    let seed = conformance_tests::seed_from_env();
    for_each_backend(&snapshotting(true), |backend| {
        download_killed_midway(child(), backend, Where::Directory, seed);
    });
}

#[test]
fn snapshot_download_sigkilled_midway_on_s3() {
    let seed = conformance_tests::seed_from_env();
    for_each_backend(&snapshotting(true), |backend| {
        download_killed_midway(child(), backend, Where::S3, seed);
    });
}

/// On the real broker and the real S3 server, under both guarantees: a crash inside a
/// file upload, between the last file and the manifest, right after the manifest, and
/// a random SIGKILL.
#[cfg(feature = "kafka")]
#[test]
fn kafka_snapshot_upload_sigkilled_on_s3() {
    use conformance_tests::snapshot_kill::kafka_upload_killed;
    use state_core::ProcessingGuarantee::{AtLeastOnce, ExactlyOnce};
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let seed = conformance_tests::seed_from_env();
    let backends = snapshotting(false);
    for (round, guarantee) in [AtLeastOnce, ExactlyOnce].into_iter().enumerate() {
        for (i, kill) in [
            Kill::At(CrashPoint::MidFileUpload {
                upload: 2,
                bytes: 1 + seed % 256,
            }),
            Kill::At(CrashPoint::BeforeManifest(2)),
            Kill::At(CrashPoint::AfterManifest(2)),
            Kill::AfterCommits(1 + (seed % 11) as usize),
        ]
        .into_iter()
        .enumerate()
        {
            // Rotate the backends over the rounds: each crash point meets every backend
            // over a few runs.
            let backend = &backends[(seed as usize + round + i) % backends.len()];
            kafka_upload_killed(child(), backend.as_ref(), &bootstrap, guarantee, kill, seed);
        }
    }
}

/// On the real broker and the real S3 server, under both guarantees: a retention pass
/// killed right after its first file deletion (then completed by two more), and a
/// restore killed inside its download (then rerun into the same directory).
#[cfg(feature = "kafka")]
#[test]
fn kafka_snapshot_retention_and_download_sigkilled_on_s3() {
    use conformance_tests::snapshot_kill::{kafka_download_killed_midway, kafka_upload_killed};
    use state_core::ProcessingGuarantee::{AtLeastOnce, ExactlyOnce};
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let seed = conformance_tests::seed_from_env();
    let all = snapshotting(false);
    let durable = snapshotting(true);
    for (round, guarantee) in [AtLeastOnce, ExactlyOnce].into_iter().enumerate() {
        let backend = &all[(seed as usize + round) % all.len()];
        let kill = Kill::At(CrashPoint::AfterFileDelete(1));
        kafka_upload_killed(child(), backend.as_ref(), &bootstrap, guarantee, kill, seed);
        let backend = &durable[(seed as usize + round) % durable.len()];
        kafka_download_killed_midway(child(), backend.as_ref(), &bootstrap, guarantee, seed);
    }
}
