//! The `keel` binary's library half: CLI plumbing, configuration, candle import and the
//! runtime wiring that connects I/O to the deterministic core.

pub mod alerts;
pub mod config;
pub mod download;
pub mod export;
pub mod import;
pub mod indicators_cmd;
pub mod live_session;
pub mod metrics;
pub mod paper_session;
pub mod pgsink;
pub mod session_config;
pub mod sweep;
pub mod venue_cmd;
pub mod watch;
