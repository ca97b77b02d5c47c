//! A sink of candles and fills into PostgreSQL (candles in a TimescaleDB hypertable when the
//! server has the extension): `keel data push`, which feeds it from the candle store, and the
//! session sink, which a paper or live session feeds as bars close and orders fill.
//!
//! Contract:
//! - [`PgSink::ensure_schema`] creates the candle table if it is missing:
//!   `(symbol text, interval text, open_time timestamptz, open, high, low, close, volume
//!   numeric(38,8))`, primary key `(symbol, interval, open_time)`. When TimescaleDB is
//!   installed in the database, or `CREATE EXTENSION timescaledb` succeeds, the table becomes a
//!   hypertable on `open_time`; without it the table stays a plain one (never an error).
//! - [`PgSink::ensure_fills_schema`] creates the fill table if it is missing: `(session text,
//!   client_id, venue_order_id, trade_id bigint, symbol, side text, price, qty, fee
//!   numeric(38,8), liquidity text, ts timestamptz)`, primary key `(session, symbol, trade_id,
//!   client_id)`. It stays a plain table even with TimescaleDB: a hypertable's primary key must
//!   include its time column, and a fill's identity does not include `ts` (putting it in the
//!   key would let a fill whose time differs land twice instead of being reported).
//! - [`PgSink::push`] and [`PgSink::push_fills`] never overwrite: a row that is already there
//!   with identical values counts as already present; one whose row holds different values is
//!   an error naming it and the differing fields, and nothing from that call is written (each
//!   call is one transaction). So re-sending rows is always safe.
//! - Decimals go over the wire as `Fixed`'s exact decimal text and are cast to `numeric` by the
//!   server: no `f64` anywhere. Times go as ISO-8601 UTC text cast to `timestamptz`, which has
//!   microsecond resolution: a bar opening at a sub-microsecond time is refused, not rounded (it
//!   is part of the bar's identity); a fill's `ts` is truncated to the microsecond (it is not
//!   part of the identity, and a session's clock may tick in nanoseconds; the journal keeps the
//!   exact time).
//! - Errors and summaries show the connection URL with its password replaced by `***`.
//! - [`spawn_session_sink`] never blocks its caller and never stops a session: rows go through
//!   a bounded queue, and when PostgreSQL is slow or down the queue fills and further rows are
//!   counted as dropped (see [`SinkStats`]), while the journal still holds every one of them.
//!
//! Transport: plain TCP or a Unix socket, no TLS yet (`sslmode=require` is refused up front),
//! so use it over loopback, a Unix socket, or a network you trust.
//!
//! Why `INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT DO NOTHING` rather than
//! `COPY ... BINARY`: the rule above needs `ON CONFLICT`, which `COPY` lacks (it would need a
//! staging table and a second `INSERT ... SELECT` anyway); one prepared statement takes a whole
//! batch as one text array per column, so the 65,535-parameter cap of a `VALUES` list never
//! bites and the plan is reused. The conflict check costs nothing on the common path: it runs
//! only when the insert reports fewer rows than it was given, as a join of the same arrays
//! against the primary key, in the same transaction, so it also sees rows another session
//! committed meanwhile.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use keel_engine::event::{Fill, Liquidity};
use keel_engine::{Candle, Fixed, Interval, Symbol};
use keel_replay::report::iso8601;
use keel_replay::store::{CandleCursor, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::config::parse_time;

/// Most rows in one INSERT statement (one text array of this many elements per column).
pub const BATCH_ROWS: usize = 10_000;
/// Conflicting rows described one by one in a conflict error; the rest are counted.
const CONFLICTS_SHOWN: i64 = 1;
/// Applied when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IDENTIFIER_MAX_LEN: usize = 63;

#[derive(Debug, thiserror::Error)]
pub enum PgSinkError {
    #[error(
        "PostgreSQL URL {url} is not valid: {reason} (expected \
         postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "PostgreSQL URL {url} requires TLS (sslmode=require), which keel's sink does not \
         support yet: connect over loopback or a Unix socket without sslmode=require"
    )]
    TlsUnsupported { url: String },
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error(
        "PostgreSQL at {url} refused the login: {reason}; check the user name and the \
         password (not shown)"
    )]
    Auth { url: String, reason: String },
    #[error(
        "table name `{name}` is refused: {reason}; use letters, digits and underscores, \
         starting with a letter or underscore, at most {IDENTIFIER_MAX_LEN} characters"
    )]
    BadTable { name: String, reason: &'static str },
    #[error(
        "table {table} at {url} exists but is not a keel {kind} table: {reason}; \
         give another table name"
    )]
    WrongTable {
        url: String,
        table: String,
        kind: &'static str,
        reason: String,
    },
    #[error("PostgreSQL at {url}: {action}: {reason}")]
    Query {
        url: String,
        action: String,
        reason: String,
    },
    /// The connection broke (the server went away, restarted, or ended this session): a new
    /// connection may well succeed, and re-sending is safe.
    #[error("lost the connection to PostgreSQL at {url} while {action}: {reason}")]
    ConnectionLost {
        url: String,
        action: String,
        reason: String,
    },
    #[error("{0}")]
    Conflict(Box<Conflict>),
    #[error("{0}")]
    FillConflict(Box<FillConflict>),
    #[error(
        "{symbol} bar at {time_ns} ns opens at a sub-microsecond time, which a PostgreSQL \
         timestamptz cannot hold exactly"
    )]
    SubMicrosecond { symbol: String, time_ns: i64 },
    #[error(
        "{symbol} fill of trade {trade_id}: its {field} {value} is above {max}, the largest \
         PostgreSQL bigint, so it cannot be stored",
        max = i64::MAX
    )]
    IdOutOfRange {
        symbol: String,
        trade_id: u64,
        field: &'static str,
        value: u64,
    },
    #[error("push before ensure_schema: the sink has no candle table yet")]
    NoTable,
    #[error("push_fills before ensure_fills_schema: the sink has no fill table yet")]
    NoFillsTable,
}

impl PgSinkError {
    /// The server could not be reached or the connection broke: worth retrying later with a
    /// new connection (a refused login too, as it may be fixed on the server meanwhile).
    pub fn is_connection_problem(&self) -> bool {
        matches!(
            self,
            PgSinkError::Connect { .. }
                | PgSinkError::ConnectionLost { .. }
                | PgSinkError::Auth { .. }
        )
    }

    /// The rows themselves cannot be stored as they are (a conflict, a time or an id
    /// PostgreSQL cannot hold): retrying the same rows cannot succeed.
    pub fn is_row_problem(&self) -> bool {
        matches!(
            self,
            PgSinkError::Conflict(_)
                | PgSinkError::FillConflict(_)
                | PgSinkError::SubMicrosecond { .. }
                | PgSinkError::IdOutOfRange { .. }
        )
    }

    /// The configuration can never work (URL, TLS, table name): no retry can help.
    pub fn is_config_problem(&self) -> bool {
        matches!(
            self,
            PgSinkError::BadUrl { .. }
                | PgSinkError::TlsUnsupported { .. }
                | PgSinkError::BadTable { .. }
        )
    }
}

/// A bar whose row in the table holds different values (the first such bar of a push).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{symbol} {interval} bar at {time} conflicts with the row already in table {table} \
     ({diff}){more}; nothing from this push was written and no row was changed: the sink \
     never overwrites, so delete that row in PostgreSQL if keel's data is the right one"
)]
pub struct Conflict {
    pub table: String,
    pub symbol: String,
    pub interval: String,
    /// ISO-8601 UTC open time.
    pub time: String,
    /// `close: stored 1, pushed 46377`, for each field that differs.
    pub diff: String,
    /// Empty, or `; 3 more bars of the same batch conflict too`.
    pub more: String,
}

