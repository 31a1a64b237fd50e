//! The memory store's checkpoint file: a sorted dump of its entries and position.
//!
//! Every integer is big-endian:
//!
//! | bytes | what |
//! | --- | --- |
//! | 8 | [`MAGIC`], `statestore memory dump` |
//! | 4 | the format version, [`FORMAT`] |
//! | 4 + n | the length of the encoded position, then `Position::encode` |
//! | per entry | tag `1`, key length (4), key, value length (4), value; keys strictly ascending |
//! | 1 + 8 | tag `0`, then the number of entries |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The reader checks all of it (the magic, the version, every length against what is
//! left of the file, the key order, the count, the checksum, nothing after it), so a
//! truncated or garbled file is refused naming the byte where it went wrong, never
//! loaded in part. A length is never trusted to size an allocation beyond the bytes the
//! file still has.
//!
//! The checksum is a CRC-32 written here (slicing by 8, about 1 GB/s) rather than a
//! dependency: the crate has none that offers one, and the file only needs to catch
//! accidental damage; the snapshot store checks each file's BLAKE3 besides.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use state_core::{Error, Position, Result};

/// The first bytes of every dump.
pub(crate) const MAGIC: [u8; 8] = *b"SSMEMDMP";

/// The version of the layout above; [`crate::CAPABILITY`]'s snapshot format.
pub(crate) const FORMAT: u32 = 1;

const ENTRY: u8 = 1;
const END: u8 = 0;

/// Writes a dump to `out`: the entries in ascending key order, framed beforehand
/// ([`DumpWriter::framed`]), then [`DumpWriter::finish`].
pub(crate) struct DumpWriter<W: Write> {
    out: W,
    crc: Crc32,
    entries: u64,
}

impl<W: Write> DumpWriter<W> {
    /// Starts a dump at `position`.
    pub(crate) fn new(out: W, position: &Position) -> io::Result<Self> {
        let mut writer = Self {
            out,
            crc: Crc32::new(),
            entries: 0,
        };
        writer.put(&MAGIC)?;
        writer.put(&FORMAT.to_be_bytes())?;
        writer.chunk(&position.encode())?;
        Ok(writer)
    }

    /// Writes the end and the checksum, and returns the output and the entry count.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64)> {
        self.put(&[END])?;
        self.put(&self.entries.to_be_bytes())?;
        let crc = self.crc.value();
        self.out.write_all(&crc.to_be_bytes())?;
        Ok((self.out, self.entries))
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    /// Appends entries framed beforehand ([`Framed`]), in ascending key order after any
    /// written before.
    pub(crate) fn framed(&mut self, framed: &Framed) -> io::Result<()> {
        self.put(&framed.bytes)?;
        self.entries += framed.entries;
        Ok(())
    }

    fn chunk(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(&length(bytes)?)?;
        self.put(bytes)
    }
}

/// Entries laid out exactly as a dump holds them, without the checksum: a copy of the
/// data cheap enough to take while the store is held still (a checkpoint's consistent
/// cut), checksummed later as [`DumpWriter::framed`] writes it.
#[derive(Debug, Default)]
pub(crate) struct Framed {
    bytes: Vec<u8>,
    entries: u64,
}

impl Framed {
    /// Appends one entry; the caller gives keys in strictly ascending order.
    pub(crate) fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let (key_len, value_len) = (length(key)?, length(value)?);
        self.bytes.push(ENTRY);
        self.bytes.extend_from_slice(&key_len);
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(&value_len);
        self.bytes.extend_from_slice(value);
        self.entries += 1;
        Ok(())
    }
}

/// The length prefix of a key or value.
fn length(bytes: &[u8]) -> io::Result<[u8; 4]> {
    u32::try_from(bytes.len())
        .map(u32::to_be_bytes)
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a {}-byte key or value does not fit a dump", bytes.len()),
            )
        })
}

/// Creates the dump file `path` with `write`, which gets a buffered writer of it, and
/// makes it durable.
pub(crate) fn create(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let io_error = |err: io::Error| Error::from(err).context(format!("writing {}", path.display()));
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out)?;
    let file = out.into_inner().map_err(|err| io_error(err.into_error()))?;
    file.sync_all().map_err(io_error)
}

/// A dump read whole and checked: every check of the module docs passed, the checksum
/// too. Its entries are then read in place, in runs that threads can take apart
/// ([`Dump::runs`]), so an entry costs no copy and no check more.
///
/// The file is read whole rather than streamed: the price is its size in memory while
/// the store is built from it (a store takes several times its dump's size anyway), and
/// it lets the checksum run on a thread of its own beside the checking pass, so it adds
/// no time.
#[derive(Debug)]
pub(crate) struct Dump {
    bytes: Vec<u8>,
    position: Position,
    entries: u64,
    /// The offset of every [`MARK_EVERY`]th entry's tag, from the first, then the end
    /// tag's: where runs can start and stop.
    marks: Vec<usize>,
}

