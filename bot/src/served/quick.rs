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

use super::{read_frame, Ask, Request, MAX_REQUEST, SOCKET, TOOL_NAMES};

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
    let request = Request {
        version: env!("CARGO_PKG_VERSION").to_string(),
        cwd,
        ask: Ask::Line(plan.words.clone()),
    };
    let body = match serde_json::to_vec(&request) {
        Ok(body) if body.len() <= MAX_REQUEST as usize => body,
        _ => return Asked::No,
    };
    let mut message = Vec::with_capacity(4 + body.len());
    message.extend_from_slice(&(body.len() as u32).to_le_bytes());
    message.extend_from_slice(&body);
    if stream.write_all(&message).is_err() {
        return Asked::No;
    }
    copy_answer(BufReader::new(stream), stdout, stderr)
}

/// Copies an answer's frames to `stdout` and `stderr` until its exit code, as [`super::ask`] does. Before the
/// first output, whatever goes wrong is [`Asked::No`]: the usual path asks again and reports it.
fn copy_answer(mut answer: impl Read, mut stdout: impl Write, mut stderr: impl Write) -> Asked {
    fn fail(stderr: &mut impl Write, line: &str) -> Asked {
        let _ = stderr.write_all(format!("error: {line}\n").as_bytes());
        Asked::Answered(1)
    }
    let mut answered = false;
    loop {
        match read_frame(&mut answer) {
            Ok(Some((b'o', bytes))) => {
                answered = true;
                match stdout.write_all(&bytes) {
                    Ok(()) => {}
                    // A reader that went away (`dreamos symbols | head`) ends the tool quietly.
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
                        return Asked::Answered(0)
                    }
                    Err(err) => return fail(&mut stderr, &format!("writing to stdout: {err}")),
                }
            }
            Ok(Some((b'e', bytes))) => {
                answered = true;
                let _ = stdout.flush();
                let _ = stderr.write_all(&bytes);
            }
            Ok(Some((b'x', code))) if code.len() == 1 => {
                return match stdout.flush() {
                    Ok(()) => Asked::Answered(code[0]),
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Asked::Answered(0),
                    Err(err) => fail(&mut stderr, &format!("writing to stdout: {err}")),
                };
            }
            _ if !answered => return Asked::No,
            Ok(Some((kind, _))) => {
                return fail(
                    &mut stderr,
                    &format!("the swarm answered with a frame of unknown kind {kind:#04x}; is it another version of dreamos?"),
                )
            }
            Ok(None) | Err(_) => {
                return fail(
                    &mut stderr,
                    "the swarm stopped while answering; run the command again",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