/// A fill whose row in the table holds different values (the first such fill of a push).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "fill of session {session}, {symbol} trade {trade_id} of order {client_id}, conflicts \
     with the row already in table {table} ({diff}){more}; nothing from this push was written \
     and no row was changed: the sink never overwrites, so delete that row in PostgreSQL if \
     keel's fill is the right one"
)]
pub struct FillConflict {
    pub table: String,
    pub session: String,
    pub symbol: String,
    pub trade_id: String,
    pub client_id: String,
    /// `price: stored 1, pushed 46377`, for each field that differs.
    pub diff: String,
    /// Empty, or `; 3 more fills of the same batch conflict too`.
    pub more: String,
}

/// A table name checked to be a plain SQL identifier, so it can be interpolated into SQL.
/// Folded to lower case, as PostgreSQL folds unquoted names, and always written quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName(String);

impl TableName {
    pub fn new(text: &str) -> Result<TableName, PgSinkError> {
        let refuse = |reason| PgSinkError::BadTable {
            name: text.to_string(),
            reason,
        };
        let Some(first) = text.chars().next() else {
            return Err(refuse("it is empty"));
        };
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(refuse("it does not start with a letter or underscore"));
        }
        if !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(refuse(
                "it holds a character other than a letter, digit or _",
            ));
        }
        if text.len() > IDENTIFIER_MAX_LEN {
            return Err(refuse("it is too long"));
        }
        Ok(TableName(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted for SQL. Safe by construction: it holds only `[a-z0-9_]`.
    fn sql(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the table is a TimescaleDB hypertable, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hypertable {
    Yes,
    No(String),
}

impl fmt::Display for Hypertable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hypertable::Yes => f.write_str("yes"),
            Hypertable::No(why) => write!(f, "no ({why})"),
        }
    }
}

/// What one [`PgSink::push`] or [`PgSink::push_fills`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub sent: u64,
    pub inserted: u64,
    /// Rows that were already there with identical values.
    pub already_present: u64,
}

impl PushSummary {
    fn add(&mut self, other: PushSummary) {
        self.sent += other.sent;
        self.inserted += other.inserted;
        self.already_present += other.already_present;
    }
}

/// The shape of a table keel writes: its columns, as `format_type` prints their types (valid
/// DDL too), and its primary key.
struct TableSpec {
    /// `candle` or `fill`, for messages.
    kind: &'static str,
    columns: &'static [(&'static str, &'static str)],
    key: &'static [&'static str],
}

const CANDLES: TableSpec = TableSpec {
    kind: "candle",
    columns: &[
        ("symbol", "text"),
        ("interval", "text"),
        ("open_time", "timestamp with time zone"),
        ("open", "numeric(38,8)"),
        ("high", "numeric(38,8)"),
        ("low", "numeric(38,8)"),
        ("close", "numeric(38,8)"),
        ("volume", "numeric(38,8)"),
    ],
    key: &["symbol", "interval", "open_time"],
};

const FILLS: TableSpec = TableSpec {
    kind: "fill",
    columns: &[
        ("session", "text"),
        ("client_id", "bigint"),
        ("venue_order_id", "bigint"),
        ("trade_id", "bigint"),
        ("symbol", "text"),
        ("side", "text"),
        ("price", "numeric(38,8)"),
        ("qty", "numeric(38,8)"),
        ("fee", "numeric(38,8)"),
        ("liquidity", "text"),
        ("ts", "timestamp with time zone"),
    ],
    key: &["session", "symbol", "trade_id", "client_id"],
};

impl TableSpec {
    fn create_sql(&self, name: &TableName) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|(column, ty)| format!("\"{column}\" {ty} NOT NULL"))
            .collect();
        let key: Vec<String> = self.key.iter().map(|k| format!("\"{k}\"")).collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
            name.sql(),
            columns.join(", "),
            key.join(", ")
        )
    }
}

/// A connection to PostgreSQL that stores candles and fills. Must be used inside a tokio
/// runtime.
pub struct PgSink {
    client: Client,
    /// The URL with its password hidden, for messages.
    url: String,
    candles: Option<Prepared>,
    fills: Option<Prepared>,
}

struct Prepared {
    name: TableName,
    insert: Statement,
    check: Statement,
}

impl PgSink {
    /// Connects to `url` (`postgres://user:password@host:port/db`, or libpq's
    /// `host=... user=...` form; a host starting with `/` is a Unix socket directory).
    pub async fn connect(url: &str) -> Result<PgSink, PgSinkError> {
        Self::connect_with_password(url, None).await
    }

