//! Reading the group's members and their partitions from the broker's description of
//! the group (`DescribeGroups`), for standby placement.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use state_core::{Error, Partition, Result};

use super::placement::GroupView;
use crate::error::{At, kafka_error};

/// The group's members (by client id) and the owners of `topic`'s partitions, or `None`
/// while the group is not `Stable` (mid-rebalance, its assignments are not final).
pub(crate) fn describe<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<GroupView>> {
    let list = client
        .fetch_group_list(Some(group), timeout)
        .map_err(|err| kafka_error("describing the consumer group", At::topic(topic), err))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(None);
    };
    if info.state() != "Stable" {
        return Ok(None);
    }
    let mut view = GroupView::default();
    let mut repeated = BTreeSet::new();
    for member in info.members() {
        let id = member.client_id().to_owned();
        if !view.members.insert(id.clone()) {
            repeated.insert(id.clone());
        }
        let assignment = member.assignment().unwrap_or_default();
        let partitions = assigned_partitions(assignment, topic).map_err(|problem| {
            Error::corruption(format!(
                "group {group}: the assignment of member {} ({id}) is unreadable: {problem}",
                member.id()
            ))
        })?;
        for partition in partitions {
            view.owners.insert(partition, id.clone());
        }
    }
    if !repeated.is_empty() {
        return Err(Error::invalid_input(format!(
            "group {group}: several members share client id {repeated:?}; standby placement \
             tells members apart by client id (leave client.id unset in the consumer settings, \
             or make it unique per instance)"
        )));
    }
    Ok(Some(view))
}

/// The partitions of `topic` in a consumer-protocol assignment (`ConsumerProtocolAssignment`
/// versions 0–3: a version, then an array of topics with their partitions, then user
/// data, which is not read). An empty assignment is a member without partitions.
pub(crate) fn assigned_partitions(
    bytes: &[u8],
    topic: &str,
) -> std::result::Result<Vec<Partition>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!("assignment version {version} is not one of 0-3"));
    }
    let mut ours = Vec::new();
    for _ in 0..reader.count()? {
        let name = reader.string()?;
        for _ in 0..reader.count()? {
            let partition = reader.i32()?;
            if name == topic {
                ours.push(partition);
            }
        }
    }
    Ok(ours)
}

/// Big-endian reads off an assignment, each failing with where the bytes ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let bytes = self
            .bytes
            .get(self.at..)
            .and_then(|rest| rest.first_chunk::<N>())
            .ok_or_else(|| {
                format!(
                    "{} bytes end at byte {} where {N} more were expected",
                    self.bytes.len(),
                    self.at
                )
            })?;
        self.at += N;
        Ok(*bytes)
    }

    fn i16(&mut self) -> std::result::Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> std::result::Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }

    /// An array length; a null array (-1) is empty.
    fn count(&mut self) -> std::result::Result<usize, String> {
        let at = self.at;
        match self.i32()? {
            -1 => Ok(0),
            n => usize::try_from(n).map_err(|_| format!("negative array length {n} at byte {at}")),
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        let at = self.at;
        let len = usize::try_from(self.i16()?)
            .map_err(|_| format!("negative string length at byte {at}"))?;
        let bytes = self
            .bytes
            .get(self.at..self.at + len)
            .ok_or_else(|| format!("a {len}-byte string at byte {at} runs past the end"))?;
        self.at += len;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("the string at byte {at} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An assignment as the consumer protocol encodes it.
    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend((topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            out.extend((topic.len() as i16).to_be_bytes());
            out.extend(topic.as_bytes());
            out.extend((partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        out.extend((user_data.len() as i32).to_be_bytes());
        out.extend(user_data);
        out
    }

    #[test]
    fn reads_the_partitions_of_one_topic() {
        let bytes = encode(3, &[("other", &[0, 1]), ("input", &[4, 2])], b"sticky");
        assert_eq!(assigned_partitions(&bytes, "input"), Ok(vec![4, 2]));
        assert_eq!(assigned_partitions(&bytes, "other"), Ok(vec![0, 1]));
        assert_eq!(assigned_partitions(&bytes, "absent"), Ok(vec![]));
        assert_eq!(assigned_partitions(&[], "input"), Ok(vec![]));
        let none = encode(0, &[], &[]);
        assert_eq!(assigned_partitions(&none, "input"), Ok(vec![]));
    }

    #[test]
    fn truncated_or_unknown_assignments_are_errors_that_say_where() {
        let bytes = encode(1, &[("input", &[4, 2])], &[]);
        for cut in 1..bytes.len() - 4 {
            let err = assigned_partitions(&bytes[..cut], "input").unwrap_err();
            assert!(err.contains("byte"), "cut at {cut}: {err}");
        }
        let future = encode(9, &[("input", &[1])], &[]);
        assert!(
            assigned_partitions(&future, "input")
                .unwrap_err()
                .contains("version 9")
        );
    }
}
