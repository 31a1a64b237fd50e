//! The model-based crash suite for memory x Kafka on a real broker
//! (`scripts/kafka.sh start`). Under `CI=true` a missing broker fails the tests.
#![cfg(feature = "kafka")]
conformance_tests::conformance_suite!(@kafka memory_x_kafka, conformance_tests::memory());
#[cfg(all(feature = "kafka", feature = "rocksdb"))]
conformance_tests::conformance_suite!(@kafka rocksdb_x_kafka, conformance_tests::rocksdb());
#[cfg(all(feature = "kafka", feature = "redb"))]
conformance_tests::conformance_suite!(@kafka redb_x_kafka, conformance_tests::redb());
