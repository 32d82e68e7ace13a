//! `lb-slowpath` entry point.
#![forbid(unsafe_code)]

fn main() {}
