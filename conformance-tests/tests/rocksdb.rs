//! The suite for rocksdb x in-process changelog.
#![cfg(feature = "rocksdb")]
conformance_tests::conformance_suite!(rocksdb_x_in_process, conformance_tests::rocksdb());
