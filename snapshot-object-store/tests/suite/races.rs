//! Two writers of one scope (a zombie owner and its successor) uploading and retiring
//! snapshots at once never leave a manifest naming a missing file. Each race is driven
//! exactly: the [`SimStore`](super::sim::SimStore) hook makes one writer act at a chosen
//! request of the other, and the shared manual clock stands in for the hours `grace`
//! spans.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use snapshot_object_store::ObjectSnapshotStore;
use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{ObjectStoreExt, PutPayload};
use state_core::{Checkpoint, ErrorKind, SnapshotStore};

use super::sim::{Hook, Op};
use super::{Fixture, G, T, bytes, scope, sum};

/// A hook that runs `work` once, before the first request `when` accepts.
fn once(
    when: impl Fn(Op, &Path) -> bool + Send + 'static,
    work: impl FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + 'static,
) -> Hook {
    let mut work = Some(work);
    Box::new(move |op, path| {
        if !when(op, path) {
            return None;
        }
        work.take().map(|work| work())
    })
}

fn is_file(path: &Path) -> bool {
    path.as_ref().contains("/files/")
}

/// An upload past `max_upload` publishes nothing; what it sent goes two passes later.
pub async fn an_upload_past_max_upload_publishes_nothing(f: Fixture) {
    let zombie = f.store("zombie");
    let clock = f.clock.clone();
    f.sim.set_hook(once(
        |op, path| op == Op::Put && is_file(path),
        move || async move { clock.advance(T + Duration::from_secs(1)) }.boxed(),
    ));
    let sent = bytes(1, 2_000);
    let checkpoint = f.checkpoint("slow", 10, &[("a.sst", sent.clone())]);
    let err = zombie.upload(&scope(), &checkpoint).await.unwrap_err();
    f.sim.clear_hook();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("no manifest was published"),
        "{err}"
    );
    assert_eq!(f.manifest_count(&scope()).await, 0);
    assert!(f.has(&scope(), &sum(&sent)).await, "its file was sent");

    let successor = f.store("successor");
    let own = f.checkpoint("own", 20, &[("b.sst", bytes(2, 100))]);
    successor.upload(&scope(), &own).await.unwrap();
    assert_eq!(
        successor.retain(&scope(), 1).await.unwrap().files_removed,
        0
    );
    f.clock.advance(G);
    assert_eq!(
        successor.retain(&scope(), 1).await.unwrap().files_removed,
        1
    );
    assert!(!f.has(&scope(), &sum(&sent)).await);
    f.assert_complete(&scope(), "after the orphan went").await;
}

/// The zombie builds on snapshot 10 while its successor publishes 30 and 40 and runs
/// retention with `keep` 1: snapshot 10 is deferred, not removed, so the files the
/// zombie reuses stay until its snapshot 20 names them; then everything is retired in
/// order and no manifest ever names a missing file.
pub async fn a_zombie_building_on_a_superseded_base_keeps_its_files(f: Fixture) {
    let zombie = Arc::new(f.store("zombie"));
    let successor = Arc::new(f.store("successor"));
    let (a, b, c) = (bytes(1, 1_000), bytes(2, 2_000), bytes(3, 3_000));
    let first = f.checkpoint("z10", 10, &[("a.sst", a.clone()), ("b.sst", b.clone())]);
    zombie.upload(&scope(), &first).await.unwrap();

    let s30 = f.checkpoint("s30", 30, &[("d.sst", bytes(4, 400))]);
    let s40 = f.checkpoint(
        "s40",
        40,
        &[("d.sst", bytes(4, 400)), ("e.sst", bytes(5, 500))],
    );
    let deferred = Arc::new(AtomicUsize::new(0));
    {
        let (successor, clock, deferred) = (successor.clone(), f.clock.clone(), deferred.clone());
        f.sim.set_hook(once(
            // The zombie has chosen its base and confirmed a and b; now it sends c.
            |op, path| op == Op::Put && is_file(path),
            move || {
                async move {
                    successor.upload(&scope(), &s30).await.unwrap();
                    clock.advance(T / 3);
                    successor.upload(&scope(), &s40).await.unwrap();
                    clock.advance(T / 3);
                    let pass = successor.retain(&scope(), 1).await.unwrap();
                    deferred.store(pass.manifests_deferred, Ordering::SeqCst);
                    assert_eq!(pass.files_removed, 0);
                }
                .boxed()
            },
        ));
    }
    let second = f.checkpoint(
        "z20",
        20,
        &[
            ("a.sst", a.clone()),
            ("b.sst", b.clone()),
            ("c.sst", c.clone()),
        ],
    );
    let uploaded = zombie.upload(&scope(), &second).await.unwrap();
    f.sim.clear_hook();
    assert_eq!((uploaded.files_reused, uploaded.files_uploaded), (2, 1));
    assert_eq!(
        deferred.load(Ordering::SeqCst),
        2,
        "snapshots 10 and 30 were deferred"
    );
    f.assert_complete(&scope(), "after the zombie published")
        .await;

    // Both keep retiring, hours on; the newest snapshot (40) and its files remain.
    for round in 0..4 {
        f.clock.advance(G / 2 + Duration::from_secs(1));
        zombie.retain(&scope(), 1).await.unwrap();
        f.assert_complete(&scope(), &format!("round {round}, zombie's pass"))
            .await;
        successor.retain(&scope(), 1).await.unwrap();
        f.assert_complete(&scope(), &format!("round {round}, successor's pass"))
            .await;
    }
    assert_eq!(f.manifest_count(&scope()).await, 1);
    assert_eq!(f.newest(&successor, &scope()).await.position, 40);
    for gone in [&a, &b, &c] {
        assert!(
            !f.has(&scope(), &sum(gone)).await,
            "unnamed files are collected in the end"
        );
    }
}

