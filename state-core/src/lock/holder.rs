//! Who holds a partition lock: the record a holder writes into the lock file, and how a
//! process that finds the lock taken reads it back to name the other writer.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// The longest command line recorded; a longer one is cut (with `…`).
const MAX_COMMAND: usize = 300;

/// The holder of a partition lock as its lock file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: Option<u32>,
    pub(crate) command: Option<String>,
    /// Seconds since the Unix epoch when the lock was taken.
    pub(crate) since: Option<u64>,
}

impl Holder {
    /// This process, now.
    pub(crate) fn this_process() -> Self {
        let mut args = std::env::args_os().map(|arg| arg.to_string_lossy().into_owned());
        // The program by its file name: the path adds length, not information.
        let program = args.next().map(|program| {
            std::path::Path::new(&program)
                .file_name()
                .map_or(program.clone(), |name| name.to_string_lossy().into_owned())
        });
        let mut command = program
            .into_iter()
            .chain(args)
            .collect::<Vec<_>>()
            .join(" ");
        if command.chars().count() > MAX_COMMAND {
            command = command.chars().take(MAX_COMMAND).collect::<String>() + "…";
        }
        Self {
            pid: Some(std::process::id()),
            command: Some(command.replace('\n', " ")),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|since| since.as_secs()),
        }
    }

    /// The lock file's text: one `key: value` line each.
    pub(crate) fn record(&self) -> String {
        let mut text = String::from("statestore partition lock\n");
        if let Some(pid) = self.pid {
            text.push_str(&format!("pid: {pid}\n"));
        }
        if let Some(command) = &self.command {
            text.push_str(&format!("command: {command}\n"));
        }
        if let Some(since) = self.since {
            text.push_str(&format!("since: {since}\n"));
        }
        text
    }

    /// Reads a lock file's text back; what is missing or unreadable stays `None` (a
    /// holder may be writing it at this very moment).
    pub(crate) fn parse(text: &str) -> Self {
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        Self {
            pid: field("pid").and_then(|pid| pid.parse().ok()),
            command: field("command").map(str::to_owned),
            since: field("since").and_then(|since| since.parse().ok()),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) if pid == std::process::id() => f.write_str("this process")?,
            Some(pid) => write!(f, "process {pid}")?,
            None => f.write_str("another process (its lock file names none)")?,
        }
        if let Some(command) = &self.command {
            write!(f, " ({command})")?;
        }
        if let Some(since) = self.since {
            write!(f, ", since {}", utc(since))?;
        }
        Ok(())
    }
}

/// `2026-12-06 19:25:29 UTC` for `secs` since the Unix epoch.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Howard Hinnant's days-to-civil conversion.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_names_its_holder() {
        let holder = Holder {
            pid: Some(4_000_000_000),
            command: Some("statestore restore --backend redb".to_owned()),
            since: Some(1_796_584_329),
        };
        let parsed = Holder::parse(&holder.record());
        assert_eq!(parsed, holder);
        assert_eq!(
            parsed.to_string(),
            "process 4000000000 (statestore restore --backend redb), since 2026-12-06 19:12:09 UTC"
        );
    }

    #[test]
    fn a_torn_record_names_what_it_can() {
        let parsed = Holder::parse("statestore partition lock\npid: 12");
        assert_eq!(parsed.pid, Some(12));
        assert_eq!(parsed.command, None);
        assert_eq!(
            Holder::parse("").to_string(),
            "another process (its lock file names none)"
        );
    }

    #[test]
    fn this_process_is_named_as_such() {
        let holder = Holder::this_process();
        assert_eq!(
            Holder::parse(&holder.record()).pid,
            Some(std::process::id())
        );
        assert!(holder.to_string().starts_with("this process ("), "{holder}");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
