//! The process's allocator: mimalloc, asked for a plain block whenever a plain block
//! already has the alignment the layout asks for.
//!
//! The `mimalloc` crate hands every allocation to `mi_malloc_aligned`. mimalloc v3
//! serves that call from its fast path only while the size class's current page has a
//! free block; otherwise it takes the plain path for power-of-two sizes only and
//! over-allocates every other size (a 24-byte string, a 40-byte map node) through its
//! generic path into a larger size class (mimalloc_rust#170, reussir#339). Under callgrind
//! that generic path was 4 % of a replay's instructions, and the larger blocks spread the
//! members over more cache lines.
//!
//! Every mimalloc block is word-aligned: block sizes are whole words and a page's first
//! block is 16-byte aligned. So a layout aligned to at most a word is met by `mi_malloc`,
//! `mi_zalloc` and `mi_realloc`; larger alignments keep the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long, c_void};

use libmimalloc_sys as ffi;

/// The alignment every mimalloc block has.
const BLOCK_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc, for `#[global_allocator]` (the `rally` binary and the benches).
pub struct Allocator;

// SAFETY: every call is mimalloc's, which returns null or a block of at least the size
// asked for, aligned as asked (see the module docs for the plain calls), and frees any
// block it made with `mi_free`, whichever call made it.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            ffi::mi_malloc(layout.size()) as *mut u8
        } else {
            ffi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            ffi::mi_zalloc(layout.size()) as *mut u8
        } else {
            ffi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        ffi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= BLOCK_ALIGN {
            ffi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            ffi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

/// mimalloc's `mi_option_purge_delay` (`include/mimalloc.h`), which the bindings do not
/// name. The numbers of mimalloc's options are its ABI: retired options keep their
/// numbers (`mi_option_deprecated_*`), so this one stays 15.
const PURGE_DELAY: c_int = 15;

extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
}

/// Keeps the pages this process frees for its own later allocations, for a command
/// that runs to its end (`sim`, `replay`, `import`, ...). mimalloc returns a page to
/// the system 10 ms after its last block is freed and faults it back in, zeroed by the
/// kernel, when it needs one again: 53 MiB over `rally sim` on 100,000 events, where the
/// kernel's zeroing took 2–8 % of the run's samples (by how the 10 ms fell) and takes
/// 2 % with the pages kept. The daemon keeps the default: a long-lived process should
/// give back what a burst took.
pub fn keep_freed_pages() {
    // SAFETY: sets one of mimalloc's options, which it reads whenever it next decides
    // whether to purge; any value is valid, and -1 means never.
    unsafe { mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes from a byte to a megabyte, at alignments from 1 to 4096, 40 blocks each
    /// (so that pages fill and fresh ones are taken), then each grown threefold: every
    /// block is aligned as its layout says, zeroed when asked, and keeps its bytes
    /// across the reallocation.
    #[test]
    fn blocks_are_aligned_as_their_layouts_ask_and_keep_their_bytes() {
        let allocator = Allocator;
        for size in (1..=512).chain([1000, 4096, 5000, 70_000, 1 << 20]) {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                let mut blocks = Vec::new();
                for round in 0..40 {
                    let zeroed = round % 2 == 0;
                    // SAFETY: `layout` has a non-zero size; each block is written within
                    // its size and freed once, with its own layout.
                    unsafe {
                        let block = if zeroed {
                            allocator.alloc_zeroed(layout)
                        } else {
                            allocator.alloc(layout)
                        };
                        assert!(!block.is_null(), "{size} bytes aligned to {align}");
                        assert_eq!(block as usize % align, 0, "{size} bytes aligned to {align}");
                        if zeroed {
                            let bytes = std::slice::from_raw_parts(block, size);
                            assert!(bytes.iter().all(|&b| b == 0), "{size} bytes zeroed");
                        }
                        std::ptr::write_bytes(block, 0xA5, size);
                        blocks.push(block);
                    }
                }
                for block in blocks {
                    // SAFETY: as above; the grown block is freed with its new layout.
                    unsafe {
                        let grown = allocator.realloc(block, layout, size * 3);
                        assert!(!grown.is_null());
                        assert_eq!(grown as usize % align, 0, "{size} bytes regrown at {align}");
                        let kept = std::slice::from_raw_parts(grown, size);
                        assert!(kept.iter().all(|&b| b == 0xA5), "{size} bytes kept");
                        let grown_layout = Layout::from_size_align_unchecked(size * 3, align);
                        allocator.dealloc(grown, grown_layout);
                    }
                }
            }
        }
    }
}
