//! Code shared by several test files (each includes it with `mod common;`).

pub mod ns;
