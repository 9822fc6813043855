//! The process's allocator: the system allocator, except that very large requests get address
//! space that is not reserved up front (`MAP_NORESERVE`).
//!
//! Why: the protocol decoder sizes a vector from the element count a client sends, before it
//! reads the elements. A garbage count of two billion asks for hundreds of gigabytes, which the
//! system allocator refuses, and Rust aborts the process on a refused allocation. With this
//! allocator such a request gets untouched address space; decoding then fails on the first
//! missing element and the space is returned. Memory actually used stays bounded by the frame
//! size (`socket.request.max.bytes`). Nothing legitimate in the broker allocates this much.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at or above this size are mapped lazily.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct Allocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: an anonymous private mapping has no preconditions; failure is reported
            // as MAP_FAILED, which we turn into the null that `GlobalAlloc` expects.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    layout.size(),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            return if p == libc::MAP_FAILED {
                std::ptr::null_mut()
            } else {
                p as *mut u8
            };
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from the mmap above with this very size.
            unsafe { libc::munmap(ptr as *mut libc::c_void, layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // Fresh anonymous mappings are zero-filled.
            return unsafe { self.alloc(layout) };
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` and `layout.align()` form a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: both sides belong to the system allocator.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate, copy the common prefix, free: valid for any pair of our layouts.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// glibc grows its mmap threshold each time a large block is freed, after which multi-megabyte
/// fetch and produce buffers come from the heap and their memory stays with the process once
/// freed. A fixed threshold keeps such buffers in their own mappings, returned when dropped, and
/// fewer arenas keep freed memory from being spread over one heap per thread.
pub fn tune_malloc() {
    // SAFETY: mallopt only changes allocator parameters; called before the runtime starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_allocations_are_lazy_and_round_trip() {
        let a = Allocator;
        let layout = Layout::from_size_align(200 << 30, 8).unwrap(); // 200 GiB
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null(), "untouched address space is granted");
            *p = 7;
            *p.add((200 << 30) - 1) = 9;
            let q = a.realloc(p, layout, 16);
            assert_eq!(*q, 7);
            a.dealloc(q, Layout::from_size_align(16, 8).unwrap());
        }
    }
}
