//! Decoding a member's assignment from the group's description: the consumer protocol's
//! `ConsumerProtocolAssignment` (versions 0 to 3 share this layout: the assigned
//! partitions per topic, then opaque user data, which is not needed here).

use std::collections::BTreeSet;

use state_core::{Error, Partition, Result};

/// The partitions of `topic` that `bytes`, a consumer-protocol assignment, gives its
/// member. Empty bytes (a member not yet assigned) assign nothing.
pub(crate) fn partitions_of(bytes: &[u8], topic: &str) -> Result<BTreeSet<Partition>> {
    let mut partitions = BTreeSet::new();
    if bytes.is_empty() {
        return Ok(partitions);
    }
    let mut reader = Reader { bytes, at: 0 };
    let _version = reader.i16()?;
    let topics = reader.count()?;
    for _ in 0..topics {
        let name = reader.string()?;
        let count = reader.count()?;
        for _ in 0..count {
            let partition = reader.i32()?;
            if name == topic {
                partitions.insert(partition);
            }
        }
    }
    Ok(partitions)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(Error::invalid_input(format!(
                "consumer-protocol assignment of {} bytes ends before byte {}",
                self.bytes.len(),
                self.at + n
            )));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array length; a null array (-1) holds nothing.
    fn count(&mut self) -> Result<usize> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }

    fn string(&mut self) -> Result<String> {
        let len = usize::try_from(self.i16()?).unwrap_or(0);
        let b = self.take(len)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::invalid_input("consumer-protocol assignment: topic name not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = 1i16.to_be_bytes().to_vec();
        out.extend(i32::try_from(topics.len()).unwrap().to_be_bytes());
        for (topic, partitions) in topics {
            out.extend(i16::try_from(topic.len()).unwrap().to_be_bytes());
            out.extend(topic.as_bytes());
            out.extend(i32::try_from(partitions.len()).unwrap().to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((-1i32).to_be_bytes());
        out
    }

    #[test]
    fn reads_the_partitions_of_one_topic() {
        let bytes = encode(&[("other", &[0, 1]), ("purchases", &[5, 2])]);
        assert_eq!(
            partitions_of(&bytes, "purchases").unwrap(),
            BTreeSet::from([2, 5])
        );
        assert!(partitions_of(&[], "purchases").unwrap().is_empty());
    }

    #[test]
    fn a_truncated_assignment_is_an_error() {
        let bytes = encode(&[("purchases", &[5, 2])]);
        let err = partitions_of(&bytes[..bytes.len() - 7], "purchases").unwrap_err();
        assert!(err.to_string().contains("ends before byte"), "{err}");
    }
}
