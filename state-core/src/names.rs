//! Application ids and store names: Kafka's topic-name rules, checked where names enter.
//!
//! Both names end up in two places: the changelog topic `<application.id>-<store>-changelog`
//! and the store directory `<state_dir>/<application.id>/<partition>/<store>`. Kafka
//! refuses a topic whose name has other characters than `[a-zA-Z0-9._-]`, is `.` or `..`,
//! or is longer than 249 characters — and exactly those rules also keep a name from
//! leaving the state directory as a path component (no separator, no `..`, never empty,
//! never absolute). So one check serves both: a name that passes makes a valid topic
//! and a directory inside the state directory. Without it, a bad name surfaced much
//! later as a missing topic or an unreachable broker, or opened a store outside the
//! state directory.

use crate::{Error, Result};

/// The longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// What `<application.id>-<store>-changelog` adds around the two names.
const TOPIC_OVERHEAD: usize = "--changelog".len();

/// Checks an application id: legal topic characters, not `.` or `..`, and short enough
/// that a one-character store name still gives a changelog topic within Kafka's limit.
/// The error says which rule the id breaks.
pub fn validate_application_id(application_id: &str) -> Result<()> {
    validate_part("application id", application_id)?;
    let longest = MAX_TOPIC_NAME_LEN - TOPIC_OVERHEAD - 1;
    if application_id.len() > longest {
        return Err(Error::invalid_input(format!(
            "application id {application_id:?} is {} characters; at most {longest} leave room \
             for a store name in its changelog topic <application.id>-<store>-changelog, \
             which Kafka limits to {MAX_TOPIC_NAME_LEN} characters",
            application_id.len()
        )));
    }
    Ok(())
}

/// Checks a store name: legal topic characters, not `.` or `..`. The error says which
/// rule the name breaks. The length rule needs the application id too: see
/// [`changelog_topic`].
pub fn validate_store_name(store_name: &str) -> Result<()> {
    validate_part("store name", store_name)
}

/// The changelog topic `<application.id>-<store>-changelog` after checking both names
/// and the topic's length against Kafka's rules.
pub fn changelog_topic(application_id: &str, store_name: &str) -> Result<String> {
    validate_part("application id", application_id)?;
    validate_store_name(store_name)?;
    let topic = crate::changelog_topic_name(application_id, store_name);
    if topic.len() > MAX_TOPIC_NAME_LEN {
        return Err(Error::invalid_input(format!(
            "changelog topic {topic} is {} characters, but Kafka allows at most \
             {MAX_TOPIC_NAME_LEN}; shorten the application id or the store name",
            topic.len()
        )));
    }
    Ok(topic)
}

fn validate_part(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_input(format!(
            "the {what} is empty; it names a Kafka topic and a directory, so it needs at \
             least one of the characters a-z A-Z 0-9 . _ -"
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid_input(format!(
            "the {what} {name:?} is not allowed: Kafka refuses the topic names \".\" and \
             \"..\", and as a directory it would not stay inside the state directory"
        )));
    }
    if let Some((at, bad)) = name.chars().enumerate().find(|(_, c)| !is_legal(*c)) {
        return Err(Error::invalid_input(format!(
            "the {what} {name:?} has {bad:?} at position {at}: Kafka topic names (and so \
             {what}s) may only use the characters a-z A-Z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// Kafka's legal topic characters (`Topic.containsValidPattern`).
fn is_legal(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;
    use crate::StoreContext;

    /// The rules, written independently of the code above.
    fn legal(name: &str) -> bool {
        !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }

    fn names() -> impl Strategy<Value = String> {
        prop_oneof![
            // Anything at all, including separators, NULs and non-ASCII.
            any::<String>(),
            // Mostly legal characters with path tricks mixed in.
            "[a-zA-Z0-9._/-]{0,12}",
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("../../etc".to_owned()),
            Just("/abs/path".to_owned()),
            // Around the length limits.
            "[a-z]{230,260}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_names_make_valid_topics_and_paths_inside_the_state_dir(
            app in names(),
            store in names(),
            partition in any::<i32>(),
        ) {
            let state_dir = Path::new("/state/dir");
            let expected = legal(&app)
                && legal(&store)
                && app.len() + store.len() + TOPIC_OVERHEAD <= MAX_TOPIC_NAME_LEN;
            let dir = StoreContext::new(app.as_str(), partition, 1, state_dir)
                .and_then(|context| context.store_dir(&store));
            let topic = changelog_topic(&app, &store);
            prop_assert_eq!(dir.is_ok(), expected, "{:?} / {:?}: {:?}", app, store, dir);
            prop_assert_eq!(topic.is_ok(), expected);
            if let (Ok(dir), Ok(topic)) = (dir, topic) {
                prop_assert!(topic.len() <= MAX_TOPIC_NAME_LEN);
                let inside = dir.strip_prefix(state_dir).expect("under the state dir");
                let parts: Vec<Component<'_>> = inside.components().collect();
                prop_assert_eq!(parts.len(), 3, "{:?}", inside);
                prop_assert!(parts.iter().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }

    #[test]
    fn each_rule_is_named() {
        let message = |r: Result<()>| r.unwrap_err().to_string();
        assert!(message(validate_store_name("")).contains("empty"));
        assert!(message(validate_store_name("..")).contains("\"..\""));
        assert!(message(validate_application_id("my app/x")).contains("' ' at position 2"));
        assert!(message(validate_application_id(&"a".repeat(300))).contains("249"));
        let long = changelog_topic(&"a".repeat(200), &"b".repeat(40)).unwrap_err();
        assert!(long.to_string().contains("at most 249"), "{long}");
        assert_eq!(changelog_topic("app", "s").unwrap(), "app-s-changelog");
    }
}
