//! The `dreamos` binary: parses the command line and hands over to [`dreamos_bot::cli`].

mod allocator;
mod preinit;

// The allocator is only the binary's choice: libraries never set a global allocator. Which one, and why, is in
// `allocator`.
#[global_allocator]
static GLOBAL: allocator::Chosen = allocator::Chosen;

fn main() -> std::process::ExitCode {
    dreamos_bot::cli::main()
}
