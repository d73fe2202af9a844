//! `rally sim`: the real engine against a fresh temporary store on a virtual clock.