    /// As [`PgSink::connect`]; `password` applies when the URL has none (so it need not
    /// appear on a command line, as with psql's `PGPASSWORD`).
    pub async fn connect_with_password(
        url: &str,
        password: Option<&[u8]>,
    ) -> Result<PgSink, PgSinkError> {
        let mut config = parse_url(url, password)?;
        let shown = display_url(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("keel");
        }
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| connect_error(&e, &config, &shown))?;
        // The connection task ends by itself when the client is dropped; an error it hits
        // reaches the caller as a "connection closed" error on the next statement.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(PgSink {
            client,
            url: shown,
            candles: None,
            fills: None,
        })
    }

    /// The connection URL with its password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates the candle table `table` if it is missing, makes it a hypertable when
    /// TimescaleDB is there, and makes it the table [`PgSink::push`] writes to.
    pub async fn ensure_schema(&mut self, table: &str) -> Result<Hypertable, PgSinkError> {
        let name = TableName::new(table)?;
        self.create_table(&name, &CANDLES).await?;
        let hypertable = self.make_hypertable(&name, "open_time").await?;
        let prepared = self
            .prepare(name, candle_insert_sql, candle_check_sql)
            .await?;
        self.candles = Some(prepared);
        Ok(hypertable)
    }

    /// Creates the fill table `table` if it is missing and makes it the table
    /// [`PgSink::push_fills`] writes to. Never a hypertable (see the module's contract), so
    /// the answer is always [`Hypertable::No`] with the reason.
    pub async fn ensure_fills_schema(&mut self, table: &str) -> Result<Hypertable, PgSinkError> {
        let name = TableName::new(table)?;
        self.create_table(&name, &FILLS).await?;
        let why = if self.timescaledb().await?.0 {
            "TimescaleDB needs the time column in a hypertable's primary key, and a fill's \
             key (session, symbol, trade_id, client_id) does not hold ts"
        } else {
            "TimescaleDB is not installed on the server"
        };
        let prepared = self.prepare(name, fill_insert_sql, fill_check_sql).await?;
        self.fills = Some(prepared);
        Ok(Hypertable::No(why.to_string()))
    }

    async fn create_table(&self, name: &TableName, spec: &TableSpec) -> Result<(), PgSinkError> {
        self.client
            .batch_execute(&spec.create_sql(name))
            .await
            .map_err(|e| self.query_error(&format!("creating table {name}"), &e))?;
        self.check_columns(name, spec).await
    }

    async fn prepare(
        &self,
        name: TableName,
        insert: fn(&TableName) -> String,
        check: fn(&TableName) -> String,
    ) -> Result<Prepared, PgSinkError> {
        let insert = self
            .client
            .prepare(&insert(&name))
            .await
            .map_err(|e| self.query_error(&format!("preparing the insert into {name}"), &e))?;
        let check = self
            .client
            .prepare(&check(&name))
            .await
            .map_err(|e| self.query_error(&format!("preparing the check of {name}"), &e))?;
        Ok(Prepared {
            name,
            insert,
            check,
        })
    }

    /// A table of the same name made by something else would fail later with a puzzling
    /// error; say so now.
    async fn check_columns(&self, name: &TableName, spec: &TableSpec) -> Result<(), PgSinkError> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                 FROM pg_attribute a
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                &[&name.sql()],
            )
            .await
            .map_err(|e| self.query_error(&format!("reading the columns of {name}"), &e))?;
        let columns: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (want, ty) in spec.columns {
            let found = columns.iter().find(|(c, _)| c == want);
            let reason = match found {
                None => format!("it has no column {want}"),
                Some((_, t)) if t != ty => format!("its column {want} is {t}, not {ty}"),
                Some(_) => continue,
            };
            return Err(PgSinkError::WrongTable {
                url: self.url.clone(),
                table: name.to_string(),
                kind: spec.kind,
                reason,
            });
        }
        Ok(())
    }

    /// Whether TimescaleDB is installed in this database, and whether the server has it.
    async fn timescaledb(&self) -> Result<(bool, bool), PgSinkError> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
                        EXISTS (SELECT 1 FROM pg_available_extensions
                                WHERE name = 'timescaledb')",
                &[],
            )
            .await
            .map_err(|e| self.query_error("looking for TimescaleDB", &e))?;
        Ok((row.get(0), row.get(1)))
    }

    async fn make_hypertable(
        &self,
        name: &TableName,
        time_column: &str,
    ) -> Result<Hypertable, PgSinkError> {
        let (installed, available) = self.timescaledb().await?;
        if !installed {
            if !available {
                return Ok(Hypertable::No(
                    "TimescaleDB is not installed on the server".to_string(),
                ));
            }
            // Outside any transaction, so a refusal (not preloaded, no privilege) leaves the
            // session usable.
            if let Err(e) = self
                .client
                .batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                .await
            {
                return Ok(Hypertable::No(format!(
                    "CREATE EXTENSION timescaledb failed: {}",
                    describe(&e)
                )));
            }
        }
        // Simple protocol: create_hypertable returns a record this client need not decode.
        // `'open_time'::name` picks the classic signature over TimescaleDB 2.13's
        // `create_hypertable(regclass, dimension_info)`.
        let sql = format!(
            "SELECT create_hypertable('{}'::regclass, '{time_column}'::name, \
             if_not_exists => TRUE, migrate_data => TRUE)",
            name.sql()
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| self.query_error(&format!("making {name} a hypertable"), &e))?;
        Ok(Hypertable::Yes)
    }

    /// Stores `candles` in the table of the last [`PgSink::ensure_schema`], in one
    /// transaction: either every bar is stored or already present with identical values, or
    /// nothing is written and the first conflicting bar is named.
    pub async fn push(&mut self, candles: &[Candle]) -> Result<PushSummary, PgSinkError> {
        let prepared = self.candles.as_ref().ok_or(PgSinkError::NoTable)?;
        push_rows(
            &mut self.client,
            &self.url,
            prepared,
            candles,
            &Batch::candles,
            candle_conflict,
        )
        .await
    }

    /// Stores `fills` of `session` in the table of the last [`PgSink::ensure_fills_schema`],
    /// with the same all-or-nothing, never-overwrite rule as [`PgSink::push`].
    pub async fn push_fills(
        &mut self,
        session: &str,
        fills: &[Fill],
    ) -> Result<PushSummary, PgSinkError> {
        let prepared = self.fills.as_ref().ok_or(PgSinkError::NoFillsTable)?;
        push_rows(
            &mut self.client,
            &self.url,
            prepared,
            fills,
            &|chunk: &[Fill]| Batch::fills(session, chunk),
            fill_conflict,
        )
        .await
    }

    fn query_error(&self, action: &str, e: &tokio_postgres::Error) -> PgSinkError {
        query_error(&self.url, action, e)
    }
}

/// One transaction storing `rows` in chunks of [`BATCH_ROWS`]; on a short insert count, the
/// first row whose stored values differ becomes the error and the transaction rolls back.
async fn push_rows<T: Sync>(
    client: &mut Client,
    url: &str,
    prepared: &Prepared,
    rows: &[T],
    batch: &(dyn Fn(&[T]) -> Result<Batch, PgSinkError> + Sync),
    conflict: fn(&TableName, &tokio_postgres::Row) -> PgSinkError,
) -> Result<PushSummary, PgSinkError> {
    let name = &prepared.name;
    let tx = client
        .transaction()
        .await
        .map_err(|e| query_error(url, "starting a transaction", &e))?;
    let mut summary = PushSummary::default();
    for chunk in rows.chunks(BATCH_ROWS) {
        let batch = batch(chunk)?;
        let params = batch.params();
        let inserted = tx
            .execute(&prepared.insert, &params)
            .await
            .map_err(|e| query_error(url, &format!("inserting into {name}"), &e))?;
        let sent = chunk.len() as u64;
        if inserted < sent {
            let found = tx
                .query(&prepared.check, &params)
                .await
                .map_err(|e| query_error(url, &format!("comparing with {name}"), &e))?;
            if let Some(row) = found.first() {
                // Dropping `tx` rolls the transaction back.
                return Err(conflict(name, row));
            }
        }
        summary.add(PushSummary {
            sent,
            inserted,
            already_present: sent - inserted,
        });
    }
    tx.commit()
        .await
        .map_err(|e| query_error(url, &format!("committing into {name}"), &e))?;
    Ok(summary)
}

/// Parses `url`, applies `password` when the URL has none, and refuses TLS.
fn parse_url(url: &str, password: Option<&[u8]>) -> Result<Config, PgSinkError> {
    let mut config: Config = url.parse().map_err(|e| PgSinkError::BadUrl {
        url: redact(url),
        reason: describe(&e),
    })?;
    if let (None, Some(p)) = (config.get_password(), password) {
        config.password(p);
    }
    if matches!(config.get_ssl_mode(), SslMode::Require) {
        return Err(PgSinkError::TlsUnsupported {
            url: display_url(&config),
        });
    }
    Ok(config)
}

/// A statement's error, as [`PgSinkError::ConnectionLost`] when the connection is the
/// problem rather than the statement.
fn query_error(url: &str, action: &str, e: &tokio_postgres::Error) -> PgSinkError {
    let (url, action, reason) = (url.to_string(), action.to_string(), describe(e));
    if connection_broke(e) {
        PgSinkError::ConnectionLost {
            url,
            action,
            reason,
        }
    } else {
        PgSinkError::Query {
            url,
            action,
            reason,
        }
    }
}

/// A closed connection, an I/O error, a connection-exception SQLSTATE (class 08), or the
/// server ending the session (an operator's shutdown or restart, a crash of another backend).
fn connection_broke(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
    }
    source_chain(e).any(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// The bars as the columns [`CANDLE_FROM`] reads.
const CANDLE_FROM: &str = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                           $6::text[], $7::text[], $8::text[]) AS b(s, i, t, o, h, l, c, v)";

