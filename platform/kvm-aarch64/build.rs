//! Link with this image's linker script.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let target = std::env::var("TARGET").unwrap_or_default();
    // Only the kernel build uses it; a host build (workspace-wide clippy)
    // is an ordinary program.
    if target.starts_with("aarch64-") && target.contains("-none") {
        println!("cargo:rustc-link-arg=-T{dir}/link.ld");
    }
    println!("cargo:rerun-if-changed={dir}/link.ld");
}
