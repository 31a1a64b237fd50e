//! [`FetchQueue`]: one partition's records, taken from librdkafka a batch at a time
//! (`rd_kafka_consume_batch_queue`) instead of one `poll` per record.
//!
//! This is the workspace's only `unsafe` code. rust-rdkafka has no safe wrapper for batch
//! consumption, and its `poll` costs per record what a batch costs once: four clock reads
//! (its own loop's and librdkafka's poll bookkeeping), a lock of the partition to move the
//! application's position, and an `Arc` for the event that owns the record. Measured on
//! 10M records (`BENCHMARKS.md`, "Batches from librdkafka"), the reading thread's share of
//! the CPU fell from 38% to 18% and every backend restored faster.
//!
//! The partition's queue is split off the consumer's before the partition is assigned
//! (as rust-rdkafka's `split_partition_queue` does), so it holds this partition's records
//! and consumer errors only. The client's other events (its log lines, a lost connection,
//! a failed authentication) stay on the consumer's queue, which the caller still `poll`s:
//! a batch call would serve those by printing them to stderr instead of returning them.
//!
//! What the `unsafe` relies on, all from `rdkafka.h`:
//! - `rd_kafka_queue_get_partition` returns a new reference to the partition's queue (null
//!   for a producer), released with `rd_kafka_queue_destroy`, which must happen before the
//!   client is destroyed; `rd_kafka_queue_forward(queue, NULL)` stops forwarding it, for
//!   good, also after an assignment.
//! - `rd_kafka_consume_batch_queue` fills at most `size` slots of the array and returns how
//!   many (-1 on an error); each message is the caller's until `rd_kafka_message_destroy`,
//!   which again must come before the client's end, and its key, payload and headers stay
//!   valid and unchanged until then.
//! - A message's `err` says whether it is a record or a consumer error.
#![allow(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use state_core::{Error, Partition, Result};

/// Records taken from librdkafka per call at most: enough to pay its per-call costs once
/// per many records, few enough that a chunk that closes early holds back little.
const BATCH: usize = 512;

/// A consumer of one partition with that partition's queue of its own, and the records
/// taken from it but not yet handed out, in offset order.
pub(crate) struct FetchQueue {
    queue: NonNull<rdsys::rd_kafka_queue_t>,
    /// Taken from librdkafka, not yet handed out; each one is owned here until then.
    taken: VecDeque<NonNull<rdsys::rd_kafka_message_t>>,
    /// Where a batch call writes; empty between calls.
    slots: Vec<*mut rdsys::rd_kafka_message_t>,
    /// Outlives `queue` and `taken`: `drop` releases both first.
    consumer: BaseConsumer,
}

// SAFETY: librdkafka's queue handles and messages may be used from any thread, one at a
// time; `FetchQueue` hands neither out and every use of them takes `&mut self` or `self`.
unsafe impl Send for FetchQueue {}

impl FetchQueue {
    /// Gives `partition` of `topic` a queue of its own on `consumer`. Call it before the
    /// partition is assigned: records fetched before would already be on the consumer's
    /// queue.
    pub(crate) fn split(consumer: BaseConsumer, topic: &str, partition: Partition) -> Result<Self> {
        let name = CString::new(topic)
            .map_err(|_| Error::invalid_input(format!("topic name {topic:?} holds a NUL byte")))?;
        // SAFETY: the client lives as long as `consumer`, which `Self` owns and drops
        // after releasing this reference; `name` is a valid C string for the call.
        let queue = unsafe {
            rdsys::rd_kafka_queue_get_partition(
                consumer.client().native_ptr(),
                name.as_ptr(),
                partition,
            )
        };
        let queue = NonNull::new(queue).ok_or_else(|| {
            Error::internal(format!(
                "librdkafka gave no queue for topic {topic} partition {partition}"
            ))
        })?;
        // SAFETY: a valid queue handle; a null destination stops forwarding.
        unsafe { rdsys::rd_kafka_queue_forward(queue.as_ptr(), std::ptr::null_mut()) };
        Ok(Self {
            queue,
            taken: VecDeque::with_capacity(BATCH),
            slots: Vec::with_capacity(BATCH),
            consumer,
        })
    }

    /// The consumer, for its own queue (the client's events) and its position.
    pub(crate) fn consumer(&self) -> &BaseConsumer {
        &self.consumer
    }

    /// Whether records taken earlier are still waiting to be handed out.
    pub(crate) fn holds_records(&self) -> bool {
        !self.taken.is_empty()
    }

