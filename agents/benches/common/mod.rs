//! What the benchmark binaries share.

/// The value after `name` on the command line (`--seconds 5`), or `default` when it is absent or does not parse.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
