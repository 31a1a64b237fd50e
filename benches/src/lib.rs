//! Shared fixtures for the criterion benchmarks: deterministic keys and values, and the
//! raw engines opened the way the statestore backends open them, so ratios compare like
//! with like.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Number of keys loaded before read benchmarks.
pub const PRELOADED: usize = 100_000;
/// Value size in bytes (a small aggregate, like a reward total plus metadata).
pub const VALUE_LEN: usize = 100;

/// The `i`-th key: 16 bytes, spread so consecutive indices are not adjacent keys.
pub fn key(i: usize) -> [u8; 16] {
    let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&mixed.to_be_bytes());
    key[8..].copy_from_slice(&(i as u64).to_be_bytes());
    key
}

/// A value of [`VALUE_LEN`] bytes.
pub fn value(i: usize) -> Vec<u8> {
    let mut value = vec![0u8; VALUE_LEN];
    value[..8].copy_from_slice(&(i as u64).to_le_bytes());
    value
}

/// The raw RocksDB database the way `backend-rocksdb` opens it by default: the same
/// column families and no WAL on writes.
pub mod raw_rocksdb {
    use rocksdb::{DB, Options, WriteOptions};

    /// Opens a plain DB at `path` with Kafka Streams-like defaults.
    pub fn open(path: &std::path::Path) -> DB {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_write_buffer_size(16 << 20);
        options.set_max_write_buffer_number(3);
        DB::open(&options, path).unwrap()
    }

    /// Write options without the WAL, as the backend's default.
    pub fn write_options() -> WriteOptions {
        let mut options = WriteOptions::default();
        options.disable_wal(true);
        options
    }
}

/// What the Kafka benchmarks share: where the broker is and the runtime they drive it on.
pub mod kafka {
    /// A topic or group name no other run shares: `bench-<prefix>-<pid>-<nanos>`.
    pub fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("bench-{prefix}-{}-{nanos}", std::process::id())
    }

    /// `KAFKA_BOOTSTRAP_SERVERS`, default `127.0.0.1:9092` (`scripts/kafka.sh start`).
    pub fn bootstrap() -> String {
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
    }

    /// Deletes `topics` from the broker, so benchmarks that write gigabytes leave no
    /// gigabytes behind.
    pub fn delete_topics(rt: &tokio::runtime::Runtime, topics: &[&str]) {
        use rdkafka::admin::{AdminClient, AdminOptions};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap())
            .create()
            .unwrap();
        for result in rt
            .block_on(admin.delete_topics(topics, &AdminOptions::new()))
            .unwrap()
        {
            result.unwrap();
        }
    }

    /// Sends `record`, serving delivery reports for a millisecond whenever librdkafka's
    /// queue is full: how the benchmarks' raw producers write as fast as they can.
    pub fn send_when_room<K, P>(
        producer: &rdkafka::producer::BaseProducer,
        mut record: rdkafka::producer::BaseRecord<'_, K, P>,
    ) where
        K: rdkafka::message::ToBytes + ?Sized,
        P: rdkafka::message::ToBytes + ?Sized,
    {
        loop {
            match producer.send(record) {
                Ok(()) => return,
                Err((_, returned)) => {
                    record = returned;
                    producer.poll(std::time::Duration::from_millis(1));
                }
            }
        }
    }

    /// A two-worker runtime, as many workers as the benchmark machine has cores.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }
}
