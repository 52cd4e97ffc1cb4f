//! The gcr command line.
fn main() {}
