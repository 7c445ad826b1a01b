//! `dreamos-scanner`: a pure library that turns a repository into an index of code, symbols and dependencies.
//!
//! Start with [`model`], the types everything else speaks in.
//! The scanner never spawns actors, never opens sled and never names Discord: paths in, answers out.

pub mod deps;
pub mod error;
pub mod extract;
pub mod index;
pub mod lang;
pub mod model;
pub mod query;
pub mod walk;
pub mod watch;

pub use error::{Error, Result};
