//! Links the `dreamos` binary as a position-dependent executable on Linux.
//!
//! A position-independent executable must be relocated by the dynamic loader at every start: for this binary,
//! about 61,000 relative relocations that write to some 300 pages, each copied on write, before `main` runs. That
//! was most of the page faults of `dreamos --help` and a millisecond of every command-line tool's run (measured in
//! BENCHMARKS.md, "Scanner: whole processes"). Linked at a fixed address, the loader has nothing to relocate and
//! the pages stay shared with the page cache.
//!
//! The workspace's `.cargo/config.toml` goes further and links statically with `relocation-model=static`, for which
//! the compiler asks for a fixed address itself. This covers builds without it (flags of one's own in `RUSTFLAGS`
//! replace the configuration's): dynamically linked, the code is compiled position-independent and only the link
//! differs. Statically linked but position-independent (`+crt-static` alone) is left alone: that binary relocates
//! itself, and `-no-pie` would break it.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let crt_static = features.split(',').any(|f| f == "crt-static");
    if os == "linux" && env == "gnu" && !crt_static {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
