//! Processing guarantees and read isolation.

/// How a logged store makes its changes durable, as Kafka Streams'
/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProcessingGuarantee {
    /// Changes are flushed to the changelog at commit. After a crash, restore yields the
    /// state at the last commit or later (a prefix of the operations that covers every
    /// commit): nothing committed is lost, nothing is reordered or invented.
    #[default]
    AtLeastOnce,
    /// Changes between commits form one changelog transaction. After a crash, restore
    /// (reading committed records only) yields exactly the state at the last commit.
    ExactlyOnce,
}

impl ProcessingGuarantee {
    /// The isolation level an input consumer reads with under this guarantee (Kafka
    /// Streams' choice: committed records under exactly-once). Restore reads every
    /// changelog with [`RESTORE_ISOLATION`] whatever the guarantee.
    pub fn isolation(self) -> IsolationLevel {
        match self {
            ProcessingGuarantee::AtLeastOnce => IsolationLevel::ReadUncommitted,
            ProcessingGuarantee::ExactlyOnce => IsolationLevel::ReadCommitted,
        }
    }

    /// A short name for logs and test names.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
            ProcessingGuarantee::ExactlyOnce => "exactly_once",
        }
    }
}

/// The isolation level the builder's and the store manager's restores and standbys read
/// changelogs with, under either guarantee: committed records only. A changelog written
/// without transactions reads the same either way (its records are stable as soon as they
/// are written); one that holds transactions (written under exactly-once, or before an
/// application moved to at-least-once) would otherwise give restore the records of
/// aborted transactions, which no commit ever covered. A reader made with
/// [`IsolationLevel::ReadUncommitted`] reads them: an explicit choice, never the default.
pub const RESTORE_ISOLATION: IsolationLevel = IsolationLevel::ReadCommitted;

/// Which records a changelog reader returns, as Kafka's `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only records outside transactions or in committed ones; the end offset is the last
    /// stable offset (the first offset of the oldest open transaction).
    ReadCommitted,
}

impl IsolationLevel {
    /// Kafka's `isolation.level` value for this level.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}
