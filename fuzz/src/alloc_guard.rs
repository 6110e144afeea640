//! A global allocator that aborts on any single allocation over [`ALLOCATION_LIMIT`].
//!
//! libFuzzer's `-malloc_limit_mb` needs the malloc hooks of a sanitizer runtime, so it has no
//! effect with `--sanitizer none`, and `-rss_limit_mb` only samples the resident size once a
//! second (a big allocation freed within the second, or never touched, goes unseen). This guard
//! makes every oversized request a crash that libFuzzer reports ("deadly signal") and saves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// The largest single allocation allowed: 512 MiB, as `-rss_limit_mb=512`.
pub const ALLOCATION_LIMIT: usize = 512 << 20;

struct LimitedAllocator;

fn check(size: usize) {
    if size > ALLOCATION_LIMIT {
        // No allocation here: the message is built on the stack and stderr is unbuffered.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = size;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let mut stderr = std::io::stderr();
        let _ = stderr.write_all(b"==alloc_guard== ERROR: one allocation of ");
        let _ = stderr.write_all(&digits[at..]);
        let _ = stderr.write_all(b" bytes, over the 536870912-byte limit\n");
        std::process::abort();
    }
}

unsafe impl GlobalAlloc for LimitedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;
