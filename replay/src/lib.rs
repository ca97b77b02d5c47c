//! Drives keel's core from journals: the engine loop shared by every mode, backtests over
//! the candle store with the simulated venue, `replay verify`, and reports.

pub mod backtest;
pub mod codec;
pub mod diff;
pub mod engine_loop;
pub mod html;
pub mod live;
pub mod paper;
pub mod recover;
pub mod report;
pub mod resolve;
pub mod store;
pub mod synthetic;
pub mod verify;
