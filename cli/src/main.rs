//! `qcss`: the one binary (being written).
fn main() {}
