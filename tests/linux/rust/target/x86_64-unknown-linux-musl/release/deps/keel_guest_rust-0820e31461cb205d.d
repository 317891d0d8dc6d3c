/work/main/tests/linux/rust/target/x86_64-unknown-linux-musl/release/deps/keel_guest_rust-0820e31461cb205d.d: src/main.rs

/work/main/tests/linux/rust/target/x86_64-unknown-linux-musl/release/deps/keel_guest_rust-0820e31461cb205d: src/main.rs

src/main.rs:
