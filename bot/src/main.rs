//! The `dreamos` binary: parses the command line and hands over to [`dreamos_bot::cli`].

// Why a different allocator: message handling allocates on one thread (a sender's task builds a message) and
// frees on another (the log's writer thread drops it after the flush). glibc's malloc serialises that pattern on
// its arena locks; under load the profile of the durable benchmark showed futex waits inside malloc and free among
// the top costs. mimalloc keeps per-thread heaps with cheap cross-thread frees. It is only the binary's choice:
// libraries never set a global allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dreamos_bot::cli::main()
}
