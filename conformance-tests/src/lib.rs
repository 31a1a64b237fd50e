//! # conformance-tests
//!
//! One behaviour + property + fault suite, run against every backend x changelog pair.
//! Each group is a plain `pub fn` taking a [`BackendFactory`]; the
//! [`conformance_suite!`] macro stamps them into one module per changelog, each test
//! running every backend of `statestore::backends()` and naming the ones that fail
//! (`every_backend_x_in_process::model_exactly_once`). A backend registered in the
//! facade runs the whole suite with nothing added here; an out-of-tree one runs it with
//! one macro call; see `README.md`.
#![allow(missing_docs)] // the macro-generated test functions
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod behavior;
pub mod changelogs;
pub mod corruption;
pub mod crash_points;
pub mod durable;
pub mod faults;
pub mod file_log;
pub mod gates;
#[cfg(feature = "kafka")]
pub mod group_scenarios;
mod harness;
pub mod instance_snapshots;
#[cfg(feature = "kafka")]
pub mod kafka_edges;
pub mod kill;
#[cfg(feature = "kafka")]
pub mod kill_kafka;
pub mod kill_restore;
pub mod manager;
pub mod manager_eos;
pub mod manager_races;
pub mod model;
mod model_world;
pub mod ownership;
pub mod queries;
#[cfg(feature = "kafka")]
pub mod query_scenarios;
mod registry;
pub mod relocation;
#[cfg(feature = "kafka")]
pub mod replica_scenarios;
#[cfg(feature = "kafka")]
pub mod rewards;
#[cfg(feature = "kafka")]
pub mod scale_out;
pub mod snapshot_kill;
pub mod snapshot_place;
#[cfg(feature = "kafka")]
pub mod snapshot_scenarios;
pub mod snapshots;
pub mod support;
pub mod writers;

pub use harness::{BackendFactory, Fixture, SupplierFactory, block_on, contents, seed_from_env};
pub use registry::{backend, backends, durable_backends, for_each_backend, only, panic_message};