    /// The partition's next message: one taken earlier; else, with a zero `wait`, the
    /// first of a new batch of at most `up_to` records (and [`BATCH`]) of what is fetched
    /// now; else the first to arrive within `wait`. `None` when none came.
    ///
    /// Records taken from librdkafka leave its queue's byte count, so it may fetch more
    /// behind them: `up_to` is how many the caller expects to use now, so that what is held
    /// here stays within the caller's budget.
    pub(crate) fn next(&mut self, wait: Duration, up_to: usize) -> Option<ReadyMessage<'_>> {
        if self.taken.is_empty() {
            if wait.is_zero() {
                self.take_batch(0, up_to.clamp(1, BATCH));
            } else {
                // A batch call waits until it is full: wait for one record only.
                let millis = c_int::try_from(wait.as_millis().max(1)).unwrap_or(c_int::MAX);
                self.take_batch(millis, 1);
            }
        }
        self.taken.pop_front().map(|message| ReadyMessage {
            message,
            _queue: PhantomData,
        })
    }

    fn take_batch(&mut self, timeout_ms: c_int, size: usize) {
        debug_assert!(self.slots.is_empty());
        let size = size.min(self.slots.capacity());
        // SAFETY: `slots` has room for `size` pointers and librdkafka writes at most that
        // many.
        let count = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.as_ptr(),
                timeout_ms,
                self.slots.as_mut_ptr(),
                size,
            )
        };
        // -1 only for a queue of no consumer, which `split` rules out.
        let count = usize::try_from(count).unwrap_or(0).min(size);
        // SAFETY: librdkafka initialised the first `count` slots.
        unsafe { self.slots.set_len(count) };
        self.taken
            .extend(self.slots.drain(..).filter_map(NonNull::new));
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        for message in self.taken.drain(..) {
            // SAFETY: each taken message is owned here and destroyed once, while the
            // client lives (`consumer` drops after this).
            unsafe { rdsys::rd_kafka_message_destroy(message.as_ptr()) };
        }
        // SAFETY: the reference taken in `split`, released once, while the client lives.
        unsafe { rdsys::rd_kafka_queue_destroy(self.queue.as_ptr()) };
    }
}

/// One message taken from a [`FetchQueue`]: a record or a consumer error. Destroyed when
/// dropped; it cannot outlive the queue, nor so the consumer.
pub(crate) struct ReadyMessage<'q> {
    message: NonNull<rdsys::rd_kafka_message_t>,
    _queue: PhantomData<&'q mut FetchQueue>,
}

impl ReadyMessage<'_> {
    fn raw(&self) -> &rdsys::rd_kafka_message_t {
        // SAFETY: the message is owned by `self` and alive until `drop`.
        unsafe { self.message.as_ref() }
    }

    /// The consumer error this message carries instead of a record, as `poll` reports it.
    pub(crate) fn error(&self) -> Option<KafkaError> {
        match self.raw().err {
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => None,
            rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                Some(KafkaError::PartitionEOF(self.raw().partition))
            }
            code => Some(KafkaError::MessageConsumption(code.into())),
        }
    }

    /// The record's offset.
    pub(crate) fn offset(&self) -> i64 {
        self.raw().offset
    }

    /// The record's key; `None` for a record without one.
    pub(crate) fn key(&self) -> Option<&[u8]> {
        let raw = self.raw();
        // SAFETY: librdkafka's key bytes, `key_len` of them, live as long as the message.
        (!raw.key.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(raw.key.cast::<u8>(), raw.key_len) })
    }

    /// The record's value; `None` for a tombstone.
    pub(crate) fn payload(&self) -> Option<&[u8]> {
        let raw = self.raw();
        // SAFETY: as for the key, with `len` bytes.
        (!raw.payload.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(raw.payload.cast::<u8>(), raw.len) })
    }

    /// The record's timestamp in milliseconds, or -1 when it has none (Kafka's "no
    /// timestamp").
    pub(crate) fn timestamp(&self) -> i64 {
        // SAFETY: reads the message only; a null type pointer is allowed.
        unsafe { rdsys::rd_kafka_message_timestamp(self.message.as_ptr(), std::ptr::null_mut()) }
    }

    /// The record's headers in order, a null value read as empty; `Err` with the
    /// offending bytes for a header name that is not UTF-8.
    pub(crate) fn headers(&self) -> std::result::Result<Vec<(String, Vec<u8>)>, Vec<u8>> {
        let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: parses the message's own header section, which stays owned by the
        // message; NOENT (no headers) leaves the pointer null.
        let err = unsafe { rdsys::rd_kafka_message_headers(self.message.as_ptr(), &mut headers) };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for index in 0.. {
            let mut name: *const c_char = std::ptr::null();
            let mut value: *const c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `headers` belongs to the message; an index past the last one
            // answers NOENT and writes nothing.
            let err = unsafe {
                rdsys::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size)
            };
            if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                break;
            }
            // SAFETY: librdkafka's NUL-terminated copy of the name, alive with the message.
            let name = unsafe { CStr::from_ptr(name) };
            let value = if value.is_null() {
                Vec::new()
            } else {
                // SAFETY: `size` bytes of the value, alive with the message.
                unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec()
            };
            match name.to_str() {
                Ok(name) => out.push((name.to_owned(), value)),
                Err(_) => return Err(name.to_bytes().to_vec()),
            }
        }
        Ok(out)
    }
}

impl Drop for ReadyMessage<'_> {
    fn drop(&mut self) {
        // SAFETY: owned by `self`, destroyed once, before its queue and the consumer.
        unsafe { rdsys::rd_kafka_message_destroy(self.message.as_ptr()) };
    }
}
