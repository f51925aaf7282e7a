//! Goroutine-local storage: `goexec::local!`.
//!
//! A `thread_local!` follows the OS thread, which a goroutine may change at any switch; a
//! [`LocalKey`] follows the goroutine. Each goroutine gets its own value, made by the key's
//! initialiser on first use and dropped when the goroutine finishes. On a plain thread the
//! value is per thread, as with `thread_local!`.

use super::g::GRef;
use super::m::current_g;
use super::tls;
use std::any::Any;

/// Passes over a finished goroutine's values before the ones its destructors keep making are
/// leaked (POSIX's `PTHREAD_DESTRUCTOR_ITERATIONS`, 4 in glibc, for thread-specific data).
const DROP_ROUNDS: usize = 4;

/// Drops the values of `g`, the running goroutine, as it finishes (see [`LocalKey`]'s docs on
/// destructors). One at a time, the others left in place for destructors that use them; a
/// value a destructor makes is dropped in turn. Nothing is left behind for the next goroutine
/// on the same G record: after [`DROP_ROUNDS`] passes, values that destructors still keep
/// making are leaked.
#[cold]
#[inline(never)]
pub(crate) fn drop_locals(g: GRef) {
    for _ in 0..DROP_ROUNDS {
        let Some((v, left)) = g.pop_local() else {
            break;
        };
        // Dropped outside the storage: the destructor may use it.
        drop(v);
        for _ in 0..left {
            match g.pop_local() {
                Some((v, _)) => drop(v),
                None => break,
            }
        }
    }
    if let Some(rest) = g.take_locals() {
        if !rest.is_empty() {
            std::mem::forget(rest);
        }
    }
}

/// A goroutine-local value; declare one with [`local!`](crate::local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Runs `f` with this goroutine's value, creating it first if needed.
    ///
    /// While `f` runs, the value is taken out of the goroutine's storage: a nested `with` on
    /// the *same* key (from inside `f`) sees a fresh value, not this one. `f` may block and
    /// switch threads freely: the value belongs to the goroutine.
    ///
    /// # Destructors
    ///
    /// When a goroutine finishes, its values are dropped one at a time, on the goroutine. A
    /// value's destructor may use any local, as with `thread_local!` (but it never panics with
    /// an `AccessError`): a value not yet dropped is seen as it is, and one already dropped, or
    /// never made, is made afresh and dropped in turn. None of them outlives the goroutine:
    /// if destructors keep making each other's values, after four passes the values left are
    /// leaked (as POSIX does with thread-specific data), never handed to another goroutine.
    ///
    /// On a plain thread the values are dropped by the thread's `thread_local!` storage as it
    /// exits; a destructor that uses a local then gets a fresh value, dropped when its `with`
    /// returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    ///
    /// goexec::local! {
    ///     static COUNTER: Cell<u32> = Cell::new(0);
    /// }
    ///
    /// goexec::run(|| {
    ///     COUNTER.with(|c| c.set(c.get() + 1));
    ///     let other = goexec::spawn(|| COUNTER.with(|c| c.get())).join().unwrap();
    ///     assert_eq!(other, 0); // the other goroutine has its own counter
    ///     assert_eq!(COUNTER.with(|c| c.get()), 1);
    /// });
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let take = |slots: &mut Vec<(usize, Box<dyn Any>)>| {
            slots
                .iter()
                .position(|(k, _)| *k == key)
                .map(|i| slots.swap_remove(i).1)
        };
        let boxed = match current_g() {
            Some(g) => g.with_locals(take),
            None => tls::with_thread_locals(take),
        };
        let value: Box<dyn Any> = boxed.unwrap_or_else(|| Box::new((self.init)()));
        let r = match value.downcast_ref::<T>() {
            Some(v) => f(v),
            None => super::fatal("LocalKey::with", "a slot holds another key's type"),
        };
        // Put it back in whatever goroutine-or-thread storage we are on now (for a goroutine
        // the same one, found again through TLS after f may have switched threads).
        let put = |slots: &mut Vec<(usize, Box<dyn Any>)>| slots.push((key, value));
        match current_g() {
            Some(g) => g.with_locals(put),
            None => tls::with_thread_locals(put),
        }
        r
    }
}

/// Declares goroutine-local values, like `thread_local!` but per goroutine. Each goroutine's
/// values are dropped when it finishes, including those its values' destructors use or make
/// (see [`LocalKey::with`](crate::runtime::LocalKey::with)).
///
/// ```
/// goexec::local! {
///     static REQUEST_ID: std::cell::Cell<u64> = std::cell::Cell::new(0);
/// }
/// # goexec::run(|| REQUEST_ID.with(|id| id.set(7)));
/// ```
#[macro_export]
macro_rules! local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::runtime::LocalKey<$t> =
            $crate::runtime::LocalKey::new(|| $init);
        $crate::local!($($rest)*);
    };
    () => {};
}
