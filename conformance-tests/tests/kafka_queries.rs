//! Queries through a consumer group on a real broker (`scripts/kafka.sh start`): every
//! answer a committed value or a typed "not now" while instances join, die and restart
//! (see `conformance_tests::query_scenarios`). Under `CI=true` a missing broker fails.
#![cfg(feature = "kafka")]

#[test]
fn queries_never_lie_through_rebalances() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let durable = conformance_tests::durable_backends();
    let backend = durable
        .first()
        .map_or_else(|| conformance_tests::backends()[0].name(), |b| b.name());
    conformance_tests::query_scenarios::queries_never_lie_through_rebalances(
        &bootstrap,
        std::path::Path::new(env!("CARGO_BIN_EXE_rewards_instance")),
        backend,
    );
}
