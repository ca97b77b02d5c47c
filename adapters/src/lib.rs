//! Venue adapters: translate between venue bytes and keel events/commands (see issue 4).
