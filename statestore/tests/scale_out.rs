//! The README's scale-out snippet is the scale-out example's `instance`, line for line, and
//! the example runs against the real broker: two instances of one group share an input
//! topic's 6 partitions, partitions move when the second joins, and the stores restored
//! from the changelogs hold every purchase exactly once.
#![cfg(all(feature = "kafka", feature = "redb"))]

#[path = "../examples/scale_out.rs"]
#[allow(dead_code)] // the example's `main`
mod example;

const BEGIN: &str = "// --- the README's snippet (tests/scale_out.rs checks it is equal) ---";
const END: &str = "// --- end of the README's snippet ---";

/// The lines of the first ```` ```rust ```` block after `heading` in `markdown`.
fn block_after<'a>(markdown: &'a str, heading: &str) -> Vec<&'a str> {
    let after = markdown
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the README"))
        .1;
    let code = after
        .split_once("\n```rust\n")
        .unwrap_or_else(|| panic!("no rust block after {heading:?}"))
        .1;
    let code = code
        .split_once("\n```\n")
        .expect("an unclosed rust block")
        .0;
    code.lines().collect()
}

#[test]
fn the_readme_shows_the_example_s_instance() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/scale_out.rs");
    let snippet: Vec<&str> = example
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .expect("the example marks the README's snippet")
        .0
        .trim_matches('\n')
        .lines()
        .collect();
    assert!(
        snippet.len() > 40,
        "the marked snippet is the whole instance"
    );
    assert_eq!(
        block_after(readme, "## Scaling out: partitions move with their state"),
        snippet,
        "the README's scale-out snippet and examples/scale_out.rs differ: copy the example's \
         marked lines into the README"
    );
}

#[test]
fn the_scale_out_example_runs_on_the_broker() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let outcome = example::run(&bootstrap).expect("the scale-out example");
    assert_eq!(outcome.purchases, 6_000);
    let counted: i64 = outcome.restored.values().map(|(_, visits)| visits).sum();
    assert_eq!(
        counted, 6_000,
        "every purchase counted once in the restored stores"
    );
    assert_eq!(outcome.restored, outcome.expected);
}
