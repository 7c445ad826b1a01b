//! The quick path of a read-only tool: asking the swarm before the process has started anything.
//!
//! Why: a tool answered by the swarm (see [`super`]) spends almost all of its time starting and stopping the
//! process, not asking. Before `main`, the binary runs its constructors and its libraries' (mimalloc's start, which
//! reads its settings and maps its page map; libgcc's CPU probe, whose `cpuid`s trap in a virtual machine), Rust's
//! runtime (the main thread's stack guard reads `/proc/self/maps`), and then clap builds the whole command line's
//! definition to read it. The binary calls this from `.preinit_array`, which glibc runs before all of that: when the
//! command line names a tool, with nothing that makes it answer itself, [`plan`] says where to ask and what, and
//! [`ask`] sends the line's words to the swarm ([`Ask::Line`]), which reads them with the same definition, and
//! copies the answer out. The binary then exits with the answer's code.
//!
//! Anything else (no swarm, a refusal, a line the swarm does not read, another command) comes back as
//! [`Asked::No`] with nothing printed, and the process starts as usual: the usual path asks the swarm again when it
//! should, or answers itself, and says what is wrong when something is. The output is the same either way.
//!
//! What runs here runs before Rust's runtime and the libraries' constructors: it allocates with the C library's
//! allocator (the binary chooses it for the tools before calling), never panics, and is given the environment.

use std::{
    ffi::OsStr,
    io::{BufReader, Read, Write},
    os::unix::{ffi::OsStrExt, net::UnixStream},
    path::PathBuf,
};

use super::{send_question, Ask, Copied, SOCKET, TOOL_NAMES};

/// Where to ask, and what.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// The tools' socket of the data directory the line names.
    pub socket: PathBuf,
    /// The line's words after the program's name, without `--data-dir` and its value.
    pub words: Vec<String>,
}

/// How the quick path ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// Nothing was printed; the process goes on as usual.
    No,
    /// The answer was printed; the process exits with this code.
    Answered(u8),
}

/// The quick path's plan for a command line (`args`, the program's name first) in an environment (`var`), or `None`
/// when the usual path should read it. It applies when the first word that is not `--data-dir DIR` (or
/// `--data-dir=DIR`) is a tool's name, no `--config` comes before a `--`, `--data-dir` comes at most once, every
/// word is UTF-8, and `DREAMOS_TOOLS` is unset, empty, `auto` or `swarm`. The data directory is `--data-dir`, else
/// `DREAMOS_DATA_DIR` when it is set and not empty, else `data`, as on the usual path.
pub fn plan<'a>(args: &[&'a [u8]], var: impl Fn(&str) -> Option<&'a [u8]>) -> Option<Plan> {
    match var("DREAMOS_TOOLS") {
        None | Some(b"" | b"auto" | b"swarm") => {}
        Some(_) => return None,
    }
    let mut data_dir: Option<&[u8]> = None;
    let mut words = Vec::new();
    let (mut tool, mut positional) = (false, false);
    let mut rest = args.iter().skip(1);
    while let Some(&arg) = rest.next() {
        if !positional {
            let dir = if arg == b"--data-dir" {
                Some(*rest.next()?)
            } else {
                arg.strip_prefix(b"--data-dir=")
            };
            if let Some(dir) = dir {
                // A second one, or a value clap would take for an option, is for clap to judge.
                if data_dir.is_some() || dir.starts_with(b"-") {
                    return None;
                }
                data_dir = Some(dir);
                continue;
            }
            if arg == b"--config" || arg.starts_with(b"--config=") {
                return None;
            }
            if !tool {
                // The tool comes first: help, a version or anything else before it is the usual path's to read.
                if !TOOL_NAMES.iter().any(|name| name.as_bytes() == arg) {
                    return None;
                }
                tool = true;
            } else if arg == b"--" {
                positional = true;
            }
        }
        words.push(std::str::from_utf8(arg).ok()?.to_string());
    }
    if !tool {
        return None;
    }
    let dir = match data_dir {
        Some(dir) => dir,
        None => match var("DREAMOS_DATA_DIR") {
            Some(dir) if !dir.is_empty() => dir,
            _ => b"data",
        },
    };
    Some(Plan {
        socket: PathBuf::from(OsStr::from_bytes(dir)).join(SOCKET),
        words,
    })
}

/// Asks the swarm at `plan.socket` to run `plan.words`, copying its answer to `stdout` and `stderr`.
pub fn ask(plan: &Plan, stdout: impl Write, stderr: impl Write) -> Asked {
    let Ok(mut stream) = UnixStream::connect(&plan.socket) else {
        return Asked::No;
    };
    let Ok(cwd) = std::env::current_dir() else {
        return Asked::No;
    };
    if send_question(&mut stream, cwd, Ask::Line(plan.words.clone())).is_err() {
        return Asked::No;
    }
    copy_answer(BufReader::new(stream), stdout, stderr)
}

/// Copies an answer out as the usual path does ([`super::copy_answer`]); whatever leaves nothing printed is
/// [`Asked::No`], and the usual path asks again and reports it.
fn copy_answer(answer: impl Read, stdout: impl Write, stderr: impl Write) -> Asked {
    match super::copy_answer(answer, stdout, stderr) {
        Copied::Answered(code) => Asked::Answered(code),
        Copied::NotAnswered(_) | Copied::Foreign(_) => Asked::No,
    }
}

#[cfg(test)]
mod tests;