/// Stamps the whole suite for a list of backends x the in-process changelog into module
/// `$module`. Each test runs every backend of the list (a
/// `Vec<Box<dyn BackendFactory>>`) and fails naming each backend that failed:
///
/// ```ignore
/// conformance_suite!(every_backend_x_in_process, conformance_tests::backends());
/// conformance_suite!(mine_x_in_process, conformance_tests::only(my_backend::BACKEND));
/// ```
///
/// `conformance_suite!(@kafka $module, $backends)` stamps the Kafka cells (model and
/// relocation on a real broker) the same way.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $backends:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::BackendFactory as _;
            use state_core::ProcessingGuarantee::{AtLeastOnce, ExactlyOnce};

            /// Runs `test` against every backend of the suite.
            fn each(test: impl Fn(&dyn $crate::BackendFactory)) {
                let backends: Vec<Box<dyn $crate::BackendFactory>> = $backends;
                $crate::for_each_backend(&backends, test);
            }

            $crate::conformance_suite!(@behavior
                get_missing_returns_none, get_returns_last_put, put_overwrites,
                empty_key_and_value_are_valid, put_if_absent_keeps_existing,
                put_if_absent_inserts_missing, put_if_absent_is_atomic, delete_returns_old_value,
                delete_missing_is_noop, write_batch_applies_in_order, write_batch_is_atomic,
                position_starts_empty, write_with_position_sets_both, range_is_ordered_and_bounded,
                inverted_range_is_empty, range_excludes_position_metadata, reverse_range_is_descending,
                prefix_scan_returns_only_prefixed_keys, all_returns_every_entry_in_order,
                approximate_num_entries_counts, wipe_clears_data_and_position,
                flush_then_reopen_keeps_data, position_survives_reopen,
                checkpoint_opens_to_the_same_data_and_position,
                checkpoint_refuses_writes_made_outside_a_commit,
                checkpoint_into_an_existing_directory_is_refused,
                checkpoint_is_consistent_while_commits_run, damaged_checkpoint_is_refused,
                foreign_checkpoint_is_refused, begun_checkpoint_holds_the_commit_it_began_at,
                close_ends_begun_checkpoints
            );

            #[test]
            fn model_at_least_once() {
                each(|factory| {
                    $crate::model::model_test(
                        factory,
                        &$crate::changelogs::in_process(),
                        AtLeastOnce,
                        $crate::model::in_process_cases(),
                        1,
                    );
                });
            }
            #[test]
            fn model_exactly_once() {
                each(|factory| {
                    $crate::model::model_test(
                        factory,
                        &$crate::changelogs::in_process(),
                        ExactlyOnce,
                        $crate::model::in_process_cases(),
                        1,
                    );
                });
            }
            #[test]
            fn fault_sink_failing_mid_flush_at_least_once() {
                each(|factory| {
                    $crate::faults::sink_failing_mid_flush(factory, AtLeastOnce);
                });
            }
            #[test]
            fn fault_sink_failing_mid_flush_exactly_once() {
                each(|factory| {
                    $crate::faults::sink_failing_mid_flush(factory, ExactlyOnce);
                });
            }
            #[test]
            fn fault_log_start_truncated_above_position() {
                each(|factory| {
                    $crate::faults::log_start_truncated_above_position(factory);
                });
            }
            #[test]
            fn fault_topic_recreated_below_position() {
                each(|factory| {
                    $crate::faults::topic_recreated_below_position(factory);
                });
            }
            #[test]
            fn fault_crash_during_restore_resumes_at_least_once() {
                each(|factory| {
                    $crate::faults::crash_during_restore_resumes(factory, AtLeastOnce);
                });
            }
            #[test]
            fn fault_crash_during_restore_resumes_exactly_once() {
                each(|factory| {
                    $crate::faults::crash_during_restore_resumes(factory, ExactlyOnce);
                });
            }
            #[test]
            fn fault_failing_appends_surface_as_errors() {
                each(|factory| {
                    $crate::faults::failing_appends_surface_as_errors(factory);
                });
            }
            #[test]
            fn fault_undecodable_record_is_reported() {
                each(|factory| {
                    $crate::faults::undecodable_record_is_reported(factory);
                });
            }
            #[test]
            fn snapshot_plus_tail_equals_replay_at_least_once() {
                each(|factory| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        &$crate::changelogs::in_process(),
                        AtLeastOnce,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_plus_tail_equals_replay_exactly_once() {
                each(|factory| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        &$crate::changelogs::in_process(),
                        ExactlyOnce,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_plus_tail_equals_replay_on_s3_at_least_once() {
                each(|factory| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        &$crate::changelogs::in_process(),
                        AtLeastOnce,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_plus_tail_equals_replay_on_s3_exactly_once() {
                each(|factory| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        &$crate::changelogs::in_process(),
                        ExactlyOnce,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_by_the_manager_policy_relocates_at_least_once() {
                each(|factory| {
                    $crate::snapshots::manager_snapshots_by_policy_and_relocates_from_them(
                        factory,
                        AtLeastOnce,
                    );
                });
            }
            #[test]
            fn snapshot_by_the_manager_policy_relocates_exactly_once() {
                each(|factory| {
                    $crate::snapshots::manager_snapshots_by_policy_and_relocates_from_them(
                        factory,
                        ExactlyOnce,
                    );
                });
            }
            #[test]
            fn snapshot_with_a_flipped_byte_falls_back() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::FlipByte,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_with_a_flipped_byte_falls_back_on_s3() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::FlipByte,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_with_deleted_files_falls_back() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::DeleteFiles,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_with_deleted_files_falls_back_on_s3() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::DeleteFiles,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_without_its_manifest_does_not_exist() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::DeleteNewestManifest,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_without_its_manifest_does_not_exist_on_s3() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::DeleteNewestManifest,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_of_another_store_is_refused() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::ManifestOfAnotherStore,
                        $crate::snapshots::Where::Directory,
                    );
                });
            }
            #[test]
            fn snapshot_of_another_store_is_refused_on_s3() {
                each(|factory| {
                    $crate::snapshots::damaged_snapshots_fall_back(
                        factory,
                        $crate::snapshots::Damage::ManifestOfAnotherStore,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_behind_the_local_store_is_not_downloaded() {
                each(|factory| {
                    $crate::snapshots::a_local_store_ahead_of_the_snapshot_is_kept(factory);
                });
            }
            #[test]
            fn snapshot_download_abandoned_by_a_dead_process_is_removed() {
                each(|factory| {
                    $crate::snapshots::an_abandoned_download_is_removed_not_opened(factory);
                });
            }
            #[test]
            fn snapshot_download_cancelled_keeps_the_local_store_on_s3() {
                each(|factory| {
                    $crate::snapshots::a_cancelled_download_keeps_the_local_store(factory);
                });
            }
            #[test]
            fn reopen_after_close_replays_only_the_tail() {
                each(|factory| {
                    $crate::durable::reopen_replays_only_the_tail(factory, true);
                });
            }
            #[test]
            fn reopen_after_drop_replays_only_the_tail() {
                each(|factory| {
                    $crate::durable::reopen_replays_only_the_tail(factory, false);
                });
            }
            #[test]
            fn corruption_truncated_files_are_rebuilt() {
                each(|factory| {
                    $crate::corruption::damaged_files_are_rebuilt_from_the_changelog(
                        factory,
                        $crate::corruption::Damage::TruncateHalf,
                    );
                });
            }
            #[test]
            fn corruption_garbled_files_are_rebuilt() {
                each(|factory| {
                    $crate::corruption::damaged_files_are_rebuilt_from_the_changelog(
                        factory,
                        $crate::corruption::Damage::GarbleMiddle,
                    );
                });
            }
            #[test]
            fn ownership_read_only_open_changes_nothing() {
                each(|factory| {
                    $crate::ownership::read_only_open_changes_nothing(factory);
                });
            }
            #[test]
            fn ownership_read_only_open_of_nothing_is_not_found() {
                each(|factory| {
                    $crate::ownership::read_only_open_of_nothing_is_not_found(factory);
                });
            }
            #[test]
            fn ownership_other_backends_stores_are_refused_not_wiped() {
                each(|factory| {
                    $crate::ownership::other_backends_stores_are_refused_not_wiped(factory);
                });
            }
            #[test]
            fn writers_concurrent_creators_leave_one_valid_store() {
                each(|factory| {
                    $crate::writers::concurrent_creators_leave_one_valid_store(factory);
                });
            }
            #[test]
            fn writers_a_partition_another_process_writes_is_refused() {
                each(|factory| {
                    $crate::writers::a_partition_another_process_writes_is_refused(factory);
                });
            }
            #[test]
            fn manager_assign_restores_before_serving_at_least_once() {
                each(|factory| {
                    $crate::manager::assign_restores_before_serving(factory, AtLeastOnce);
                });
            }
            #[test]
            fn manager_assign_restores_before_serving_exactly_once() {
                each(|factory| {
                    $crate::manager::assign_restores_before_serving(factory, ExactlyOnce);
                });
            }
            #[test]
            fn manager_returning_partition_replays_only_the_tail_at_least_once() {
                each(|factory| {
                    $crate::manager::returning_partition_replays_only_the_tail(factory, AtLeastOnce);
                });
            }
            #[test]
            fn manager_returning_partition_replays_only_the_tail_exactly_once() {
                each(|factory| {
                    $crate::manager::returning_partition_replays_only_the_tail(factory, ExactlyOnce);
                });
            }
            #[test]
            fn manager_promoted_standby_replays_only_its_lag_at_least_once() {
                each(|factory| {
                    $crate::manager::promoted_standby_replays_only_its_lag(factory, AtLeastOnce);
                });
            }
            #[test]
            fn manager_promoted_standby_replays_only_its_lag_exactly_once() {
                each(|factory| {
                    $crate::manager::promoted_standby_replays_only_its_lag(factory, ExactlyOnce);
                });
            }
            #[test]
            fn manager_revoked_partition_kept_as_standby_stays_warm() {
                each(|factory| {
                    $crate::manager::revoked_partition_kept_as_standby_stays_warm(factory);
                });
            }
            #[test]
            fn manager_lost_partition_drops_uncommitted_writes() {
                each(|factory| {
                    $crate::manager::lost_partition_drops_uncommitted_writes(factory);
                });
            }
            #[test]
            fn queries_read_committed_state_only() {
                each(|factory| {
                    $crate::queries::queries_read_committed_state_only(factory);
                });
            }
            #[test]
            fn queries_say_restoring_and_moving() {
                each(|factory| {
                    $crate::queries::queries_say_restoring_and_moving(factory);
                });
            }
            #[test]
            fn stale_queries_read_a_standby_with_its_lag() {
                each(|factory| {
                    $crate::queries::stale_queries_read_a_standby_with_its_lag(factory);
                });
            }
            #[test]
            fn queries_a_foreign_handle_is_refused() {
                each(|factory| {
                    $crate::queries::a_foreign_handle_is_refused(factory);
                });
            }
            #[test]
            fn manager_commits_an_unlogged_stores_writes() {
                each(|factory| {
                    $crate::manager::an_unlogged_store_gets_its_writes_at_each_commit(factory);
                });
            }
            #[test]
            fn faults_commit_together_refuses_another_sinks_store() {
                each(|factory| {
                    $crate::faults::commit_together_refuses_another_sinks_store(factory);
                });
            }
            #[test]
            fn manager_every_transition_of_the_state_machine() {
                each(|factory| {
                    $crate::manager_races::every_transition_of_the_state_machine(factory);
                });
            }
            #[test]
            fn manager_revoke_during_restore_cancels_it() {
                each(|factory| {
                    $crate::manager_races::revoke_during_restore_cancels_it(factory);
                });
            }
            #[test]
            fn manager_revoke_to_standby_during_a_restore_keeps_every_store_in_its_place() {
                each(|factory| {
                    $crate::manager_races::revoke_to_standby_during_a_restore_keeps_every_store_in_its_place(factory);
                });
            }
            #[test]
            fn manager_lose_during_restore() {
                each(|factory| {
                    $crate::manager_races::lose_during_restore(factory);
                });
            }
            #[test]
            fn manager_assignment_withdrawn_before_its_restore_starts_opens_nothing() {
                each(|factory| {
                    $crate::manager_races::assignment_withdrawn_before_its_restore_starts_opens_nothing(factory);
                });
            }
            #[test]
            fn manager_lose_during_a_failing_commit() {
                each(|factory| {
                    $crate::manager_races::lose_during_a_failing_commit(factory);
                });
            }
            #[test]
            fn manager_stores_commit_together_with_the_input_offsets_at_least_once() {
                each(|factory| {
                    $crate::manager_eos::stores_commit_together_with_the_input_offsets(factory, AtLeastOnce);
                });
            }
            #[test]
            fn manager_stores_commit_together_with_the_input_offsets_exactly_once() {
                each(|factory| {
                    $crate::manager_eos::stores_commit_together_with_the_input_offsets(factory, ExactlyOnce);
                });
            }
            #[test]
            fn manager_crash_between_the_transaction_and_the_store_writes_recovers_exactly() {
                each(|factory| {
                    $crate::manager_eos::crash_between_the_transaction_and_the_store_writes_recovers_exactly(factory);
                });
            }
            #[test]
            fn manager_crash_between_two_stores_writes_recovers_exactly() {
                each(|factory| {
                    $crate::manager_eos::crash_between_two_stores_writes_recovers_exactly(factory);
                });
            }
            #[test]
            fn manager_a_failed_store_write_is_caught_up_by_the_next_commit() {
                each(|factory| {
                    $crate::manager_eos::a_failed_store_write_is_caught_up_by_the_next_commit(factory);
                });
            }
            #[test]
            fn manager_a_loss_aborts_the_interval_and_the_rest_is_written_again() {
                each(|factory| {
                    $crate::manager_eos::a_loss_aborts_the_interval_and_the_rest_is_written_again(factory);
                });
            }
            #[test]
            fn manager_restores_run_within_the_parallel_bound() {
                each(|factory| {
                    $crate::manager::restores_run_within_the_parallel_bound(factory);
                });
            }
            #[test]
            fn relocate_to_every_backend() {
                each(|factory| {
                    let changelogs = $crate::changelogs::in_process();
                    for target in $crate::backends() {
                        for guarantee in [AtLeastOnce, ExactlyOnce] {
                            $crate::relocation::relocate(factory, target.as_ref(), &changelogs, guarantee);
                        }
                    }
                });
            }
        }
    };
    (@kafka $module:ident, $backends:expr) => {
        mod $module {
            use state_core::ProcessingGuarantee::{AtLeastOnce, ExactlyOnce};

            /// Runs `test` against every backend of the suite, when a broker is there.
            fn each(test: impl Fn(&dyn $crate::BackendFactory, &$crate::changelogs::Kafka)) {
                let Some(kafka) = $crate::changelogs::kafka() else {
                    return;
                };
                let backends: Vec<Box<dyn $crate::BackendFactory>> = $backends;
                $crate::for_each_backend(&backends, |factory| test(factory, &kafka));
            }

            #[test]
            fn snapshot_plus_tail_equals_replay_on_s3_at_least_once() {
                each(|factory, kafka| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        kafka,
                        AtLeastOnce,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn snapshot_plus_tail_equals_replay_on_s3_exactly_once() {
                each(|factory, kafka| {
                    $crate::snapshots::snapshot_plus_tail_equals_replay(
                        factory,
                        kafka,
                        ExactlyOnce,
                        $crate::snapshots::Where::S3,
                    );
                });
            }
            #[test]
            fn model_at_least_once() {
                each(|factory, kafka| {
                    $crate::model::model_test(
                        factory,
                        kafka,
                        AtLeastOnce,
                        $crate::model::kafka_cases(),
                        $crate::model::KAFKA_RUNNERS,
                    );
                });
            }
            #[test]
            fn model_exactly_once() {
                each(|factory, kafka| {
                    $crate::model::model_test(
                        factory,
                        kafka,
                        ExactlyOnce,
                        $crate::model::kafka_cases(),
                        $crate::model::KAFKA_RUNNERS,
                    );
                });
            }
            #[test]
            fn relocate_to_every_backend() {
                each(|factory, kafka| {
                    for target in $crate::backends() {
                        for guarantee in [AtLeastOnce, ExactlyOnce] {
                            $crate::relocation::relocate(factory, target.as_ref(), kafka, guarantee);
                        }
                    }
                });
            }
        }
    };
    (@behavior $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                each(|factory| {
                    let fixture = $crate::Fixture::new(factory, "behavior");
                    $crate::behavior::$name(&fixture);
                });
            }
        )*
    };
}
