//! Keel's deterministic core.
//!
//! Sans-I/O: nothing here reads a clock, an RNG, the environment, a file or a socket, and
//! nothing spawns a thread. Time, ids and configuration arrive inside inputs; the whole API is
//! `Core::apply(&mut self, &Input) -> Decisions`. `clippy.toml` in this crate and the
//! `engine_is_sans_io` test keep it that way.

pub mod candle;
pub mod fixed;
pub mod symbol;

pub use candle::{Candle, Interval};
pub use fixed::Fixed;
pub use symbol::Symbol;
