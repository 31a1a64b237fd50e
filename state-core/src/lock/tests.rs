use super::*;
use crate::ErrorKind;

/// A fresh directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ss-lock-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn guards_of_one_process_share_the_lock_and_the_last_removes_its_file() {
    let scratch = Scratch::new("share");
    let dir = scratch.0.join("app").join("0");
    let first = PartitionLock::acquire(&dir).unwrap();
    let file = first.file();
    let record = std::fs::read_to_string(&file).unwrap();
    assert_eq!(Holder::parse(&record).pid, Some(std::process::id()));
    // A standby and an active of the same partition in one process do not exclude
    // each other.
    let second = PartitionLock::acquire(&dir).unwrap();
    let third = second.clone();
    drop(first);
    drop(second);
    assert!(file.exists(), "a guard is still alive");
    drop(third);
    assert!(!file.exists(), "the last guard removes the lock file");
    assert!(dir.is_dir(), "the directory stays");
    // And it can be taken again.
    drop(PartitionLock::acquire(&dir).unwrap());
}

/// Takes the lock file's lock through a handle of its own, as another process would,
/// and records a process that is not this one.
fn held_elsewhere(dir: &Path) -> File {
    std::fs::create_dir_all(dir).unwrap();
    let file = File::create(dir.join(LOCK_FILE_NAME)).unwrap();
    file.try_lock().unwrap();
    let holder = Holder {
        pid: Some(4_000_000_000),
        command: Some("statestore restore --backend redb".to_owned()),
        since: Some(1_796_584_329),
    };
    (&file).write_all(holder.record().as_bytes()).unwrap();
    file
}

#[test]
fn a_lock_held_by_another_process_is_refused_naming_it() {
    let scratch = Scratch::new("other");
    let dir = scratch.0.join("app").join("3");
    let other = held_elsewhere(&dir);
    for err in [
        PartitionLock::acquire(&dir).unwrap_err(),
        PartitionLock::check(&dir).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        let text = err.to_string();
        for part in [
            "process 4000000000 (statestore restore --backend redb), since 2026-12-06 19:12:09 UTC",
            &dir.display().to_string(),
            LOCK_FILE_NAME,
        ] {
            assert!(text.contains(part), "{text} should name {part}");
        }
    }
    assert!(
        Holder::parse(&std::fs::read_to_string(dir.join(LOCK_FILE_NAME)).unwrap()).pid
            == Some(4_000_000_000),
        "the loser left the holder's record as it was"
    );
    drop(other);
    // The other process died: its file stays, its lock does not.
    PartitionLock::check(&dir).unwrap();
    let lock = PartitionLock::acquire(&dir).unwrap();
    let record = std::fs::read_to_string(lock.file()).unwrap();
    assert_eq!(
        Holder::parse(&record).pid,
        Some(std::process::id()),
        "{record}"
    );
}

#[test]
fn checking_creates_nothing() {
    let scratch = Scratch::new("check");
    let dir = scratch.0.join("app").join("1");
    PartitionLock::check(&dir).unwrap();
    assert!(!scratch.0.exists(), "no directory created");
    std::fs::create_dir_all(&dir).unwrap();
    PartitionLock::check(&dir).unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no lock file created"
    );
    // This process's own lock is not another writer.
    let lock = PartitionLock::acquire(&dir).unwrap();
    PartitionLock::check(&dir).unwrap();
    drop(lock);
}

#[test]
fn a_file_where_the_directory_should_be_is_an_error_naming_it() {
    let scratch = Scratch::new("file");
    std::fs::create_dir_all(&scratch.0).unwrap();
    let dir = scratch.0.join("app");
    std::fs::write(&dir, b"not a directory").unwrap();
    let err = PartitionLock::acquire(&dir.join("0")).unwrap_err();
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
}

#[test]
fn what_killed_acquirers_left_is_replaced_or_removed() {
    let scratch = Scratch::new("leftovers");
    let dir = scratch.0.join("app").join("2");
    std::fs::create_dir_all(&dir).unwrap();
    // A holder killed while holding: its lock file stays, unlocked, naming it.
    std::fs::write(
        dir.join(LOCK_FILE_NAME),
        "statestore partition lock\npid: 4000000000\n",
    )
    .unwrap();
    // An acquirer killed before it named its file.
    let temporary = dir.join(format!("{LOCK_FILE_NAME}.4000000000-7"));
    std::fs::write(&temporary, "statestore partition lock\npid: 4000000000\n").unwrap();
    let lock = PartitionLock::acquire(&dir).unwrap();
    let record = std::fs::read_to_string(lock.file()).unwrap();
    assert_eq!(
        Holder::parse(&record).pid,
        Some(std::process::id()),
        "{record}"
    );
    assert!(!temporary.exists());
    drop(lock);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left");
}