/// The narrowest race, inside the moment between an upload's last check and its
/// manifest landing: the successor supersedes the base the zombie reused a file from,
/// and runs retention twice, before the zombie's manifest lands. The file was recorded
/// unnamed (by a pass during the base's own upload) over `grace` ago and is old, so
/// only the base's deferral keeps it: a superseded manifest stays until a newer one is
/// `grace` old.
pub async fn a_superseded_base_is_kept_until_its_readers_publish(f: Fixture) {
    let (old, zombie, successor) = (
        f.store("old-owner"),
        Arc::new(f.store("zombie")),
        Arc::new(f.store("successor")),
    );
    let shared = bytes(1, 1_000);
    // The old owner's upload: a pass runs just before its manifest lands and records
    // the file it sent as unnamed.
    {
        let successor = successor.clone();
        f.sim.set_hook(once(
            |op, path| op == Op::Put && path.as_ref().contains("/manifests/"),
            move || async move { successor.retain(&scope(), 1).await.map(|_| ()).unwrap() }.boxed(),
        ));
    }
    let base = f.checkpoint("b10", 10, &[("f.sst", shared.clone())]);
    old.upload(&scope(), &base).await.unwrap();
    f.sim.clear_hook();
    f.clock.advance(G + Duration::from_secs(1));

    let newer = f.checkpoint("s30", 30, &[("h.sst", bytes(3, 300))]);
    let passes = Arc::new(Mutex::new(Vec::new()));
    {
        let (successor, passes) = (successor.clone(), passes.clone());
        f.sim.set_hook(once(
            |op, path| op == Op::Put && path.as_ref().contains("/manifests/"),
            move || {
                async move {
                    successor.upload(&scope(), &newer).await.unwrap();
                    for _ in 0..2 {
                        let pass = successor.retain(&scope(), 1).await.unwrap();
                        passes.lock().unwrap().push(pass);
                    }
                }
                .boxed()
            },
        ));
    }
    let reusing = f.checkpoint(
        "z20",
        20,
        &[("f.sst", shared.clone()), ("g.sst", bytes(2, 200))],
    );
    let uploaded = zombie.upload(&scope(), &reusing).await.unwrap();
    f.sim.clear_hook();
    assert_eq!(uploaded.files_reused, 1);
    f.assert_complete(&scope(), "after the zombie's manifest landed")
        .await;
    let passes = passes.lock().unwrap();
    assert!(
        passes
            .iter()
            .all(|p| p.manifests_removed == 0 && p.files_removed == 0),
        "{passes:?}"
    );
    assert!(
        passes.iter().all(|p| p.manifests_deferred == 1),
        "{passes:?}"
    );
}

/// An orphan file and the setup for the races on its deletion: the successor's
/// snapshot, and two passes a grace apart so the next pass deletes the orphan.
async fn doomed_orphan(f: &Fixture, successor: &ObjectSnapshotStore) -> Vec<u8> {
    let orphan = bytes(9, 900);
    f.sim
        .put(
            &f.object(&scope(), &sum(&orphan)),
            PutPayload::from(orphan.clone()),
        )
        .await
        .unwrap();
    let own = f.checkpoint("own", 10, &[("x.sst", bytes(1, 100))]);
    successor.upload(&scope(), &own).await.unwrap();
    f.clock.advance(G);
    assert_eq!(
        successor.retain(&scope(), 1).await.unwrap().files_removed,
        0
    );
    f.clock.advance(G);
    orphan
}

