//! Test and benchmark support for the runtree workspace.