fn candle_insert_sql(table: &TableName) -> String {
    format!(
        "INSERT INTO {} (symbol, \"interval\", open_time, open, high, low, close, volume)
         SELECT s, i, t::timestamptz, o::numeric, h::numeric, l::numeric, c::numeric, v::numeric
         FROM {CANDLE_FROM}
         ON CONFLICT (symbol, \"interval\", open_time) DO NOTHING",
        table.sql()
    )
}

/// The batch's bars whose stored row differs, earliest first, with how many there are.
fn candle_check_sql(table: &TableName) -> String {
    format!(
        "SELECT b.s, b.i, b.t, count(*) OVER (),
                x.open::text, x.high::text, x.low::text, x.close::text, x.volume::text,
                b.o, b.h, b.l, b.c, b.v
         FROM {CANDLE_FROM}
         JOIN {} x ON x.symbol = b.s AND x.\"interval\" = b.i AND x.open_time = b.t::timestamptz
         WHERE (x.open, x.high, x.low, x.close, x.volume) IS DISTINCT FROM
               (b.o::numeric, b.h::numeric, b.l::numeric, b.c::numeric, b.v::numeric)
         ORDER BY x.open_time
         LIMIT {CONFLICTS_SHOWN}",
        table.sql()
    )
}

/// The fills as the columns [`FILL_FROM`] reads: session, client id, venue order id, trade
/// id, symbol, side, price, quantity, fee, liquidity, time.
const FILL_FROM: &str = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], \
                         $11::text[]) AS b(se, ci, vo, ti, sy, sd, p, q, f, lq, t)";

/// A time as the conflict message shows it, microseconds always written.
const TS_TEXT: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'";

fn fill_insert_sql(table: &TableName) -> String {
    format!(
        "INSERT INTO {} (session, client_id, venue_order_id, trade_id, symbol, side, price, \
                         qty, fee, liquidity, ts)
         SELECT se, ci::bigint, vo::bigint, ti::bigint, sy, sd, p::numeric, q::numeric,
                f::numeric, lq, t::timestamptz
         FROM {FILL_FROM}
         ON CONFLICT (session, symbol, trade_id, client_id) DO NOTHING",
        table.sql()
    )
}

/// The batch's fills whose stored row differs, earliest first, with how many there are.
fn fill_check_sql(table: &TableName) -> String {
    format!(
        "SELECT b.se, b.sy, b.ti, b.ci, count(*) OVER (),
                x.venue_order_id::text, x.side, x.price::text, x.qty::text, x.fee::text,
                x.liquidity, to_char(x.ts AT TIME ZONE 'UTC', {TS_TEXT}),
                b.vo, b.sd, b.p, b.q, b.f, b.lq,
                to_char(b.t::timestamptz AT TIME ZONE 'UTC', {TS_TEXT})
         FROM {FILL_FROM}
         JOIN {} x ON x.session = b.se AND x.symbol = b.sy AND x.trade_id = b.ti::bigint
                  AND x.client_id = b.ci::bigint
         WHERE (x.venue_order_id, x.side, x.price, x.qty, x.fee, x.liquidity, x.ts)
               IS DISTINCT FROM
               (b.vo::bigint, b.sd, b.p::numeric, b.q::numeric, b.f::numeric, b.lq,
                b.t::timestamptz)
         ORDER BY x.ts, x.trade_id, x.client_id
         LIMIT {CONFLICTS_SHOWN}",
        table.sql()
    )
}

/// One statement's worth of rows as text arrays, one per column.
struct Batch {
    columns: Vec<Vec<String>>,
}

impl Batch {
    fn candles(candles: &[Candle]) -> Result<Batch, PgSinkError> {
        let mut columns = vec![Vec::with_capacity(candles.len()); CANDLES.columns.len()];
        for c in candles {
            if c.open_time_ns % 1_000 != 0 {
                return Err(PgSinkError::SubMicrosecond {
                    symbol: c.symbol.to_string(),
                    time_ns: c.open_time_ns,
                });
            }
            let values = [
                c.symbol.to_string(),
                Interval { ns: c.interval_ns }.name(),
                iso8601(c.open_time_ns),
                c.open.to_string(),
                c.high.to_string(),
                c.low.to_string(),
                c.close.to_string(),
                c.volume.to_string(),
            ];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
        Ok(Batch { columns })
    }

    fn fills(session: &str, fills: &[Fill]) -> Result<Batch, PgSinkError> {
        let mut columns = vec![Vec::with_capacity(fills.len()); FILLS.columns.len()];
        for f in fills {
            let id = |field: &'static str, value: u64| {
                i64::try_from(value)
                    .map(|v| v.to_string())
                    .map_err(|_| PgSinkError::IdOutOfRange {
                        symbol: f.symbol.to_string(),
                        trade_id: f.trade_id,
                        field,
                        value,
                    })
            };
            let liquidity = match f.liquidity {
                Liquidity::Maker => "maker",
                Liquidity::Taker => "taker",
            };
            let values = [
                session.to_string(),
                id("client_id", f.client_id)?,
                id("venue_order_id", f.venue_order_id)?,
                id("trade_id", f.trade_id)?,
                f.symbol.to_string(),
                f.side.as_str().to_string(),
                f.price.to_string(),
                f.qty.to_string(),
                f.fee.to_string(),
                liquidity.to_string(),
                // Truncated to what timestamptz holds; see the module's contract.
                iso8601(f.ts_event_ns.div_euclid(1_000) * 1_000),
            ];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
        Ok(Batch { columns })
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.columns
            .iter()
            .map(|c| c as &(dyn ToSql + Sync))
            .collect()
    }
}

/// `close: stored 1, pushed 46377` for each of `names` whose stored value (read from column
/// `first` on) differs from the pushed one (the columns right after the stored ones).
fn differences(row: &tokio_postgres::Row, first: usize, names: &[&str]) -> String {
    let diff: Vec<String> = names
        .iter()
        .enumerate()
        .filter_map(|(k, name)| {
            let stored: String = row.get(first + k);
            let pushed: String = row.get(first + names.len() + k);
            // Stored values print as numeric(38,8) text (`46377.00000000`); show them as
            // keel does when they fit in a Fixed.
            let stored = Fixed::parse(&stored).map_or(stored, |v| v.to_string());
            (stored != pushed).then(|| format!("{name}: stored {stored}, pushed {pushed}"))
        })
        .collect();
    diff.join(", ")
}

fn more_conflicts(count: i64, what: &str) -> String {
    let more = count - CONFLICTS_SHOWN;
    if more > 0 {
        format!("; {more} more {what} of the same batch conflict too")
    } else {
        String::new()
    }
}

fn candle_conflict(table: &TableName, row: &tokio_postgres::Row) -> PgSinkError {
    PgSinkError::Conflict(Box::new(Conflict {
        table: table.to_string(),
        symbol: row.get(0),
        interval: row.get(1),
        time: row.get(2),
        diff: differences(row, 4, &["open", "high", "low", "close", "volume"]),
        more: more_conflicts(row.get(3), "bars"),
    }))
}

fn fill_conflict(table: &TableName, row: &tokio_postgres::Row) -> PgSinkError {
    let names = [
        "venue_order_id",
        "side",
        "price",
        "qty",
        "fee",
        "liquidity",
        "ts",
    ];
    PgSinkError::FillConflict(Box::new(FillConflict {
        table: table.to_string(),
        session: row.get(0),
        symbol: row.get(1),
        trade_id: row.get(2),
        client_id: row.get(3),
        diff: differences(row, 5, &names),
        more: more_conflicts(row.get(4), "fills"),
    }))
}

fn connect_error(e: &tokio_postgres::Error, config: &Config, url: &str) -> PgSinkError {
    let url = url.to_string();
    let reason = sanitize(&describe(e), config.get_password());
    let code = e.as_db_error().map(|db| db.code());
    if code == Some(&SqlState::INVALID_PASSWORD)
        || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    {
        return PgSinkError::Auth { url, reason };
    }
    if reason.contains("password missing") {
        return PgSinkError::Auth {
            url,
            reason: "the server asks for a password and none was given (put it in the URL, \
                     or in PGPASSWORD for `keel data push`)"
                .to_string(),
        };
    }
    let refused = source_chain(e).any(|s| {
        s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    let reason = if refused {
        format!("{reason} (is PostgreSQL running and listening there?)")
    } else {
        reason
    };
    PgSinkError::Connect { url, reason }
}

fn source_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}

/// The server's own words for a database error (`FATAL: password authentication failed for
/// user "keel" (SQLSTATE 28P01)`), else the error and its causes.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str("; ");
            text.push_str(detail);
        }
        if let Some(hint) = db.hint() {
            text.push_str("; hint: ");
            text.push_str(hint);
        }
        return text;
    }
    source_chain(e)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// Belt and braces: no error text from the server or the driver is known to echo the
