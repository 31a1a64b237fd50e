//! Changelogs: the sink a logged store writes to and the reader restore reads from.

mod chunk;
mod guarantee;
pub mod in_memory;
mod positions;
mod reader;
mod record;
mod sink;
mod source;
mod topic;

pub use chunk::{ChangelogChunk, Headers};
pub use guarantee::{IsolationLevel, ProcessingGuarantee, RESTORE_ISOLATION};
pub use positions::ChangelogPositions;
pub use reader::{ChangelogReader, LogOffsets, ReadAhead, RestoreCursor};
pub use record::{ChangelogRecord, ConsumedRecord};
pub use sink::{ChangelogSink, SinkCommit, SourceCommit};
pub use source::{InputBinding, SourceOffsets};
pub use topic::{Changelog, SinkOptions, TopicSpec, changelog_topic_name};
