//! Goroutine-local storage: `goexec::local!`.
//!
//! A `thread_local!` follows the OS thread, which a goroutine may change at any switch; a
//! [`LocalKey`] follows the goroutine. Each goroutine gets its own value, made by the key's
//! initialiser on first use and dropped when the goroutine finishes. On a plain thread the
//! value is per thread, as with `thread_local!`.

use super::m::current_g;
use super::tls;
use std::any::Any;

/// A goroutine-local value; declare one with [`local!`](crate::local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
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

/// Declares goroutine-local values, like `thread_local!` but per goroutine.
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
