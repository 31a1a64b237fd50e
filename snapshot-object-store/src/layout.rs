//! Where a scope's objects live under the store's prefix, and the names that carry
//! their order and age:
//!
//! ```text
//! <prefix>/<application>/<store>/<partition>/files/<blake3 hex>
//! <prefix>/<application>/<store>/<partition>/manifests/m-<position:020>-<created_millis:013>-<writer>.json
//! <prefix>/<application>/<store>/<partition>/retention/pending-<millis:013>-<writer>.json
//! <prefix>/<application>/<store>/<partition>/retention/deleting-<millis:013>-<writer>.json
//! ```
//!
//! Application and store names pass state-core's name rules (Kafka's topic characters,
//! never `.` or `..`, never empty), and each is one escaped path segment, so no name can
//! reach outside its own directory; a negative partition is refused. Zero-padded numbers
//! make the names of one directory sort by position, then time.

use object_store::path::{Path, PathPart};
use state_core::{
    Error, Offset, Result, SnapshotScope, validate_application_id, validate_store_name,
};

/// The one checksum algorithm, as it prefixes checksums in manifests.
pub(crate) const CHECKSUM_PREFIX: &str = "blake3:";

/// The objects of one scope.
#[derive(Debug, Clone)]
pub(crate) struct ScopeKeys {
    dir: Path,
}

impl ScopeKeys {
    /// The directory of `scope` under `prefix`, after checking its names.
    pub(crate) fn new(prefix: &Path, scope: &SnapshotScope) -> Result<Self> {
        validate_application_id(&scope.application)
            .map_err(|err| err.context(format!("snapshots of {scope}")))?;
        validate_store_name(&scope.store)
            .map_err(|err| err.context(format!("snapshots of {scope}")))?;
        if scope.partition < 0 {
            return Err(Error::invalid_input(format!(
                "snapshots of {scope}: the partition is negative"
            )));
        }
        let dir = prefix
            .parts()
            .chain([
                PathPart::from(scope.application.as_str()),
                PathPart::from(scope.store.as_str()),
                PathPart::from(scope.partition.to_string()),
            ])
            .collect();
        Ok(Self { dir })
    }

    /// The directory of content-named files.
    pub(crate) fn files(&self) -> Path {
        self.dir.clone().join("files")
    }

    /// The file holding bytes of blake3 `hex`.
    pub(crate) fn file(&self, hex: &str) -> Path {
        self.files().join(hex)
    }

    /// The directory of manifests.
    pub(crate) fn manifests(&self) -> Path {
        self.dir.clone().join("manifests")
    }

    /// The manifest named by `key`.
    pub(crate) fn manifest(&self, key: &ManifestKey) -> Path {
        self.manifests().join(key.file_name())
    }

    /// The directory of retention records.
    pub(crate) fn retention(&self) -> Path {
        self.dir.clone().join("retention")
    }

    /// A retention record.
    pub(crate) fn record(&self, record: &RecordKey) -> Path {
        self.retention().join(record.file_name())
    }
}

/// What a manifest's name says: position, creation time, writer. Orders as "newer":
/// higher position, then later, then by writer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ManifestKey {
    pub(crate) position: Offset,
    pub(crate) created_millis: u64,
    pub(crate) writer: String,
}

impl ManifestKey {
    /// `m-<position:020>-<created_millis:013>-<writer>.json`.
    pub(crate) fn file_name(&self) -> String {
        format!(
            "m-{:020}-{:013}-{}.json",
            self.position, self.created_millis, self.writer
        )
    }

    /// The key a manifest's file name holds, or `None` for a name this crate did not
    /// write.
    pub(crate) fn parse(file_name: &str) -> Option<Self> {
        let rest = file_name.strip_prefix("m-")?.strip_suffix(".json")?;
        let (position, rest) = rest.split_once('-')?;
        let (created, writer) = rest.split_once('-')?;
        if position.len() != 20 || created.len() != 13 || writer.is_empty() {
            return None;
        }
        Some(Self {
            position: digits(position)?.try_into().ok()?,
            created_millis: digits(created)?,
            writer: writer.to_owned(),
        })
    }
}

/// The two kinds of retention record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// Files a pass found unnamed; a pass `grace` later may delete them.
    Pending,
    /// Files a pass is deleting now; an upload naming one of them does not publish.
    Deleting,
}

impl RecordKind {
    fn prefix(self) -> &'static str {
        match self {
            RecordKind::Pending => "pending-",
            RecordKind::Deleting => "deleting-",
        }
    }
}

/// What a retention record's name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordKey {
    pub(crate) kind: RecordKind,
    pub(crate) millis: u64,
    pub(crate) writer: String,
}

impl RecordKey {
    /// `<kind>-<millis:013>-<writer>.json`.
    pub(crate) fn file_name(&self) -> String {
        format!(
            "{}{:013}-{}.json",
            self.kind.prefix(),
            self.millis,
            self.writer
        )
    }

    /// The key a record's file name holds, or `None` for another name.
    pub(crate) fn parse(file_name: &str) -> Option<Self> {
        let (kind, rest) = [RecordKind::Pending, RecordKind::Deleting]
            .into_iter()
            .find_map(|kind| Some((kind, file_name.strip_prefix(kind.prefix())?)))?;
        let rest = rest.strip_suffix(".json")?;
        let (millis, writer) = rest.split_once('-')?;
        if millis.len() != 13 || writer.is_empty() {
            return None;
        }
        Some(Self {
            kind,
            millis: digits(millis)?,
            writer: writer.to_owned(),
        })
    }
}

/// The hex of a `blake3:<64 hex digits>` checksum, or `Corruption` naming `origin`.
pub(crate) fn checksum_hex<'a>(checksum: &'a str, origin: &str) -> Result<&'a str> {
    checksum
        .strip_prefix(CHECKSUM_PREFIX)
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .ok_or_else(|| {
            Error::corruption(format!(
                "{origin} has the checksum {checksum:?}, not blake3:<64 lowercase hex digits>"
            ))
        })
}

/// Whether `location` is directly inside `dir` (not deeper): only such objects are this
/// crate's.
pub(crate) fn direct_child(dir: &Path, location: &Path) -> bool {
    location
        .prefix_match(dir)
        .is_some_and(|mut rest| rest.next().is_some() && rest.next().is_none())
}

/// The last segment of `path`, the name in its directory.
pub(crate) fn file_name(path: &Path) -> String {
    path.filename().unwrap_or_default().to_owned()
}

fn digits(text: &str) -> Option<u64> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_read_back_and_sort_by_position_then_time() {
        let older = ManifestKey {
            position: 41,
            created_millis: 1_700_000_000_000,
            writer: "w-1-0a0b0c0d".into(),
        };
        let newer = ManifestKey {
            position: 100,
            created_millis: 1_600_000_000_000,
            writer: "a".into(),
        };
        for key in [&older, &newer] {
            assert_eq!(ManifestKey::parse(&key.file_name()).as_ref(), Some(key));
        }
        assert!(older < newer);
        assert!(older.file_name() < newer.file_name(), "names sort as keys");
        for bad in [
            "m-1-2-w.json",
            "x.json",
            "m-00000000000000000041-1700000000000-.json",
        ] {
            assert_eq!(ManifestKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_names_read_back() {
        for kind in [RecordKind::Pending, RecordKind::Deleting] {
            let key = RecordKey {
                kind,
                millis: 1_700_000_000_123,
                writer: "w-1".into(),
            };
            assert_eq!(RecordKey::parse(&key.file_name()), Some(key));
        }
        assert_eq!(RecordKey::parse("pending-12-w.json"), None);
    }

    #[test]
    fn names_cannot_climb_out_of_the_prefix() {
        let prefix = Path::from("snapshots");
        for scope in [
            SnapshotScope::new("..", "rewards", 0),
            SnapshotScope::new("shop", "a/../../b", 0),
            SnapshotScope::new("", "rewards", 0),
            SnapshotScope::new("shop", "rewards", -1),
        ] {
            let err = ScopeKeys::new(&prefix, &scope).unwrap_err();
            assert_eq!(err.kind(), state_core::ErrorKind::InvalidInput, "{scope}");
        }
        let keys = ScopeKeys::new(&prefix, &SnapshotScope::new("shop", "rewards", 3)).unwrap();
        assert_eq!(
            keys.file("ab").as_ref(),
            "snapshots/shop/rewards/3/files/ab"
        );
    }

    #[test]
    fn checksums_are_blake3_hex() {
        let hex = "a".repeat(64);
        assert_eq!(checksum_hex(&format!("blake3:{hex}"), "m").unwrap(), hex);
        for bad in ["sha256:aa", "blake3:../x", "blake3:AA"] {
            assert!(checksum_hex(bad, "m").is_err(), "{bad}");
        }
    }
}
