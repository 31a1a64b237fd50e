//! The suite for redb x in-process changelog.
#![cfg(feature = "redb")]
conformance_tests::conformance_suite!(redb_x_in_process, conformance_tests::redb());
