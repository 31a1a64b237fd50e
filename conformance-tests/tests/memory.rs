//! The suite for memory x in-process changelog.
conformance_tests::conformance_suite!(memory_x_in_process, conformance_tests::memory());
