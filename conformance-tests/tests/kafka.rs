//! The model-based crash suite for every backend compiled in x Kafka on a real broker
//! (`scripts/kafka.sh start`). Under `CI=true` a missing broker fails the tests.
#![cfg(feature = "kafka")]
conformance_tests::conformance_suite!(@kafka every_backend_x_kafka, conformance_tests::backends());
