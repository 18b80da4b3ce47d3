//! Placeholder; replaced by the owning crate's benchmarks.
fn main() {}