/// How many entries lie between two marks.
const MARK_EVERY: u64 = 1 << 14;

impl Dump {
    /// Reads and checks the dump at `path`.
    ///
    /// A file that does not start with [`MAGIC`] is `Foreign` (an empty one too); another
    /// format version is `InvalidInput`; anything else wrong is `Corruption` naming the
    /// file and the byte.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|err| Error::from(err).context(format!("reading {}", path.display())))?;
        if bytes.is_empty() {
            return Err(Error::foreign(format!(
                "{} is not a statestore memory checkpoint: it is an empty file; it was left \
                 as it is",
                path.display()
            )));
        }
        // An intact dump ends with its checksum, which covers everything before it.
        let covered = bytes.len().saturating_sub(4);
        let (position, entries, marks) = std::thread::scope(|scope| {
            let checksum = scope.spawn(|| crc32(&bytes[..covered]));
            let mut reader = Reader {
                path,
                bytes: &bytes,
                offset: 0,
            };
            let checked = reader.entries();
            // The thread only reads within the slice and cannot panic; should it, its
            // panic is this call's.
            let computed = checksum
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            let checked = checked?;
            reader.checksum(computed, covered)?;
            Ok::<_, Error>(checked)
        })?;
        Ok(Self {
            bytes,
            position,
            entries,
            marks,
        })
    }

    /// The changelog position the dump was taken at.
    pub(crate) fn position(&self) -> &Position {
        &self.position
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> u64 {
        self.entries
    }

    /// Its entries in at most `runs` runs of consecutive entries of about equal length,
    /// in key order: the first run's first key is the lowest, the last run's last the
    /// highest.
    pub(crate) fn runs(&self, runs: usize) -> Vec<Entries<'_>> {
        let spans = self.marks.len() - 1;
        let runs = runs.clamp(1, spans.max(1));
        (0..runs)
            .map(|run| {
                let (first, last) = (run * spans / runs, (run + 1) * spans / runs);
                Entries {
                    bytes: &self.bytes[..self.marks[last]],
                    offset: self.marks[first],
                }
            })
            .collect()
    }
}

/// A run of a checked dump's entries, as `(key, value)` pairs in key order.
#[derive(Debug)]
pub(crate) struct Entries<'a> {
    /// The dump up to the run's end.
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Entries<'a> {
    /// The next `len` bytes. The dump was checked whole, so these are always there; a
    /// run that somehow met a short field would end there instead of panicking.
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes: &'a [u8] = self.bytes;
        let taken = bytes.get(self.offset..self.offset.checked_add(len)?)?;
        self.offset += len;
        Some(taken)
    }

    fn chunk(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(len).ok()?)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        // The tag, which the check found to be an entry's.
        self.take(1)?;
        Some((self.chunk()?, self.chunk()?))
    }
}

/// Reads the dump at `path` ([`Dump::read`]), calling `visit` with each entry in order,
/// and returns its position and entry count.
#[cfg(test)]
pub(crate) fn read(path: &Path, mut visit: impl FnMut(&[u8], &[u8])) -> Result<(Position, u64)> {
    let dump = Dump::read(path)?;
    for run in dump.runs(1) {
        run.for_each(|(key, value)| visit(key, value));
    }
    Ok((dump.position().clone(), dump.len()))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.value()
}