/// password, but if one ever did, it is hidden here.
fn sanitize(text: &str, password: Option<&[u8]>) -> String {
    match password.and_then(|p| std::str::from_utf8(p).ok()) {
        Some(p) if p.len() >= 3 => text.replace(p, "***"),
        _ => text.to_string(),
    }
}

/// `postgres://user:***@host:port/db` from a parsed configuration (`***` only when it has a
/// password).
fn display_url(config: &Config) -> String {
    let mut url = String::from("postgres://");
    if let Some(user) = config.get_user() {
        url.push_str(user);
        if config.get_password().is_some() {
            url.push_str(":***");
        }
        url.push('@');
    }
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(k, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string().replace('/', "%2F"),
            };
            match ports.get(k).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    url.push_str(&hosts.join(","));
    if let Some(db) = config.get_dbname() {
        url.push('/');
        url.push_str(db);
    }
    url
}

/// `url` with any password replaced by `***`, without parsing it (it may not parse): the
/// user-info part of `scheme://user:password@host` up to the last `@`, and every
/// `password=value` (URL query or libpq key-value form). It may hide more than the password
/// when an `@` appears later in the URL, never less.
pub fn redact(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match (rest.rfind('@'), rest.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                format!("{scheme}://{}:***{}", &rest[..colon], &rest[at..])
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    };
    let mut from = 0;
    while let Some(pos) = out[from..].find("password") {
        let key_end = from + pos + "password".len();
        let after = out[key_end..].trim_start();
        let Some(value) = after.strip_prefix('=') else {
            from = key_end;
            continue;
        };
        let value = value.trim_start();
        let start = out.len() - value.len();
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            // libpq quoting: backslash escapes, a closing quote ends it.
            let mut end = quoted.len();
            let mut escaped = false;
            for (k, ch) in quoted.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = k + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            1 + end
        } else {
            value
                .find(|c: char| c == '&' || c.is_whitespace())
                .unwrap_or(value.len())
        };
        out.replace_range(start..start + len, "***");
        from = start + 3;
    }
    out
}

/// The command-line arguments of `keel data push`.
#[derive(Clone, Debug, clap::Args)]
pub struct PushArgs {
    /// postgres://USER[:PASSWORD]@HOST:PORT/DATABASE (no TLS yet: loopback or a Unix socket,
    /// e.g. postgres://keel@%2Fvar%2Frun%2Fpostgresql/keel). Without a password in the URL,
    /// PGPASSWORD is used.
    #[arg(long = "postgres", value_name = "URL")]
    pub postgres: String,
    /// Candle store directory.
    #[arg(long)]
    pub store: PathBuf,
    #[arg(long)]
    pub symbol: String,
    #[arg(long)]
    pub interval: String,
    /// First bar (inclusive): 2022-01-01 or 2022-01-01T12:00:00Z.
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// Table to create (if missing) and fill: letters, digits and underscores.
    #[arg(long, default_value = "candles")]
    pub table: String,
}

/// What `keel data push` did.
#[derive(Clone, Debug)]
pub struct PushReport {
    pub url: String,
    pub table: TableName,
    pub series: String,
    pub first_ns: i64,
    pub last_ns: i64,
    pub pushed: PushSummary,
    pub hypertable: Hypertable,
    pub elapsed: Duration,
}

impl fmt::Display for PushReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pushed {} to table {} at {}",
            self.series, self.table, self.url
        )?;
        writeln!(
            f,
            "  bars sent: {} (opening {} to {})",
            self.pushed.sent,
            iso8601(self.first_ns),
            iso8601(self.last_ns)
        )?;
        writeln!(f, "  inserted: {}", self.pushed.inserted)?;
        writeln!(f, "  already present: {}", self.pushed.already_present)?;
        writeln!(f, "  hypertable: {}", self.hypertable)?;
        writeln!(f, "  time: {:.2} s", self.elapsed.as_secs_f64())
    }
}

/// `keel data push`.
pub fn run_cli(args: &PushArgs) -> Result<ExitCode> {
    let password = std::env::var("PGPASSWORD").ok();
    let report = push_series(args, password.as_deref())?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Reads one stored series (limited to `[from, to)`) and pushes it in batches of
/// [`BATCH_ROWS`] bars, each batch its own transaction.
pub fn push_series(args: &PushArgs, password: Option<&str>) -> Result<PushReport> {
    let started = Instant::now();
    // Everything that needs no server is checked before connecting.
    let table = TableName::new(&args.table).map_err(|e| anyhow!("--table: {e}"))?;
    let symbol = Symbol::new(&args.symbol).map_err(|e| anyhow!("--symbol: {e}"))?;
    let interval = Interval::parse(&args.interval).map_err(|e| anyhow!("--interval: {e}"))?;
    let bound = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_time(t).with_context(|| format!("{flag} {t}")))
            .transpose()
    };
    let from = bound("--from", &args.from)?;
    let to = bound("--to", &args.to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        bail!(
            "--from {} is not before --to {} (--to is exclusive)",
            iso8601(f),
            iso8601(t)
        );
    }
    let series = format!("{symbol} {}", interval.name());
    let store = args.store.display();
    let mut cursor = match CandleCursor::open(&args.store, symbol, interval, from, to) {
        Ok(cursor) => cursor,
        // Already names the store, symbol, interval and the expected directory.
        Err(e @ StoreError::Missing { .. }) => return Err(e.into()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("reading {series} from store {store}"))
            );
        }
    };
    let what = format!("reading {series} from store {store}");
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    fill(&mut cursor, &mut batch).context(what.clone())?;
    let Some(first_ns) = batch.first().map(|c| c.open_time_ns) else {
        let range = match (from, to) {
            (None, None) => "the whole series".to_string(),
            (f, t) => format!(
                "[{}, {})",
                f.map_or("start".to_string(), iso8601),
                t.map_or("end".to_string(), iso8601)
            ),
        };
        bail!("no bars of {series} in {range} in store {store}");
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(async {
        let mut sink =
            PgSink::connect_with_password(&args.postgres, password.map(str::as_bytes)).await?;
        let hypertable = sink.ensure_schema(table.as_str()).await?;
        let mut pushed = PushSummary::default();
        let mut last_ns = first_ns;
        while let Some(last) = batch.last() {
            last_ns = last.open_time_ns;
            match sink.push(&batch).await {
                Ok(done) => pushed.add(done),
                Err(e) => {
                    let earlier = if pushed.sent == 0 {
                        String::new()
                    } else {
                        format!(
                            " (the {} bars before this batch of {} were pushed and stay; \
                             re-running the push is idempotent)",
                            pushed.sent,
                            batch.len()
                        )
                    };
                    let at = sink.url();
                    return Err(anyhow::Error::new(e).context(format!(
                        "pushing {series} to table {table} at {at}{earlier}"
                    )));
                }
            }
            fill(&mut cursor, &mut batch).context(what.clone())?;
        }
        Ok(PushReport {
            url: sink.url().to_string(),
            table,
            series,
            first_ns,
            last_ns,
            pushed,
            hypertable,
            elapsed: started.elapsed(),
        })
    })
}

