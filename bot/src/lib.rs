//! `dreamos-bot`: the frontends of Dream.OS and the `dreamos` binary.
//!
//! - [`command`]: the command model every frontend shares, declared once in a table: names, options, roles, help;
//!   the console parser, completion, usage and help derive from it, and so does the Discord registration.
//! - [`session`]: runs a command for one person (role check, execution, audit) and returns a typed [`answer`].
//! - [`render`]: answers and events as JSON lines or text.
//! - [`console`]: the console frontend (terminal line editor, or one command per line from a pipe).
//! - [`discord`]: the Discord frontend (serenity + poise), its outbox and the log mirror's Discord sink.
//! - [`cli`]: the command line (`dreamos run ...`) and what `main` does with it; [`code_cli`]: the scanner's
//!   command-line tools (`dreamos index`, `search`, ...).
//!
//! Architecture invariant: this is the only crate that may know Discord (serenity, poise); it reaches the
//! swarm only through `dreamos_agents::Swarm`.

pub mod answer;
pub mod cli;
pub mod code_cli;
pub mod command;
pub mod console;
pub mod discord;
pub mod render;
pub mod served;
pub mod session;
