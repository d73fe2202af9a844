//! sled storage: one tree per concern, keys encoded in [`keys`], and one transaction
//! per group of steps.
