//! The `dreamos` binary: parses the command line and hands over to [`dreamos_bot::cli`].

fn main() -> std::process::ExitCode {
    dreamos_bot::cli::main()
}