/// Parses a dump held in memory, front to back, keeping the offset for the errors.
struct Reader<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// Everything up to the checksum: the magic, the version, the position, the entries
    /// and their count; returns the position, the count and the marks of [`Dump`].
    fn entries(&mut self) -> Result<(Position, u64, Vec<usize>)> {
        let magic = self.magic()?;
        if magic != MAGIC {
            return Err(Error::foreign(format!(
                "{} is not a statestore memory checkpoint: it starts with {} where the magic \
                 {} should be; it was left as it is",
                self.path.display(),
                hex(&magic),
                hex(&MAGIC)
            )));
        }
        let format = self.u32("the format version")?;
        if format != FORMAT {
            return Err(Error::invalid_input(format!(
                "{} is a statestore memory checkpoint of format {format}; this version reads \
                 format {FORMAT}",
                self.path.display()
            )));
        }
        let at = self.offset;
        let position = self.chunk("the position")?;
        let position =
            Position::decode(position, &format!("{} at byte {at}", self.path.display()))?;
        let mut previous: Option<&[u8]> = None;
        let mut entries = 0u64;
        let mut marks = Vec::new();
        loop {
            let at = self.offset;
            if entries.is_multiple_of(MARK_EVERY) {
                marks.push(at);
            }
            match self.u8("an entry tag")? {
                ENTRY => {}
                END => {
                    if !entries.is_multiple_of(MARK_EVERY) {
                        marks.push(at);
                    }
                    break;
                }
                other => return Err(self.damaged(at, &format!("unknown entry tag {other}"))),
            }
            let key = self.chunk("a key")?;
            if previous.is_some_and(|previous| previous >= key) {
                return Err(self.damaged(at, "the entry's key is not above the one before it"));
            }
            self.chunk("a value")?;
            previous = Some(key);
            entries += 1;
        }
        let at = self.offset;
        let count = u64::from_be_bytes(self.array("the entry count")?);
        if count != entries {
            return Err(self.damaged(
                at,
                &format!("the count says {count} entries, the file holds {entries}"),
            ));
        }
        Ok((position, entries, marks))
    }

    /// The checksum and the end of the file. `computed` is the checksum of the first
    /// `covered` bytes, which are the ones before the checksum when nothing follows it.
    fn checksum(&mut self, computed: u32, covered: usize) -> Result<()> {
        let computed = if self.offset == covered {
            computed
        } else {
            crc32(&self.bytes[..self.offset])
        };
        let at = self.offset;
        let stored = u32::from_be_bytes(self.array("the checksum")?);
        if stored != computed {
            return Err(self.damaged(
                at,
                &format!("the checksum is {stored:08x}, the bytes before it give {computed:08x}"),
            ));
        }
        if self.offset != self.bytes.len() {
            return Err(self.damaged(
                self.offset,
                &format!(
                    "{} bytes follow the checksum",
                    self.bytes.len() - self.offset
                ),
            ));
        }
        Ok(())
    }

    fn damaged(&self, offset: usize, what: &str) -> Error {
        Error::corruption(format!(
            "memory checkpoint {} is damaged at byte {offset}: {what}",
            self.path.display()
        ))
    }

    /// The first 8 bytes, or fewer in a shorter file. A shorter file whose bytes begin
    /// the magic is a dump cut short; any other is someone else's file.
    fn magic(&mut self) -> Result<[u8; 8]> {
        let available = self.bytes.len().min(8);
        let mut magic = [0u8; 8];
        magic[..available].copy_from_slice(self.take(available, "the magic")?);
        if available < 8 && MAGIC.starts_with(&magic[..available]) {
            return Err(self.damaged(self.offset, "the file ends inside the magic"));
        }
        Ok(magic)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(self.take(N, what)?);
        Ok(bytes)
    }

    /// A length-prefixed byte string.
    fn chunk(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let at = self.offset;
        let len = u64::from(self.u32(what)?);
        let left = (self.bytes.len() - self.offset) as u64;
        if len > left {
            return Err(self.damaged(
                at,
                &format!(
                    "the length of {what}, {len} bytes, runs past the end of the file \
                     ({} bytes)",
                    self.bytes.len()
                ),
            ));
        }
        // At most what is left, checked just above.
        self.take(len as usize, what)
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8]> {
        let bytes: &'a [u8] = self.bytes;
        let taken = bytes
            .get(self.offset..self.offset.saturating_add(len))
            .ok_or_else(|| self.damaged(self.offset, &format!("the file ends inside {what}")))?;
        self.offset += len;
        Ok(taken)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CRC-32 as zlib, PNG and Ethernet compute it (reflected polynomial `0xEDB88320`),
/// eight bytes per step through eight tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

/// `TABLES[0]` is the classic byte table; `TABLES[k][b]` is the CRC of byte `b`
/// followed by `k` zero bytes, so eight bytes combine with eight lookups.
const TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut byte = 0;
        while byte < 256 {
            let previous = tables[k - 1][byte];
            tables[k][byte] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            byte += 1;
        }
        k += 1;
    }
    tables
}

