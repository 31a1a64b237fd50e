//! The partition lifecycle as data: every legal move of a partition's state, the events
//! that leave a state as it is, and nothing else. [`Table::transition`](super::state::Table)
//! is the one function that changes a state, and it asks [`next`] which move an event
//! makes; the module docs' table is [`render`]ed from the same data (a test compares them).

use super::state::PartitionState::{self, *};
use crate::{Error, Result};

/// What happens to a partition. Events from a restore carry the epoch of the assignment
/// they belong to: one of an older assignment is stale and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Assigned here: its stores open and restore.
    Assign,
    /// Every store restored.
    Restored { epoch: u64 },
    /// A store failed to open or restore.
    RestoreFailed { epoch: u64 },
    /// A commit of every active partition starts.
    CommitStarted,
    /// That commit ended, committed or not.
    CommitEnded,
    /// Taken away cleanly: commit, then close or keep as standby.
    Revoke,
    /// The revoke's commit ran; the stores were closed or kept as standbys.
    Revoked { standby: bool },
    /// Taken away without a commit (the group moved it on).
    Lose,
    /// A standby copy opened here.
    StandbyOpened,
    /// The standby copy closed (placement no longer wants it).
    StandbyClosed,
}

impl Event {
    /// The event's name in the lifecycle table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::Assign => "assign",
            Event::Restored { .. } => "restored",
            Event::RestoreFailed { .. } => "restore failed",
            Event::CommitStarted => "commit starts",
            Event::CommitEnded => "commit ends",
            Event::Revoke => "revoke",
            Event::Revoked { standby: true } => "revoked, kept as standby",
            Event::Revoked { standby: false } => "revoked, closed",
            Event::Lose => "lose",
            Event::StandbyOpened => "standby opened",
            Event::StandbyClosed => "standby closed",
        }
    }

    /// The epoch a restore event belongs to.
    pub(crate) fn epoch(self) -> Option<u64> {
        match self {
            Event::Restored { epoch } | Event::RestoreFailed { epoch } => Some(epoch),
            _ => None,
        }
    }
}

/// Every legal move: from, event, to.
pub(crate) const MOVES: &[(PartitionState, &str, PartitionState)] = &[
    (Closed, "assign", Restoring),
    (Lost, "assign", Restoring),
    (Standby, "assign", Restoring),
    (Revoking, "assign", Restoring),
    (Restoring, "assign", Restoring),
    (Restoring, "restored", Active),
    (Restoring, "restore failed", Closed),
    (Active, "commit starts", Committing),
    (Committing, "commit ends", Active),
    (Restoring, "revoke", Revoking),
    (Active, "revoke", Revoking),
    (Revoking, "revoked, kept as standby", Standby),
    (Revoking, "revoked, closed", Closed),
    (Restoring, "lose", Lost),
    (Active, "lose", Lost),
    (Closed, "standby opened", Standby),
    (Lost, "standby opened", Standby),
    (Standby, "standby closed", Closed),
];

/// Events that leave a state as it is, and why.
pub(crate) const UNCHANGED: &[(&str, &[PartitionState], &str)] = &[
    (
        "assign",
        &[Active, Committing],
        "already served here: nothing to restore",
    ),
    (
        "revoke",
        &[Closed, Lost, Standby, Revoking],
        "not owned here: nothing to give up",
    ),
    (
        "lose",
        &[Closed, Lost, Standby, Revoking],
        "not owned here: nothing to give up",
    ),
    (
        "revoked, kept as standby",
        &[Restoring],
        "assigned again meanwhile: the new assignment keeps its state",
    ),
    (
        "revoked, closed",
        &[Restoring],
        "assigned again meanwhile: the new assignment keeps its state",
    ),
    (
        "standby opened",
        &[Restoring],
        "assigned meanwhile: its restore takes the standby over",
    ),
    (
        "standby closed",
        &[Restoring],
        "assigned meanwhile: its restore opens the directory",
    ),
];

