//! Turning library errors into messages a command-line user can act on.

use std::path::Path;

use state_core::{Error, ErrorKind};

/// Explains a Kafka failure: an unreachable cluster names the servers, a missing topic
/// says that nothing was created. An error Kafka did not cause (a local disk, a lock, a
/// bad argument) passes unchanged: labelling it with the cluster named the wrong cause.
pub fn kafka(err: Error, servers: &str, topic: Option<&str>) -> Error {
    if !changelog_kafka::is_kafka_error(&err) {
        return err;
    }
    // A fatal client error is `Closed` even when the cluster not answering caused it, so
    // the code of the Kafka cause is consulted as well as the kind.
    let unreachable = err.is_retriable() || changelog_kafka::is_unreachable(&err);
    match (err.kind(), topic) {
        _ if unreachable => err.context(format!(
            "cannot reach the Kafka cluster at {servers} (bootstrap servers) within the metadata timeout"
        )),
        (ErrorKind::NotFound, Some(topic)) => err.context(format!(
            "changelog topic {topic} does not exist on the Kafka cluster at {servers} \
             (this command never creates topics)"
        )),
        _ => err.context(format!("Kafka cluster at {servers}")),
    }
}

/// Fails unless `dir` is an existing directory, naming the cause: missing, not a
/// directory, or not readable (permission denied is not "not found").
pub fn require_dir(dir: &Path, what: &str) -> state_core::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid_input(format!(
            "{what} {} is not a directory",
            dir.display()
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::NotFound,
            format!("{what} {} does not exist", dir.display()),
        )),
        Err(err) => Err(Error::from(err).context(format!("{what} {}", dir.display()))),
    }
}
