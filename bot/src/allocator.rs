//! The binary's allocator: mimalloc for the swarm (`dreamos run`), the C library's for the one-shot tools.
//!
//! Why mimalloc for the swarm: message handling allocates on one thread (a sender's task builds a message) and frees
//! on another (the log's writer thread drops it after the flush). glibc's malloc serialises that pattern on its arena
//! locks; under load the profile of the durable benchmark showed futex waits inside malloc and free among the top
//! costs. mimalloc keeps per-thread heaps with cheap cross-thread frees.
//!
//! Why not for the tools: a tool runs for a few milliseconds, and mimalloc's start is most of them. Its first
//! allocations reserve a 1 GiB arena, fault in and zero a 2 MiB huge page, and take a fresh page per size class; at
//! exit it purges. Measured on `dreamos search` over a 1 M-line index (BENCHMARKS.md, "Scanner: whole processes"):
//! 4.2 ms a process with mimalloc, 3.4 ms with the C library's allocator, and `dreamos --help` 2.4 ms against 1.6 ms.
//!
//! How: the choice is made once, from the command line, before Rust's runtime allocates anything: glibc calls the
//! functions of `.init_array` with `argc` and `argv` before `main` (Rust's standard library reads its arguments the
//! same way). Every allocation and free asks the choice, which never changes once made. An allocation that comes
//! before the choice (none does today) makes it: mimalloc, for good. Elsewhere than on glibc the choice is never
//! made early, so it is always mimalloc.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// The global allocator: mimalloc or [`System`], as [`CHOICE`] says.
pub struct Chosen;

/// The allocator to use, deciding for mimalloc when nothing was decided yet. Once it returns, it returns the same
/// for the rest of the process: the only store is the compare-exchange from `UNDECIDED`.
#[inline]
fn system() -> bool {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => {
            match CHOICE.compare_exchange(UNDECIDED, MIMALLOC, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => false,
                Err(now) => now == SYSTEM,
            }
        }
        now => now == SYSTEM,
    }
}

// SAFETY: every call goes to the one allocator that `system()` names, and that answer never changes, so memory is
// always freed or resized by the allocator that gave it out. Both allocators uphold `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Chosen {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if system() {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if system() {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if system() {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if system() {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            unsafe { MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

/// True when the command line names the swarm: the first word that is neither an option nor the value of one is
/// `run`. Global options that take a value (`--data-dir DIR`, `--config FILE`) are skipped with their value. A
/// misreading costs speed only, never correctness.
fn wants_swarm<'a>(args: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut args = args.skip(1);
    while let Some(arg) = args.next() {
        match arg {
            b"--data-dir" | b"--config" => {
                args.next();
            }
            _ if arg.starts_with(b"-") => {}
            _ => return arg == b"run",
        }
    }
    false
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) mod early {
    use std::ffi::{c_char, c_int, CStr};

    /// The arguments glibc passes to the functions of `.preinit_array` and `.init_array`.
    pub(crate) type Args = (c_int, *const *const c_char);

    /// The process's arguments as glibc passes them before `main`.
    pub(crate) fn args((argc, argv): Args) -> impl Iterator<Item = &'static [u8]> + Clone {
        let count = if argv.is_null() {
            0
        } else {
            usize::try_from(argc).unwrap_or(0)
        };
        (0..count).filter_map(move |i| {
            // SAFETY: glibc passes `argc` valid pointers to NUL-terminated strings in `argv`, alive for the whole
            // process; a null entry (there is none before `argc`) is skipped.
            let arg = unsafe { *argv.add(i) };
            (!arg.is_null()).then(|| unsafe { CStr::from_ptr(arg) }.to_bytes())
        })
    }

    /// Makes the choice from the command line unless something made it already; true when the choice is the C
    /// library's allocator.
    pub(crate) fn choose_from(args: Args) -> bool {
        let choice = if super::wants_swarm(self::args(args)) {
            super::MIMALLOC
        } else {
            super::SYSTEM
        };
        // Fails only if something allocated first, or an earlier call chose already.
        let _ = super::CHOICE.compare_exchange(
            super::UNDECIDED,
            choice,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
        super::CHOICE.load(std::sync::atomic::Ordering::Relaxed) == super::SYSTEM
    }

    /// Called by glibc before `main`, with the process's arguments.
    extern "C" fn choose(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
        choose_from((argc, argv));
    }

    #[used]
    #[link_section = ".init_array"]
    static CHOOSE: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = choose;
}

#[cfg(test)]
mod tests {
    use super::wants_swarm;

    fn swarm(line: &str) -> bool {
        wants_swarm(line.split(' ').map(str::as_bytes))
    }

    #[test]
    fn only_the_swarm_gets_mimalloc() {
        assert!(swarm("dreamos run"));
        assert!(swarm("dreamos run --json"));
        assert!(swarm("dreamos --data-dir /srv/d run --console"));
        assert!(swarm("dreamos --config run run"));
        assert!(!swarm("dreamos"));
        assert!(!swarm("dreamos --help"));
        assert!(!swarm("dreamos search run"));
        assert!(!swarm("dreamos --data-dir run search HashMap"));
        assert!(!swarm("dreamos --data-dir=run search x"));
        assert!(!swarm("dreamos repos"));
    }
}
