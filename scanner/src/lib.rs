//! `dreamos-scanner`: a pure library that turns a repository into an index of code, symbols and dependencies.
//!
//! Start with [`model`], the types everything else speaks in.
//! The scanner never spawns actors, never opens sled and never names Discord: paths in, answers out.

pub mod model;
