//! How much a restore cursor reads ahead: its budget split between librdkafka and the
//! cursor's chunks, and the fetch settings that let librdkafka keep up.

use state_core::ReadAhead;

use crate::cursor::{CHUNKS_AHEAD, ChunkLimits};

/// The read-ahead of a cursor opened with plain
/// [`ChangelogReader::open`](state_core::ChangelogReader::open).
pub(crate) const DEFAULT_READ_AHEAD: ReadAhead = ReadAhead {
    chunk_records: state_core::DEFAULT_RESTORE_BATCH,
    max_bytes: state_core::DEFAULT_MAX_BYTES_IN_FLIGHT,
    headers: true,
};

/// How a cursor splits its read-ahead budget between librdkafka and its own chunks, and
/// the fetch settings that let librdkafka keep up.
///
/// librdkafka holds a fetch response while it decodes it (`max.partition.fetch.bytes`, a
/// quarter of the budget and at most 1 MiB) and a queue of decoded messages bounded by a
/// quarter of the budget both in key and value bytes (`queued.max.messages.kbytes`) and in
/// messages at ~320 bytes each (`queued.min.messages`); the cursor holds the chunk being
/// filled, [`CHUNKS_AHEAD`] chunks waiting and the one being applied, sharing the other
/// half.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchBudget {
    read_ahead: ReadAhead,
}

impl FetchBudget {
    /// librdkafka refuses a fetch size or a queue below 1 KiB.
    const MIN_BYTES: usize = 1 << 10;
    /// librdkafka's default fetch size per partition; larger fetches measured no faster
    /// here and held twice the memory.
    const MAX_FETCH_BYTES: usize = 1 << 20;
    /// What librdkafka holds per queued message besides its key and value (measured).
    const QUEUED_MESSAGE_BYTES: usize = 320;
    /// librdkafka's default `queued.min.messages`.
    const DEFAULT_QUEUED_MESSAGES: usize = 100_000;

    pub(crate) fn new(read_ahead: ReadAhead) -> Self {
        Self { read_ahead }
    }

    fn quarter(&self) -> usize {
        (self.read_ahead.max_bytes / 4).max(Self::MIN_BYTES)
    }

    /// The consumer settings of a restore cursor (and of the raw consumer it is
    /// benchmarked against).
    pub(crate) fn consumer_settings(&self) -> Vec<(&'static str, String)> {
        let fetch = self.quarter().min(Self::MAX_FETCH_BYTES);
        let queued_kbytes = (self.quarter() / 1024).clamp(1, 2_097_151);
        // librdkafka's byte limit counts keys and values only, but each queued message
        // also costs it ~320 bytes (its op, its message and its share of the fetch buffer:
        // 4 partitions with librdkafka's default of 100,000 messages each peaked at 199 MB,
        // with 10,000 at 84 MB), so the count is bounded by the budget too.
        let queued_messages = (self.quarter() / Self::QUEUED_MESSAGE_BYTES)
            .clamp(1000, Self::DEFAULT_QUEUED_MESSAGES);
        vec![
            ("max.partition.fetch.bytes", fetch.to_string()),
            ("queued.max.messages.kbytes", queued_kbytes.to_string()),
            // librdkafka waits this long before fetching again once its queue is full
            // (default 1 s): with the queue bounded it filled in a few milliseconds and
            // the fetcher then idled, so a million-record read took 4.6-5.5 s instead of
            // 0.8 s (`BENCHMARKS.md`).
            ("fetch.queue.backoff.ms", "10".to_owned()),
            ("queued.min.messages", queued_messages.to_string()),
        ]
    }

    pub(crate) fn chunk_limits(&self) -> ChunkLimits {
        ChunkLimits {
            records: self.read_ahead.chunk_records.max(1),
            bytes: (self.read_ahead.max_bytes / 2 / (CHUNKS_AHEAD + 2)).max(Self::MIN_BYTES),
            data_hint: 0,
            headers: self.read_ahead.headers,
        }
    }
}

/// The librdkafka settings a restore cursor reading ahead by `read_ahead` uses on top of
/// the user's, for tools that read a changelog the same way (the benchmarks' raw
/// consumer).
pub fn restore_consumer_settings(read_ahead: ReadAhead) -> Vec<(&'static str, String)> {
    FetchBudget::new(read_ahead).consumer_settings()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rdkafka::config::FromClientConfig;
    use rdkafka::consumer::BaseConsumer;

    use super::*;

    fn setting(settings: &BTreeMap<&str, String>, key: &str) -> usize {
        settings[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number"))
    }

    #[test]
    fn the_read_ahead_budget_bounds_what_librdkafka_and_the_chunks_hold() {
        for max_bytes in [64 << 10, 1 << 20, 8 << 20, 32 << 20, 1 << 30] {
            let budget = FetchBudget::new(ReadAhead {
                chunk_records: 1000,
                max_bytes,
                headers: false,
            });
            let settings: BTreeMap<_, _> = budget.consumer_settings().into_iter().collect();
            let fetch = setting(&settings, "max.partition.fetch.bytes");
            let queued = setting(&settings, "queued.max.messages.kbytes") * 1024;
            let messages = setting(&settings, "queued.min.messages");
            assert!(
                messages * FetchBudget::QUEUED_MESSAGE_BYTES <= (max_bytes / 4).max(320_000),
                "budget {max_bytes}: {messages} queued messages"
            );
            let chunks = budget.chunk_limits().bytes * (CHUNKS_AHEAD + 2);
            assert!(
                fetch + queued + chunks <= max_bytes,
                "budget {max_bytes}: fetch {fetch} + queue {queued} + chunks {chunks}"
            );
            assert!(fetch <= FetchBudget::MAX_FETCH_BYTES);
            assert_eq!(budget.chunk_limits().records, 1000);
        }
    }

    #[test]
    fn a_tiny_budget_still_gives_librdkafka_settings_it_accepts() {
        let budget = FetchBudget::new(ReadAhead {
            chunk_records: 0,
            max_bytes: 0,
            headers: false,
        });
        let settings: BTreeMap<_, _> = budget.consumer_settings().into_iter().collect();
        assert!(setting(&settings, "max.partition.fetch.bytes") >= 1024);
        assert!(setting(&settings, "queued.max.messages.kbytes") >= 1);
        assert_eq!(budget.chunk_limits().records, 1);
        let config: rdkafka::ClientConfig = settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        assert!(BaseConsumer::from_config(&config).is_ok());
    }
}