/// The zombie sends the orphan's bytes again between the pass's last look and its
/// delete: it finds the pass's `deleting` record and publishes nothing; a retry once
/// the record has expired succeeds.
pub async fn an_upload_racing_a_deleting_pass_publishes_nothing(f: Fixture) {
    let successor = f.store("successor");
    let zombie = Arc::new(f.store("zombie"));
    let orphan = doomed_orphan(&f, &successor).await;
    let checkpoint = f.checkpoint(
        "z20",
        20,
        &[("f.sst", orphan.clone()), ("y.sst", bytes(2, 200))],
    );
    let refused = Arc::new(Mutex::new(None));
    {
        let (zombie, checkpoint, refused) = (zombie.clone(), checkpoint.clone(), refused.clone());
        let target = f.object(&scope(), &sum(&orphan));
        f.sim.set_hook(once(
            move |op, path| op == Op::Delete && *path == target,
            move || {
                async move {
                    let err = zombie.upload(&scope(), &checkpoint).await.unwrap_err();
                    *refused.lock().unwrap() = Some(err);
                }
                .boxed()
            },
        ));
    }
    let pass = successor.retain(&scope(), 1).await.unwrap();
    f.sim.clear_hook();
    assert_eq!(pass.files_removed, 1);
    let err = refused
        .lock()
        .unwrap()
        .take()
        .expect("the zombie uploaded during the delete");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&hex(&orphan)),
        "names the file: {err}"
    );
    assert_eq!(f.manifest_count(&scope()).await, 1, "nothing published");
    f.assert_complete(&scope(), "after the race").await;

    // Still refused while the record may belong to a running pass; then accepted.
    assert_eq!(
        zombie
            .upload(&scope(), &checkpoint)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    f.clock.advance(2 * T + Duration::from_secs(1));
    zombie.upload(&scope(), &checkpoint).await.unwrap();
    f.assert_complete(&scope(), "after the retry").await;
}

/// The zombie sends the orphan's bytes again and publishes just before the pass writes
/// its `deleting` record: the pass's second look finds the file young and keeps it.
pub async fn a_file_sent_again_before_the_last_look_is_kept(f: Fixture) {
    let successor = f.store("successor");
    let zombie = Arc::new(f.store("zombie"));
    let orphan = doomed_orphan(&f, &successor).await;
    let checkpoint = f.checkpoint("z20", 20, &[("f.sst", orphan.clone())]);
    let published = Arc::new(AtomicBool::new(false));
    {
        let (zombie, checkpoint, published) =
            (zombie.clone(), checkpoint.clone(), published.clone());
        f.sim.set_hook(once(
            |op, path| op == Op::Put && path.as_ref().contains("/retention/deleting-"),
            move || {
                async move {
                    zombie.upload(&scope(), &checkpoint).await.unwrap();
                    published.store(true, Ordering::SeqCst);
                }
                .boxed()
            },
        ));
    }
    let pass = successor.retain(&scope(), 1).await.unwrap();
    f.sim.clear_hook();
    assert!(published.load(Ordering::SeqCst));
    assert_eq!(pass.files_removed, 0, "the second look found it young");
    assert!(f.has(&scope(), &sum(&orphan)).await);
    f.assert_complete(&scope(), "after the race").await;
}

/// A seeded schedule of uploads, retention passes and clock steps by two writers, each
/// upload interrupted at a chosen request by the other writer's retention pass (and a
/// clock step while that is still before its deadline check); the invariant is checked
/// after every step.
pub async fn two_writers_interleaved_never_name_a_missing_file(f: Fixture) {
    let writers = [Arc::new(f.store("zombie")), Arc::new(f.store("successor"))];
    let blobs: Vec<Vec<u8>> = (0..8)
        .map(|i| bytes(50 + i, 300 + 10 * i as usize))
        .collect();
    let mut rng = 0x5eed_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut positions = [1_000i64, 2_000];
    let (mut published, mut refused) = (0, 0);
    for step in 0..60 {
        let me = next(2) as usize;
        match next(4) {
            0 | 1 => {
                let files: Vec<(String, Vec<u8>)> = (0..8)
                    .filter(|_| next(2) == 0)
                    .map(|i| (format!("{i}.sst"), blobs[i].clone()))
                    .collect();
                let files: Vec<(&str, Vec<u8>)> =
                    files.iter().map(|(p, b)| (p.as_str(), b.clone())).collect();
                positions[me] += 1;
                let checkpoint: Checkpoint =
                    f.checkpoint(&format!("step{step}"), positions[me], &files);
                let other = writers[1 - me].clone();
                let (at, keep, clock) = (next(6) as usize, 1 + next(2) as usize, f.clock.clone());
                let advance = Duration::from_secs(next(T.as_secs() / 2));
                let seen = Arc::new(AtomicUsize::new(0));
                f.sim.set_hook(once(
                    move |op, path| {
                        let publishing = op == Op::Put && path.as_ref().contains("/manifests/");
                        seen.fetch_add(1, Ordering::SeqCst) == at && !publishing
                    },
                    move || {
                        async move {
                            clock.advance(advance);
                            other.retain(&scope(), keep).await.unwrap();
                        }
                        .boxed()
                    },
                ));
                match writers[me].upload(&scope(), &checkpoint).await {
                    Ok(_) => published += 1,
                    Err(err)
                        if matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Unavailable) =>
                    {
                        refused += 1
                    }
                    Err(err) => panic!("step {step}: {err}"),
                }
                f.sim.clear_hook();
            }
            2 => {
                writers[me]
                    .retain(&scope(), 1 + next(3) as usize)
                    .await
                    .unwrap();
            }
            _ => f.clock.advance(Duration::from_secs(next(G.as_secs() / 2))),
        }
        f.assert_complete(&scope(), &format!("step {step}")).await;
    }
    assert!(published > 10, "{published} published, {refused} refused");
}

fn hex(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}
