//! Asking the processor to fetch memory a coming step will read, while the step before
//! it runs.
//!
//! `sim` steps members in the order their events come, which over a community of any
//! size is no order at all: each step's member, its bookkeeping and its counters sit in
//! memory the cache has long since dropped. The feed knows the next events before it
//! applies them, so it names their members ahead (see `feed::apply_all`), and the
//! loads the step would have waited on are already under way.

/// Starts bringing the `bytes` bytes at `at` into the cache; nothing when the target
/// has no such instruction. It never faults, whatever `at` is: a hint, not a read.
#[inline]
pub fn bytes<T>(at: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = at as usize & !(LINE - 1);
        let end = (at as usize).saturating_add(bytes.max(1));
        for line in (start..end).step_by(LINE) {
            // SAFETY: a prefetch reads nothing and cannot fault, whatever the address
            // (Intel SDM, PREFETCHh); SSE, which it needs, is part of x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line as *const i8) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, bytes);
}

/// As [`bytes`], for the value `value` points to.
#[inline]
pub fn value<T>(value: *const T) {
    bytes(value, std::mem::size_of::<T>());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetch_of_memory_that_is_not_there_does_not_fault() {
        bytes(std::ptr::null::<u8>(), 4096);
        bytes(usize::MAX as *const u8, 64);
        let freed = Box::into_raw(Box::new([0u64; 32]));
        // SAFETY: the box was just made by `Box::new` and is dropped once.
        drop(unsafe { Box::from_raw(freed) });
        value(freed);
        bytes(freed, 0);
    }
}
