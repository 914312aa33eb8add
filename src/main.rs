//! The `picomq` binary: parse the command line, load the config, run the broker.
fn main() {}
