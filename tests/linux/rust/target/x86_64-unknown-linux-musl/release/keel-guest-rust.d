/work/main/tests/linux/rust/target/x86_64-unknown-linux-musl/release/keel-guest-rust: /work/main/tests/linux/rust/src/main.rs
