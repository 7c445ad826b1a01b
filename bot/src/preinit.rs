//! What the binary does before anything else starts: a read-only tool asks a running swarm
//! ([`dreamos_bot::served::quick`]), and exits with its answer when it gets one.
//!
//! glibc runs the executable's `.preinit_array` before the shared libraries' constructors, the binary's own
//! (`.init_array`: mimalloc's start, [`crate::allocator`]'s choice, Rust's runtime reading its arguments) and `main`.
//! So this chooses the allocator first (the C library's, as for every tool), takes the environment from the pointer
//! glibc passes, writes to the standard streams' descriptors directly, and leaves with `_exit`: none of the process's
//! exit handlers belong to anything that ran. With no answer it returns, having printed nothing, and the process
//! starts as usual.

#![allow(unsafe_code)]

// Not in the binary's unit tests, whose arguments are test names and options.
#[cfg(all(target_os = "linux", target_env = "gnu", not(test)))]
mod linux {
    use std::{
        ffi::{c_char, c_int, CStr},
        fs::File,
        mem::ManuallyDrop,
        os::fd::FromRawFd,
    };

    use dreamos_bot::served::quick::{self, Asked};

    use crate::allocator::early;

    extern "C" fn ask(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
        // A swarm's command line (`run`) keeps mimalloc, and is not a tool's anyway.
        if !early::choose_from((argc, argv)) {
            return;
        }
        let args: Vec<&[u8]> = early::args((argc, argv)).collect();
        let Some(plan) = quick::plan(&args, |name| var(envp, name)) else {
            return;
        };
        // As Rust's runtime does at start: a standard stream that is closed is opened on /dev/null, so that the
        // socket does not take its descriptor and what is printed does not go to the swarm.
        for fd in 0..=2 {
            // SAFETY: `fcntl(F_GETFD)` only asks whether the descriptor is open; `open` returns the lowest free
            // descriptor, which is `fd` when it was closed, and that descriptor is left open for the process.
            unsafe {
                if nix::libc::fcntl(fd, nix::libc::F_GETFD) == -1
                    && nix::errno::Errno::last() == nix::errno::Errno::EBADF
                    && nix::libc::open(c"/dev/null".as_ptr(), nix::libc::O_RDWR) != fd
                {
                    return;
                }
            }
        }
        // As Rust's runtime does at start: a reader that went away is an error from `write`, not a signal.
        // SAFETY: setting a signal's disposition to "ignore" installs no handler; nothing else runs yet.
        unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
        // SAFETY: descriptors 1 and 2 are this process's stdout and stderr (or closed, and then writes fail); they
        // are never closed here (`ManuallyDrop`), and nothing else writes to them before this process exits.
        let (stdout, stderr) = unsafe {
            (
                ManuallyDrop::new(File::from_raw_fd(1)),
                ManuallyDrop::new(File::from_raw_fd(2)),
            )
        };
        if let Asked::Answered(code) = quick::ask(&plan, &*stdout, &*stderr) {
            // SAFETY: `_exit` ends the process at once; everything printed went out with plain `write`s.
            unsafe { nix::libc::_exit(c_int::from(code)) };
        }
    }

    /// The value of the environment variable `name` in `envp`, as `getenv` finds it (the first entry).
    fn var(envp: *const *const c_char, name: &str) -> Option<&'static [u8]> {
        if envp.is_null() {
            return None;
        }
        let mut at = 0;
        loop {
            // SAFETY: glibc passes the environment as an array of pointers to NUL-terminated strings, ended by a
            // null pointer, alive for the whole process.
            let entry = unsafe { *envp.add(at) };
            if entry.is_null() {
                return None;
            }
            let entry = unsafe { CStr::from_ptr(entry) }.to_bytes();
            if let Some(value) = entry
                .strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
            {
                return Some(value);
            }
            at += 1;
        }
    }

    #[used]
    #[link_section = ".preinit_array"]
    static ASK: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = ask;
}