/// Replaces `batch` with the cursor's next (up to) [`BATCH_ROWS`] bars.
fn fill(cursor: &mut CandleCursor, batch: &mut Vec<Candle>) -> Result<(), StoreError> {
    batch.clear();
    while batch.len() < BATCH_ROWS {
        match cursor.next_candle()? {
            Some(c) => batch.push(c),
            None => break,
        }
    }
    Ok(())
}

// The session sink: a session's candles and fills, as they happen.
//
// Rows cross from the engine thread to a tokio task through a bounded channel (`try_send`, so
// the engine never waits); the task gathers them into one batch of candles and one of fills
// and writes a batch when it is full or when `flush_every` has passed. A batch leaves memory
// only once PostgreSQL has committed it, so a batch cut short by a lost connection (or by a
// cancelled shutdown) is simply sent again on the next connection: rows that made it count as
// already present. Memory is bounded by the queue plus two batches.

/// Default of [`SessionSinkConfig::batch_max`].
pub const SESSION_BATCH_MAX: usize = 500;
/// Default of [`SessionSinkConfig::flush_every`].
pub const SESSION_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Default of [`SessionSinkConfig::queue`].
pub const SESSION_QUEUE: usize = 65_536;
/// Shortest [`SessionSinkConfig::flush_every`] honoured, so an idle sink does not spin.
const FLUSH_EVERY_MIN: Duration = Duration::from_millis(1);
/// Wait before the first reconnection after a failure; it doubles with each further failure
/// up to [`RECONNECT_DELAY_MAX`], and is cleared by a successful write.
const RECONNECT_DELAY_MIN: Duration = Duration::from_millis(100);
const RECONNECT_DELAY_MAX: Duration = Duration::from_secs(5);
/// Attempts at a batch the server refuses with an error that is neither a lost connection nor
/// a row it can never take (say, a permission withdrawn), each on a new connection, before the
/// batch's rows are rejected.
const SERVER_ERROR_ATTEMPTS: u32 = 3;
/// How long [`SessionSinkTask::shutdown`] waits past its grace for the task to end.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(1);

/// Where a session's candles and fills go, and how they are batched.
#[derive(Clone)]
pub struct SessionSinkConfig {
    /// As for [`PgSink::connect`].
    pub url: String,
    /// Used when the URL has none.
    pub password: Option<String>,
    pub candles_table: String,
    pub fills_table: String,
    /// The `session` column of every fill.
    pub session: String,
    /// Rows in one INSERT: a batch is written once it holds this many rows (at least 1)...
    pub batch_max: usize,
    /// ...or this long after the last write, whichever comes first.
    pub flush_every: Duration,
    /// Rows waiting for the writer, at most (at least 1); rows beyond are dropped and counted.
    pub queue: usize,
}

impl SessionSinkConfig {
    /// Tables `candles` (as `keel data push` defaults to) and `fills`, default batching.
    pub fn new(url: impl Into<String>, session: impl Into<String>) -> SessionSinkConfig {
        SessionSinkConfig {
            url: url.into(),
            password: None,
            candles_table: "candles".to_string(),
            fills_table: "fills".to_string(),
            session: session.into(),
            batch_max: SESSION_BATCH_MAX,
            flush_every: SESSION_FLUSH_EVERY,
            queue: SESSION_QUEUE,
        }
    }

    /// What can be checked without a server: the URL, TLS, the table names. A sink spawned
    /// with a configuration that fails this writes nothing and reports why in its stats, so
    /// check it before a session starts.
    pub fn validate(&self) -> Result<(), PgSinkError> {
        parse_url(&self.url, None)?;
        TableName::new(&self.candles_table)?;
        TableName::new(&self.fills_table)?;
        Ok(())
    }
}

/// Never shows the password.
impl fmt::Debug for SessionSinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSinkConfig")
            .field("url", &redact(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("candles_table", &self.candles_table)
            .field("fills_table", &self.fills_table)
            .field("session", &self.session)
            .field("batch_max", &self.batch_max)
            .field("flush_every", &self.flush_every)
            .field("queue", &self.queue)
            .finish()
    }
}