impl Crc32 {
    pub(crate) fn new() -> Self {
        Self(!0)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let high = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            crc = TABLES[7][(low & 0xFF) as usize]
                ^ TABLES[6][((low >> 8) & 0xFF) as usize]
                ^ TABLES[5][((low >> 16) & 0xFF) as usize]
                ^ TABLES[4][(low >> 24) as usize]
                ^ TABLES[3][(high & 0xFF) as usize]
                ^ TABLES[2][((high >> 8) & 0xFF) as usize]
                ^ TABLES[1][((high >> 16) & 0xFF) as usize]
                ^ TABLES[0][(high >> 24) as usize];
        }
        for &byte in chunks.remainder() {
            crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(byte)) & 0xFF) as usize];
        }
        self.0 = crc;
    }

    pub(crate) fn value(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(bytes: &[u8]) -> u32 {
        let mut crc = Crc32::new();
        crc.update(bytes);
        crc.value()
    }

    /// The standard check value, and agreement between the 8-byte path and the byte
    /// path at every split.
    #[test]
    fn crc32_matches_the_standard_and_splits_do_not_matter() {
        assert_eq!(crc(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(b""), 0);
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = crc(&bytes);
        for split in 0..bytes.len() {
            let mut parts = Crc32::new();
            parts.update(&bytes[..split]);
            parts.update(&bytes[split..]);
            assert_eq!(parts.value(), whole, "split at {split}");
        }
    }

    fn dump(entries: &[(&[u8], &[u8])], position: &Position) -> Vec<u8> {
        let mut framed = Framed::default();
        for (key, value) in entries {
            framed.entry(key, value).unwrap();
        }
        let mut writer = DumpWriter::new(Vec::new(), position).unwrap();
        writer.framed(&framed).unwrap();
        writer.finish().unwrap().0
    }

    fn read_bytes(bytes: &[u8]) -> Result<(Position, Vec<state_core::KeyValue>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump");
        std::fs::write(&path, bytes).unwrap();
        let mut entries = Vec::new();
        let (position, count) = read(&path, |k, v| entries.push((k.to_vec(), v.to_vec())))?;
        assert_eq!(count, entries.len() as u64);
        Ok((position, entries))
    }

    #[test]
    fn a_dump_reads_back() {
        let position: Position = [(0, 7), (3, 1)].into_iter().collect();
        let bytes = dump(&[(b"", b"empty"), (b"a", b""), (b"b\xff", b"2")], &position);
        let (read_position, entries) = read_bytes(&bytes).unwrap();
        assert_eq!(read_position, position);
        assert_eq!(
            entries,
            vec![
                (b"".to_vec(), b"empty".to_vec()),
                (b"a".to_vec(), Vec::new()),
                (b"b\xff".to_vec(), b"2".to_vec())
            ]
        );
    }

    /// Every single flipped byte and every truncation is refused: Foreign in the magic,
    /// InvalidInput in the version, Corruption everywhere else, naming a byte.
    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = dump(
            &[(b"k1", b"v1"), (b"k2", b"value two")],
            &Position::of(0, 4),
        );
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            let err = read_bytes(&damaged).unwrap_err();
            let expected = match at {
                0..8 => state_core::ErrorKind::Foreign,
                8..12 => state_core::ErrorKind::InvalidInput,
                _ => state_core::ErrorKind::Corruption,
            };
            assert_eq!(err.kind(), expected, "flip at {at}: {err}");
            if expected == state_core::ErrorKind::Corruption {
                assert!(err.message().contains("at byte"), "flip at {at}: {err}");
            }
        }
        for len in 0..bytes.len() {
            let err = read_bytes(&bytes[..len]).unwrap_err();
            let expected = if len == 0 {
                state_core::ErrorKind::Foreign
            } else {
                state_core::ErrorKind::Corruption
            };
            assert_eq!(err.kind(), expected, "cut to {len}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            read_bytes(&longer).unwrap_err().kind(),
            state_core::ErrorKind::Corruption
        );
    }

    /// A length field garbled to a huge value is refused before anything is allocated.
    #[test]
    fn a_huge_length_is_refused_without_allocating_it() {
        let mut bytes = dump(&[(b"k", b"v")], &Position::empty());
        // Magic, version, position length and the position's version byte, entry tag.
        let key_len = 8 + 4 + 4 + 1 + 1;
        bytes[key_len..key_len + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = read_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Corruption);
        assert!(err.message().contains("runs past the end"), "{err}");
    }

    /// However many runs a dump is cut into, they hold every entry once, in order.
    #[test]
    fn runs_cover_every_entry_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump");
        let every = MARK_EVERY as u32;
        for count in [0, 1, every - 1, every, every + 1, 3 * every + 5] {
            let keys: Vec<Vec<u8>> = (0..count).map(|i| i.to_be_bytes().to_vec()).collect();
            let entries: Vec<(&[u8], &[u8])> =
                keys.iter().map(|key| (&key[..], &key[1..])).collect();
            std::fs::write(&path, dump(&entries, &Position::empty())).unwrap();
            let read = Dump::read(&path).unwrap();
            assert_eq!(read.len(), u64::from(count));
            for runs in 1..6 {
                let cut = read.runs(runs);
                assert!(
                    !cut.is_empty() && cut.len() <= runs,
                    "{count} entries in {runs}"
                );
                let all: Vec<(&[u8], &[u8])> = cut.into_iter().flatten().collect();
                assert_eq!(all, entries, "{count} entries in {runs} runs");
            }
        }
    }

    #[test]
    fn keys_out_of_order_are_refused() {
        let bytes = dump(&[(b"b", b"1"), (b"a", b"2")], &Position::empty());
        let err = read_bytes(&bytes).unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Corruption);
        assert!(err.message().contains("not above"), "{err}");
    }
}