/// The state `event` moves a partition in state `from` to: `Some(to)` for a legal move,
/// `None` for an event that leaves the state as it is, and an error naming both states
/// for anything else. Restore events whose epoch is not `epoch` are stale: `None`.
pub(crate) fn next(
    from: PartitionState,
    epoch: u64,
    event: Event,
) -> Result<Option<PartitionState>> {
    if event.epoch().is_some_and(|of| of != epoch) {
        return Ok(None);
    }
    let name = event.name();
    if let Some(&(_, _, to)) = MOVES.iter().find(|(f, e, _)| *f == from && *e == name) {
        return Ok(Some(to));
    }
    if UNCHANGED
        .iter()
        .any(|(e, states, _)| *e == name && states.contains(&from))
    {
        return Ok(None);
    }
    Err(Error::internal(format!(
        "illegal partition move: event \"{name}\" in state {from:?}"
    )))
}

/// The lifecycle table as the module docs show it: a Markdown table of every legal move.
#[cfg(test)]
pub(crate) fn render() -> String {
    let mut table = String::from("| from | event | to |\n| --- | --- | --- |\n");
    for (from, event, to) in MOVES {
        table.push_str(&format!("| `{from:?}` | {event} | `{to:?}` |\n"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_EVENT: [Event; 11] = [
        Event::Assign,
        Event::Restored { epoch: 1 },
        Event::RestoreFailed { epoch: 1 },
        Event::CommitStarted,
        Event::CommitEnded,
        Event::Revoke,
        Event::Revoked { standby: true },
        Event::Revoked { standby: false },
        Event::Lose,
        Event::StandbyOpened,
        Event::StandbyClosed,
    ];
    const EVERY_STATE: [PartitionState; 7] = [
        Restoring, Active, Committing, Revoking, Standby, Closed, Lost,
    ];

    #[test]
    fn the_module_docs_show_the_table() {
        let docs: String = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! "))
            .filter(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(
            docs,
            render(),
            "manager/mod.rs's lifecycle table is out of date"
        );
    }

    #[test]
    fn the_readme_shows_the_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&render()),
            "README.md's \"A partition's moves\" table is out of date; it should be:\n{}",
            render()
        );
    }

    #[test]
    fn every_table_entry_names_a_real_event() {
        let names: Vec<&str> = EVERY_EVENT.iter().map(|e| e.name()).collect();
        for (_, event, _) in MOVES {
            assert!(names.contains(event), "unknown event {event}");
        }
        for (event, _, _) in UNCHANGED {
            assert!(names.contains(event), "unknown event {event}");
        }
    }

    #[test]
    fn a_move_and_a_no_op_never_overlap() {
        for (event, states, _) in UNCHANGED {
            for from in *states {
                assert!(
                    !MOVES.iter().any(|(f, e, _)| f == from && e == event),
                    "{event} in {from:?} is both a move and a no-op"
                );
            }
        }
    }

    #[test]
    fn a_commit_never_races_a_revoke_or_a_loss() {
        // Revoke and lose wait for the running commit (they take the same lock), so
        // the table refuses them in `Committing`.
        for event in [Event::Revoke, Event::Lose] {
            let err = next(Committing, 1, event).unwrap_err();
            assert!(err.to_string().contains("Committing"), "{err}");
        }
    }

    #[test]
    fn illegal_moves_name_both_states() {
        let err = next(Standby, 1, Event::CommitStarted).unwrap_err();
        assert!(err.to_string().contains("commit starts"), "{err}");
        assert!(err.to_string().contains("Standby"), "{err}");
    }

    #[test]
    fn stale_restore_events_change_nothing() {
        for from in EVERY_STATE {
            assert_eq!(next(from, 2, Event::Restored { epoch: 1 }).unwrap(), None);
            assert_eq!(
                next(from, 2, Event::RestoreFailed { epoch: 1 }).unwrap(),
                None
            );
        }
    }
}
