//! Tells [`dreamos_tests::dreamos_bin`] the target these tests are built for: built with a target (as the
//! workspace's `.cargo/config.toml` asks), cargo puts them in `target/<target>/<profile>`, and the `dreamos` binary
//! they run must be built for the same target into the same directory.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=DREAMOS_TESTS_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
