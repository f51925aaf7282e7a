//! A cache of stacks of one size in front of the allocator.
//!
//! Go keeps free stacks per P (`stackcache`) so that most spawns take no lock and touch no
//! fresh pages; a [`StackPool`] is that cache. It is owned by one P (or one thread) and taken
//! by `&mut`, so it needs no lock of its own.
//!
//! Reuse is LIFO: the most recently freed stack has the warmest pages. A freed stack keeps its
//! pages; [`StackPool::scrub`] gives back everything below the top [`KEEP_RESIDENT`] bytes of
//! the stacks freed since the last scrub, at ~1.6 µs per stack for `MADV_DONTNEED`, so it is
//! kept off the spawn path. The scheduler does not call it yet: like Go's scavenger, it belongs
//! to a background pass (sysmon), since a P that scrubs whenever it idles would fault its
//! stacks back in on the next burst.
//!
//! The pool is public only with the unstable `bench-internals` feature, for the benches package.
// Without it, `scrub` (with what only it uses) and `stack_size` are the benches' and the tests',
// and the `pub` items are the crate's own.
#![cfg_attr(not(feature = "bench-internals"), allow(dead_code, unreachable_pub))]

use super::{checked_size, Stack, StackError};

/// Bytes at the top of a pooled stack that stay resident across reuse: most goroutines never
/// touch more, and a page's first touch costs 2–6 µs on the 2-vCPU VMs goexec is measured on.
pub const KEEP_RESIDENT: usize = 16 * 1024;

/// Stacks a pool keeps before spilling half to the allocator: 64 default stacks are 16 MiB of
/// address space and, scrubbed, 1 MiB of memory.
pub const DEFAULT_POOL_CAPACITY: usize = 64;

/// A cache of free stacks of one size.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "bench-internals")] // without it the pool is not public
/// # {
/// use goexec::stack::StackPool;
///
/// let mut pool = StackPool::new(64 * 1024)?;
/// let stack = pool.get()?;            // allocated: the pool was empty
/// let bottom = stack.bottom();
/// pool.put(stack);
/// assert_eq!(pool.get()?.bottom(), bottom); // the same stack, reused
/// # }
/// # Ok::<(), goexec::stack::StackError>(())
/// ```
#[derive(Debug)]
pub struct StackPool {
    stack_size: usize,
    capacity: usize,
    /// Free stacks, the most recently freed last; `dirty` ones have not been scrubbed since.
    cache: Vec<Cached>,
}

#[derive(Debug)]
struct Cached {
    stack: Stack,
    dirty: bool,
}

impl StackPool {
    /// A pool of stacks of `stack_size` bytes (rounded up to whole pages), holding up to
    /// [`DEFAULT_POOL_CAPACITY`] free stacks.
    ///
    /// # Errors
    ///
    /// [`StackError::TooSmall`] or [`StackError::TooLarge`] when the size is out of bounds.
    pub fn new(stack_size: usize) -> Result<StackPool, StackError> {
        StackPool::with_capacity(stack_size, DEFAULT_POOL_CAPACITY)
    }

    /// Like [`StackPool::new`], keeping up to `capacity` free stacks (at least one).
    ///
    /// # Errors
    ///
    /// As [`StackPool::new`].
    pub fn with_capacity(stack_size: usize, capacity: usize) -> Result<StackPool, StackError> {
        Ok(StackPool {
            stack_size: checked_size(stack_size)?,
            capacity: capacity.max(1),
            cache: Vec::new(),
        })
    }

    /// The size of this pool's stacks.
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Free stacks held.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether no free stack is held.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Takes the most recently freed stack, or allocates one.
    ///
    /// # Errors
    ///
    /// As [`Stack::new`], when the pool is empty and allocation fails.
    pub fn get(&mut self) -> Result<Stack, StackError> {
        match self.cache.pop() {
            Some(cached) => Ok(cached.stack),
            None => Stack::new(self.stack_size),
        }
    }

    /// Keeps a free stack for reuse. A stack of another size is dropped instead; when the pool
    /// is full, its older half goes back to the allocator first.
    pub fn put(&mut self, stack: Stack) {
        if stack.size() != self.stack_size {
            return;
        }
        if self.cache.len() >= self.capacity {
            let spill = self.cache.len().div_ceil(2);
            self.cache.drain(..spill);
        }
        self.cache.push(Cached { stack, dirty: true });
    }

    /// Adds free stacks (of this pool's size; others are dropped), beyond the capacity if need
    /// be: a refill from a larger cache.
    pub fn extend(&mut self, stacks: impl IntoIterator<Item = Stack>) {
        let size = self.stack_size;
        self.cache.extend(
            stacks
                .into_iter()
                .filter(|s| s.size() == size)
                .map(|stack| Cached { stack, dirty: true }),
        );
    }

    /// Takes up to `n` of the least recently freed stacks out of the pool (a full pool's
    /// spill to a larger cache).
    pub fn take_oldest(&mut self, n: usize) -> impl Iterator<Item = Stack> + '_ {
        let n = n.min(self.cache.len());
        self.cache.drain(..n).map(|c| c.stack)
    }

    /// Takes every free stack out of the pool.
    pub fn drain(&mut self) -> impl Iterator<Item = Stack> + '_ {
        self.cache.drain(..).map(|c| c.stack)
    }

    /// Gives back to the kernel the pages below the resident top of every stack freed since
    /// the last scrub; returns how many stacks it scrubbed.
    pub fn scrub(&mut self) -> usize {
        let mut n = 0;
        for cached in self.cache.iter_mut().filter(|c| c.dirty) {
            cached.stack.release_below(KEEP_RESIDENT);
            cached.dirty = false;
            n += 1;
        }
        n
    }
}
