//! Store tests that hold for every backend run once per backend: a test written as
//! `fn name(fresh: fn() -> Store)` and listed in [`on_both_backends`] becomes the tests
//! `name::sled` and `name::memory`, `fresh` opening an empty store of that backend.

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sled() {
                super::$name(|| $crate::store::Store::open_temporary().unwrap())
            }

            #[test]
            fn memory() {
                super::$name(|| $crate::store::Store::in_memory().unwrap())
            }
        }
    )*};
}

pub(super) use on_both_backends;
