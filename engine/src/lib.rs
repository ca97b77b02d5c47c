//! Keel's deterministic core.
//!
//! Sans-I/O: nothing here reads a clock, an RNG, the environment, a file or a socket, and
//! nothing spawns a thread. Time, ids and configuration arrive inside inputs; the whole API is
//! `Core::apply(&mut self, &Input) -> &[Decision]`. `clippy.toml` in this crate and the
//! `engine_is_sans_io` test keep it that way.

pub mod candle;
pub mod config;
pub mod core;
pub mod event;
pub mod fixed;
pub mod indicators;
pub mod portfolio;
pub mod resample;
pub mod sim;
pub mod strategy;
pub mod symbol;

pub use crate::core::{Core, CoreState};
pub use candle::{Candle, Interval};
pub use config::{CoreConfig, Direction, RiskConfig, Sizing, StopRule, StrategyConfig, TargetRule};
pub use event::{Decision, Event, Input, RecordKind};
pub use fixed::Fixed;
pub use sim::{Market, SimConfig, SimVenue};
pub use symbol::Symbol;
