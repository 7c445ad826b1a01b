//! Links the `dreamos` binary as a position-dependent executable on Linux.
//!
//! A position-independent executable must be relocated by the dynamic loader at every start: for this binary,
//! about 61,000 relative relocations that write to some 300 pages, each copied on write, before `main` runs. That
//! was most of the page faults of `dreamos --help` and a millisecond of every command-line tool's run (measured in
//! BENCHMARKS.md, "Scanner: whole processes"). Linked at a fixed address, the loader has nothing to relocate and
//! the pages stay shared with the page cache. The code is still compiled position-independent; only the link
//! differs.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
