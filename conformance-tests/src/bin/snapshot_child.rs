//! The child process of the snapshot kill tests: uploads, downloads or retires
//! snapshots, and dies by SIGKILL at the crash point it is given (or when the parent
//! kills it). See `conformance_tests::snapshot_kill::child` for the modes and arguments.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = conformance_tests::snapshot_kill::child::ChildArgs::parse(&args)
        .map_err(Into::into)
        .and_then(|args| conformance_tests::snapshot_kill::child::run(&args));
    if let Err(err) = outcome {
        eprintln!("snapshot_child: {err}");
        std::process::exit(2);
    }
}
