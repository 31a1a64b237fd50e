//! The suite for every backend compiled in (`statestore::backends()`) x the in-process
//! changelog.
conformance_tests::conformance_suite!(every_backend_x_in_process, conformance_tests::backends());