/// What a session sink has done so far. Each row given to [`SessionSink::candle`] or
/// [`SessionSink::fill`] is counted once in `candles_written` or `fills_written`, `dropped` or
/// `rejected` as soon as its fate is known, and until then it is queued or in a batch being
/// written.
///
/// Dropped and rejected rows are missing from PostgreSQL, never from the session's journal:
/// re-pushing them fills the gap, candles with `keel data push` and fills with
/// [`PgSink::push_fills`], and rows already there count as present, so a re-push of a whole
/// range is safe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Rows now in their table: inserted, or already there with identical values.
    pub candles_written: u64,
    pub fills_written: u64,
    /// Rows never written: the queue was full (PostgreSQL slow or unreachable for longer than
    /// the queue lasts), the sink was shut down, or shutdown's grace ran out.
    pub dropped: u64,
    /// Rows PostgreSQL would not take: a conflict with the stored row, a time or id it cannot
    /// hold, an error that outlasted [`SERVER_ERROR_ATTEMPTS`] tries, or a configuration that
    /// cannot work ([`SessionSinkConfig::validate`]).
    pub rejected: u64,
    /// Failures so far: connection attempts, lost connections, refused batches and rows.
    pub errors: u64,
    /// The latest failure, its URL's password shown as `***`.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    candles_written: AtomicU64,
    fills_written: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `text` must already be free of secrets.
    fn record(&self, text: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        // A poisoned lock only means a panic elsewhere mid-assignment of an Option<String>.
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }

    fn snapshot(&self) -> SinkStats {
        SinkStats {
            candles_written: self.candles_written.load(Ordering::Relaxed),
            fills_written: self.fills_written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

enum Row {
    Candle(Candle),
    Fill(Fill),
}

/// The session's side of the sink: hand it rows from any thread; it never blocks.
#[derive(Clone)]
pub struct SessionSink {
    queue: mpsc::Sender<Row>,
    shared: Arc<Shared>,
}

impl SessionSink {
    /// Queues a closed bar. Never blocks: false, and the bar counted as dropped, when the
    /// queue is full or the sink has been shut down.
    pub fn candle(&self, candle: &Candle) -> bool {
        self.offer(Row::Candle(*candle))
    }

    /// Queues a fill, as [`SessionSink::candle`] does a bar.
    pub fn fill(&self, fill: &Fill) -> bool {
        self.offer(Row::Fill(*fill))
    }

    pub fn stats(&self) -> SinkStats {
        self.shared.snapshot()
    }

    fn offer(&self, row: Row) -> bool {
        let queued = self.queue.try_send(row).is_ok();
        if !queued {
            Shared::add(&self.shared.dropped, 1);
        }
        queued
    }
}

/// The writing task of a session sink. Dropping it without [`SessionSinkTask::shutdown`]
/// leaves the task running until every [`SessionSink`] clone is dropped and all it was given
/// is written.
pub struct SessionSinkTask {
    stop: oneshot::Sender<tokio::time::Instant>,
    join: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
}

impl SessionSinkTask {
    pub fn stats(&self) -> SinkStats {
        self.shared.snapshot()
    }

    /// Stops taking rows (later ones count as dropped), writes what is queued, and returns
    /// the final counts. Rows still unwritten when `grace` runs out, because PostgreSQL is down
    /// or slow, count as dropped.
    pub async fn shutdown(self, grace: Duration) -> SinkStats {
        let SessionSinkTask {
            stop,
            mut join,
            shared,
        } = self;
        let deadline = tokio::time::Instant::now() + grace;
        // Refused when the task has ended already: every sink was dropped and all written.
        let _ = stop.send(deadline);
        match tokio::time::timeout_at(deadline + SHUTDOWN_SLACK, &mut join).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => shared.record(format!("the PostgreSQL session sink failed: {e}")),
            Err(_) => {
                join.abort();
                shared.record(
                    "the PostgreSQL session sink did not stop within its grace; the rows it \
                     held are not counted"
                        .to_string(),
                );
            }
        }
        shared.snapshot()
    }
}

/// Starts the writing task of a session's sink on `handle`. It connects (again and again,
/// with a growing pause, while the server is unreachable), creates both tables if they are
/// missing, and writes rows in batches; see [`SinkStats`] for what becomes of each row.
pub fn spawn_session_sink(
    config: SessionSinkConfig,
    handle: &tokio::runtime::Handle,
) -> (SessionSink, SessionSinkTask) {
    let (queue, rows) = mpsc::channel(config.queue.max(1));
    let (stop, stopped) = oneshot::channel();
    let shared = Arc::new(Shared::default());
    let pacing = Pacing {
        batch_max: config.batch_max.max(1),
        flush_every: config.flush_every.max(FLUSH_EVERY_MIN),
    };
    let writer = Writer::new(config, shared.clone());
    let join = handle.spawn(run(writer, rows, stopped, pacing));
    let sink = SessionSink {
        queue,
        shared: shared.clone(),
    };
    (sink, SessionSinkTask { stop, join, shared })
}

#[derive(Clone, Copy)]
struct Pacing {
    batch_max: usize,
    flush_every: Duration,
}

async fn run(
    mut writer: Writer,
    mut rows: mpsc::Receiver<Row>,
    mut stopped: oneshot::Receiver<tokio::time::Instant>,
    pacing: Pacing,
) {
    let mut pending = Pending::default();
    // A dropped SessionSinkTask disables the first branch: the task then runs on detached.
    let deadline = tokio::select! {
        Ok(deadline) = &mut stopped => deadline,
        () = writer.collect(&mut rows, &mut pending, pacing) => return,
    };
    // Cancelling `collect` is safe: rows leave `pending` only once committed.
    rows.close();
    let drain = writer.drain(&mut rows, &mut pending, pacing.batch_max);
    if tokio::time::timeout_at(deadline, drain).await.is_err() {
        writer.abandon(&mut rows, &mut pending);
    }
}

/// The two batches being gathered.
#[derive(Default)]
struct Pending {
    candles: Vec<Candle>,
    fills: Vec<Fill>,
}

impl Pending {
    fn push(&mut self, row: Row) {
        match row {
            Row::Candle(c) => self.candles.push(c),
            Row::Fill(f) => self.fills.push(f),
        }
    }

    fn full(&self, batch_max: usize) -> bool {
        self.candles.len() >= batch_max || self.fills.len() >= batch_max
    }
}

/// Candles and fills, written the same way.
trait SinkRow: Copy + Send + Sync + 'static {
    fn written(shared: &Shared) -> &AtomicU64;
    fn push<'a>(
        sink: &'a mut PgSink,
        session: &'a str,
        rows: &'a [Self],
    ) -> impl Future<Output = Result<PushSummary, PgSinkError>> + Send + 'a;
}

impl SinkRow for Candle {
    fn written(shared: &Shared) -> &AtomicU64 {
        &shared.candles_written
    }

    fn push<'a>(
        sink: &'a mut PgSink,
        _session: &'a str,
        rows: &'a [Candle],
    ) -> impl Future<Output = Result<PushSummary, PgSinkError>> + Send + 'a {
        sink.push(rows)
    }
}

impl SinkRow for Fill {
    fn written(shared: &Shared) -> &AtomicU64 {
        &shared.fills_written
    }

    fn push<'a>(
        sink: &'a mut PgSink,
        session: &'a str,
        rows: &'a [Fill],
    ) -> impl Future<Output = Result<PushSummary, PgSinkError>> + Send + 'a {
        sink.push_fills(session, rows)
    }
}

struct Writer {
    config: SessionSinkConfig,
    /// Passwords (the configuration's and the URL's) hidden from every recorded error.
    secrets: Vec<String>,
    shared: Arc<Shared>,
    sink: Option<PgSink>,
    /// Pause before the next connection attempt.
    retry_delay: Duration,
}

impl Writer {
    fn new(config: SessionSinkConfig, shared: Arc<Shared>) -> Writer {
        let in_url = config.url.parse::<Config>().ok().and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        });
        let secrets = config.password.iter().cloned().chain(in_url).collect();
        Writer {
            config,
            secrets,
            shared,
            sink: None,
            retry_delay: Duration::ZERO,
        }
    }

    /// Gathers rows until every [`SessionSink`] is dropped, writing a batch when one is full
    /// or `flush_every` has passed; returns once all of them are written.
    async fn collect(
        &mut self,
        rows: &mut mpsc::Receiver<Row>,
        pending: &mut Pending,
        pacing: Pacing,
    ) {
        // Right away, so the tables exist and a wrong setting shows in the stats early.
        if let Err(e) = self.connect().await {
            self.record(&e);
        }
        let mut next_flush = tokio::time::Instant::now() + pacing.flush_every;
        loop {
            if pending.full(pacing.batch_max) {
                self.flush(pending).await;
                next_flush = tokio::time::Instant::now() + pacing.flush_every;
                continue;
            }
            tokio::select! {
                row = rows.recv() => match row {
                    Some(row) => pending.push(row),
                    None => {
                        self.flush(pending).await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(next_flush) => {
                    self.flush(pending).await;
                    next_flush = tokio::time::Instant::now() + pacing.flush_every;
                }
            }
        }
    }

    /// Writes everything queued and pending; the queue must be closed.
    async fn drain(
        &mut self,
        rows: &mut mpsc::Receiver<Row>,
        pending: &mut Pending,
        batch_max: usize,
    ) {
        while let Some(row) = rows.recv().await {
            pending.push(row);
            if pending.full(batch_max) {
                self.flush(pending).await;
            }
        }
        self.flush(pending).await;
    }

    /// Counts what is still pending or queued as dropped.
    fn abandon(&self, rows: &mut mpsc::Receiver<Row>, pending: &mut Pending) {
        let mut left = pending.candles.len() + pending.fills.len();
        pending.candles.clear();
        pending.fills.clear();
        while rows.try_recv().is_ok() {
            left += 1;
        }
        if left > 0 {
            Shared::add(&self.shared.dropped, left);
            self.shared.record(format!(
                "shutdown's grace ran out with {left} rows not written to PostgreSQL; the \
                 journal has them"
            ));
        }
    }

    async fn flush(&mut self, pending: &mut Pending) {
        self.write(&mut pending.candles).await;
        self.write(&mut pending.fills).await;
    }

    /// Writes `rows` and empties it, counting each row written or rejected. A batch the server
    /// refuses because of a row it will never take is written row by row, so only that row is
    /// lost.
    async fn write<T: SinkRow>(&mut self, rows: &mut Vec<T>) {
        if rows.is_empty() {
            return;
        }
        match self.store(rows).await {
            Ok(()) => Shared::add(T::written(&self.shared), rows.len()),
            Err(e) if e.is_row_problem() && rows.len() > 1 => {
                // Popped only once settled, so a cancelled write neither loses nor recounts.
                while let Some(&row) = rows.last() {
                    match self.store(std::slice::from_ref(&row)).await {
                        Ok(()) => Shared::add(T::written(&self.shared), 1),
                        Err(e) => self.reject(&e, 1),
                    }
                    rows.pop();
                }
            }
            Err(e) => self.reject(&e, rows.len()),
        }
        rows.clear();
    }

    /// Stores `rows` in one transaction, reconnecting and re-sending as long as the connection
    /// is the problem. Gives up on a row problem, a configuration problem, or a server error
    /// that outlasts [`SERVER_ERROR_ATTEMPTS`].
    async fn store<T: SinkRow>(&mut self, rows: &[T]) -> Result<(), PgSinkError> {
        let mut server_errors = 0;
        loop {
            self.connect().await?;
            let Some(sink) = self.sink.as_mut() else {
                continue;
            };
            let e = match T::push(sink, &self.config.session, rows).await {
                Ok(_) => {
                    self.retry_delay = Duration::ZERO;
                    return Ok(());
                }
                Err(e) if e.is_row_problem() => return Err(e),
                Err(e) => e,
            };
            // Re-sending on a new connection is safe: whatever was committed before the
            // failure counts as already present.
            self.sink = None;
            self.back_off();
            if !e.is_connection_problem() {
                server_errors += 1;
                if server_errors >= SERVER_ERROR_ATTEMPTS {
                    return Err(e);
                }
            }
            self.record(&e);
        }
    }

    /// Connects and ensures both tables unless connected already, retrying with a growing
    /// pause; only a configuration that can never work ends the attempts.
    async fn connect(&mut self) -> Result<(), PgSinkError> {
        while self.sink.is_none() {
            if !self.retry_delay.is_zero() {
                tokio::time::sleep(self.retry_delay).await;
            }
            match self.open().await {
                Ok(sink) => self.sink = Some(sink),
                Err(e) if e.is_config_problem() => return Err(e),
                Err(e) => {
                    self.record(&e);
                    self.back_off();
                }
            }
        }
        Ok(())
    }

    async fn open(&self) -> Result<PgSink, PgSinkError> {
        // Before connecting, so a bad table name is not hidden behind an unreachable server.
        self.config.validate()?;
        let password = self.config.password.as_deref().map(str::as_bytes);
        let mut sink = PgSink::connect_with_password(&self.config.url, password).await?;
        sink.ensure_schema(&self.config.candles_table).await?;
        sink.ensure_fills_schema(&self.config.fills_table).await?;
        Ok(sink)
    }

    fn back_off(&mut self) {
        self.retry_delay = (self.retry_delay * 2).clamp(RECONNECT_DELAY_MIN, RECONNECT_DELAY_MAX);
    }

    fn reject(&self, e: &PgSinkError, rows: usize) {
        Shared::add(&self.shared.rejected, rows);
        self.record(e);
    }

    fn record(&self, e: &PgSinkError) {
        let text = self
            .secrets
            .iter()
            .fold(e.to_string(), |text, s| sanitize(&text, Some(s.as_bytes())));
        self.shared.record(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers_folded_to_lower_case() {
        assert_eq!(TableName::new("Candles_1m").unwrap().as_str(), "candles_1m");
        assert_eq!(TableName::new("_t9").unwrap().sql(), "\"_t9\"");
        for bad in [
            "",
            "1candles",
            "candles; drop table x",
            "a\"b",
            "public.candles",
            "naïve",
            &"x".repeat(64),
        ] {
            assert!(TableName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redact_hides_passwords_in_every_form() {
        let cases = [
            (
                "postgres://keel:s3cret@127.0.0.1:5432/db",
                "postgres://keel:***@127.0.0.1:5432/db",
            ),
            (
                "postgresql://keel:p@ss:w/rd@host/db",
                "postgresql://keel:***@host/db",
            ),
            ("postgres://keel@host/db", "postgres://keel@host/db"),
            (
                "postgres://host/db?user=keel&password=s3cret&sslmode=disable",
                "postgres://host/db?user=keel&password=***&sslmode=disable",
            ),
            (
                "host=localhost password = 's3 cr\\'et' user=keel",
                "host=localhost password = *** user=keel",
            ),
            ("host=h password=s3cret", "host=h password=***"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn fill_times_are_truncated_to_the_microsecond_and_ids_beyond_bigint_are_refused() {
        let fill = Fill {
            client_id: 7,
            venue_order_id: i64::MAX as u64,
            trade_id: 9,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            side: keel_engine::event::Side::Sell,
            price: Fixed::from_raw(-1),
            qty: Fixed::ONE,
            fee: Fixed::ZERO,
            liquidity: Liquidity::Maker,
            ts_event_ns: 1_714_521_600_123_456_789,
        };
        let batch = Batch::fills("s", &[fill]).unwrap();
        let row: Vec<&str> = batch.columns.iter().map(|c| c[0].as_str()).collect();
        assert_eq!(
            row,
            [
                "s",
                "7",
                "9223372036854775807",
                "9",
                "BTCUSDT",
                "sell",
                "-0.00000001",
                "1",
                "0",
                "maker",
                "2024-05-01T00:00:00.123456Z"
            ]
        );
        let too_big = Fill {
            client_id: i64::MAX as u64 + 1,
            ..fill
        };
        let e = Batch::fills("s", &[too_big]).err().unwrap();
        assert!(e.is_row_problem());
        assert!(
            e.to_string()
                .contains("client_id 9223372036854775808 is above"),
            "{e}"
        );
    }

    #[test]
    fn the_reconnection_pause_doubles_up_to_its_cap() {
        let config = SessionSinkConfig::new("postgres://keel:pw@127.0.0.1:1/db", "s");
        let mut writer = Writer::new(config, Arc::default());
        let mut pauses = Vec::new();
        for _ in 0..8 {
            writer.back_off();
            pauses.push(writer.retry_delay.as_millis());
        }
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn tables_are_created_with_quoted_columns_and_their_primary_key() {
        let name = TableName::new("Fills").unwrap();
        let sql = FILLS.create_sql(&name);
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS \"fills\" (\"session\" text NOT NULL, "),
            "{sql}"
        );
        assert!(
            sql.contains("\"ts\" timestamp with time zone NOT NULL"),
            "{sql}"
        );
        assert!(
            sql.ends_with("PRIMARY KEY (\"session\", \"symbol\", \"trade_id\", \"client_id\"))"),
            "{sql}"
        );
    }

    #[test]
    fn a_session_sink_config_never_shows_its_passwords() {
        let config = SessionSinkConfig {
            password: Some("An0therSecret".to_string()),
            ..SessionSinkConfig::new("postgres://keel:s3cret@127.0.0.1:5432/db", "s")
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("An0therSecret"),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://keel:***@127.0.0.1:5432/db"),
            "{shown}"
        );
    }

    #[test]
    fn display_url_shows_stars_only_for_a_password() {
        let with: Config = "postgres://keel:s3cret@127.0.0.1:54329/db".parse().unwrap();
        assert_eq!(display_url(&with), "postgres://keel:***@127.0.0.1:54329/db");
        let without: Config = "host=/run/pg user=keel dbname=db".parse().unwrap();
        assert_eq!(display_url(&without), "postgres://keel@%2Frun%2Fpg/db");
    }
}
