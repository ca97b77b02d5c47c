//! A sink of candles into PostgreSQL (a TimescaleDB hypertable when the server has the
//! extension), and `keel data push`, which feeds it from the candle store.
//!
//! Contract:
//! - [`PgSink::ensure_schema`] creates the table if it is missing:
//!   `(symbol text, interval text, open_time timestamptz, open, high, low, close, volume
//!   numeric(38,8))`, primary key `(symbol, interval, open_time)`. When TimescaleDB is
//!   installed in the database, or `CREATE EXTENSION timescaledb` succeeds, the table becomes a
//!   hypertable on `open_time`; without it the table stays a plain one (never an error).
//! - [`PgSink::push`] never overwrites: a bar whose row is already there with identical values
//!   counts as already present; one whose row holds different values is an error naming the
//!   bar and the differing fields, and nothing from that `push` call is written (each call is
//!   one transaction).
//! - Decimals go over the wire as `Fixed`'s exact decimal text and are cast to `numeric` by the
//!   server: no `f64` anywhere. Times go as ISO-8601 UTC text cast to `timestamptz`, which has
//!   microsecond resolution; a bar opening at a sub-microsecond time is refused, not rounded.
//! - Errors and summaries show the connection URL with its password replaced by `***`.
//!
//! Transport: plain TCP or a Unix socket, no TLS yet (`sslmode=require` is refused up front),
//! so use it over loopback, a Unix socket, or a network you trust.
//!
//! Why `INSERT ... SELECT FROM unnest($1::text[], ...) ON CONFLICT DO NOTHING` rather than
//! `COPY ... BINARY`: the rule above needs `ON CONFLICT`, which `COPY` lacks (it would need a
//! staging table and a second `INSERT ... SELECT` anyway); one prepared statement takes a whole
//! batch as eight array parameters, so the 65,535-parameter cap of a `VALUES` list never bites
//! and the plan is reused. The conflict check costs nothing on the common path: it runs only
//! when the insert reports fewer rows than it was given, as a join of the same arrays against
//! the primary key, in the same transaction, so it also sees rows another session committed
//! meanwhile.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use keel_engine::{Candle, Fixed, Interval, Symbol};
use keel_replay::report::iso8601;
use keel_replay::store::{CandleCursor, StoreError};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::config::parse_time;

/// Most bars in one INSERT statement (eight text arrays of this many elements).
pub const BATCH_ROWS: usize = 10_000;
/// Conflicting bars described one by one in a [`PgSinkError::Conflict`]; the rest are counted.
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
        "table {table} at {url} exists but is not a keel candle table: {reason}; \
         give another --table"
    )]
    WrongTable {
        url: String,
        table: String,
        reason: String,
    },
    #[error("PostgreSQL at {url}: {action}: {reason}")]
    Query {
        url: String,
        action: String,
        reason: String,
    },
    #[error("{0}")]
    Conflict(Box<Conflict>),
    #[error(
        "{symbol} bar at {time_ns} ns opens at a sub-microsecond time, which a PostgreSQL \
         timestamptz cannot hold exactly"
    )]
    SubMicrosecond { symbol: String, time_ns: i64 },
    #[error("push before ensure_schema: the sink has no table yet")]
    NoTable,
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

/// What one [`PgSink::push`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushSummary {
    pub sent: u64,
    pub inserted: u64,
    /// Bars whose row was already there with identical values.
    pub already_present: u64,
}

impl PushSummary {
    fn add(&mut self, other: PushSummary) {
        self.sent += other.sent;
        self.inserted += other.inserted;
        self.already_present += other.already_present;
    }
}

/// A connection to PostgreSQL that stores candles. Must be used inside a tokio runtime.
pub struct PgSink {
    client: Client,
    /// The URL with its password hidden, for messages.
    url: String,
    table: Option<Prepared>,
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
        let mut config: Config = url.parse().map_err(|e| PgSinkError::BadUrl {
            url: redact(url),
            reason: describe(&e),
        })?;
        if let (None, Some(p)) = (config.get_password(), password) {
            config.password(p);
        }
        let shown = display_url(&config);
        if matches!(config.get_ssl_mode(), SslMode::Require) {
            return Err(PgSinkError::TlsUnsupported { url: shown });
        }
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
            table: None,
        })
    }

    /// The connection URL with its password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates `table` if it is missing, makes it a hypertable when TimescaleDB is there, and
    /// makes it the table [`PgSink::push`] writes to.
    pub async fn ensure_schema(&mut self, table: &str) -> Result<Hypertable, PgSinkError> {
        let name = TableName::new(table)?;
        let t = name.sql();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                symbol text NOT NULL,
                \"interval\" text NOT NULL,
                open_time timestamptz NOT NULL,
                open numeric(38,8) NOT NULL,
                high numeric(38,8) NOT NULL,
                low numeric(38,8) NOT NULL,
                close numeric(38,8) NOT NULL,
                volume numeric(38,8) NOT NULL,
                PRIMARY KEY (symbol, \"interval\", open_time)
            )"
        );
        self.client
            .batch_execute(&create)
            .await
            .map_err(|e| self.query_error(&format!("creating table {name}"), &e))?;
        self.check_columns(&name).await?;
        let hypertable = self.make_hypertable(&name).await?;
        let insert = self
            .client
            .prepare(&insert_sql(&name))
            .await
            .map_err(|e| self.query_error(&format!("preparing the insert into {name}"), &e))?;
        let check = self
            .client
            .prepare(&check_sql(&name))
            .await
            .map_err(|e| self.query_error(&format!("preparing the check of {name}"), &e))?;
        self.table = Some(Prepared {
            name,
            insert,
            check,
        });
        Ok(hypertable)
    }

    /// A table of the same name made by something else would fail later with a puzzling
    /// error; say so now.
    async fn check_columns(&self, name: &TableName) -> Result<(), PgSinkError> {
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
        for (want, ty) in EXPECTED_COLUMNS {
            let found = columns.iter().find(|(c, _)| c == want);
            let reason = match found {
                None => format!("it has no column {want}"),
                Some((_, t)) if t != ty => format!("its column {want} is {t}, not {ty}"),
                Some(_) => continue,
            };
            return Err(PgSinkError::WrongTable {
                url: self.url.clone(),
                table: name.to_string(),
                reason,
            });
        }
        Ok(())
    }

    async fn make_hypertable(&self, name: &TableName) -> Result<Hypertable, PgSinkError> {
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
        let (installed, available): (bool, bool) = (row.get(0), row.get(1));
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
            "SELECT create_hypertable('{}'::regclass, 'open_time'::name, \
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
        let url = self.url.clone();
        let query_error = |action: &str, e: &tokio_postgres::Error| PgSinkError::Query {
            url: url.clone(),
            action: action.to_string(),
            reason: describe(e),
        };
        let prepared = self.table.as_ref().ok_or(PgSinkError::NoTable)?;
        let name = &prepared.name;
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| query_error("starting a transaction", &e))?;
        let mut summary = PushSummary::default();
        for chunk in candles.chunks(BATCH_ROWS) {
            let batch = Batch::new(chunk)?;
            let params = batch.params();
            let inserted = tx
                .execute(&prepared.insert, &params)
                .await
                .map_err(|e| query_error(&format!("inserting into {name}"), &e))?;
            let sent = chunk.len() as u64;
            if inserted < sent {
                let rows = tx
                    .query(&prepared.check, &params)
                    .await
                    .map_err(|e| query_error(&format!("comparing with {name}"), &e))?;
                if let Some(row) = rows.first() {
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
            .map_err(|e| query_error(&format!("committing into {name}"), &e))?;
        Ok(summary)
    }

    fn query_error(&self, action: &str, e: &tokio_postgres::Error) -> PgSinkError {
        PgSinkError::Query {
            url: self.url.clone(),
            action: action.to_string(),
            reason: describe(e),
        }
    }
}

/// Columns and their types as `format_type` prints them.
const EXPECTED_COLUMNS: [(&str, &str); 8] = [
    ("symbol", "text"),
    ("interval", "text"),
    ("open_time", "timestamp with time zone"),
    ("open", "numeric(38,8)"),
    ("high", "numeric(38,8)"),
    ("low", "numeric(38,8)"),
    ("close", "numeric(38,8)"),
    ("volume", "numeric(38,8)"),
];

/// The batch as eight text arrays: symbol, interval, open time, open, high, low, close, volume.
const BATCH_FROM: &str = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                          $6::text[], $7::text[], $8::text[]) AS b(s, i, t, o, h, l, c, v)";

fn insert_sql(table: &TableName) -> String {
    format!(
        "INSERT INTO {} (symbol, \"interval\", open_time, open, high, low, close, volume)
         SELECT s, i, t::timestamptz, o::numeric, h::numeric, l::numeric, c::numeric, v::numeric
         FROM {BATCH_FROM}
         ON CONFLICT (symbol, \"interval\", open_time) DO NOTHING",
        table.sql()
    )
}

/// The batch's bars whose stored row differs, earliest first, with how many there are.
fn check_sql(table: &TableName) -> String {
    format!(
        "SELECT b.s, b.i, b.t, count(*) OVER (),
                x.open::text, x.high::text, x.low::text, x.close::text, x.volume::text,
                b.o, b.h, b.l, b.c, b.v
         FROM {BATCH_FROM}
         JOIN {} x ON x.symbol = b.s AND x.\"interval\" = b.i AND x.open_time = b.t::timestamptz
         WHERE (x.open, x.high, x.low, x.close, x.volume) IS DISTINCT FROM
               (b.o::numeric, b.h::numeric, b.l::numeric, b.c::numeric, b.v::numeric)
         ORDER BY x.open_time
         LIMIT {CONFLICTS_SHOWN}",
        table.sql()
    )
}

/// One statement's worth of bars as the columns [`BATCH_FROM`] reads.
struct Batch {
    columns: [Vec<String>; 8],
}

impl Batch {
    fn new(candles: &[Candle]) -> Result<Batch, PgSinkError> {
        let mut columns: [Vec<String>; 8] =
            std::array::from_fn(|_| Vec::with_capacity(candles.len()));
        for c in candles {
            if c.open_time_ns % 1_000 != 0 {
                return Err(PgSinkError::SubMicrosecond {
                    symbol: c.symbol.to_string(),
                    time_ns: c.open_time_ns,
                });
            }
            let [s, i, t, o, h, l, cl, v] = &mut columns;
            s.push(c.symbol.to_string());
            i.push(Interval { ns: c.interval_ns }.name());
            t.push(iso8601(c.open_time_ns));
            for (col, x) in [o, h, l, cl, v]
                .into_iter()
                .zip([c.open, c.high, c.low, c.close, c.volume])
            {
                col.push(x.to_string());
            }
        }
        Ok(Batch { columns })
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
        let [a, b, c, d, e, f, g, h] = &self.columns;
        [a, b, c, d, e, f, g, h]
    }
}

fn conflict(table: &TableName, row: &tokio_postgres::Row) -> PgSinkError {
    let time: String = row.get(2);
    let count: i64 = row.get(3);
    let names = ["open", "high", "low", "close", "volume"];
    let diff: Vec<String> = names
        .iter()
        .enumerate()
        .filter_map(|(k, name)| {
            let stored: String = row.get(4 + k);
            let pushed: String = row.get(9 + k);
            // Stored values print as numeric(38,8) text (`46377.00000000`); show them as
            // keel does when they fit in a Fixed.
            let stored = Fixed::parse(&stored).map_or(stored, |v| v.to_string());
            (stored != pushed).then(|| format!("{name}: stored {stored}, pushed {pushed}"))
        })
        .collect();
    let more = count - CONFLICTS_SHOWN;
    PgSinkError::Conflict(Box::new(Conflict {
        table: table.to_string(),
        symbol: row.get(0),
        interval: row.get(1),
        time,
        diff: diff.join(", "),
        more: if more > 0 {
            format!("; {more} more bars of the same batch conflict too")
        } else {
            String::new()
        },
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
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!(
                "--from {} is not before --to {} (--to is exclusive)",
                iso8601(f),
                iso8601(t)
            );
        }
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
    fn display_url_shows_stars_only_for_a_password() {
        let with: Config = "postgres://keel:s3cret@127.0.0.1:54329/db".parse().unwrap();
        assert_eq!(display_url(&with), "postgres://keel:***@127.0.0.1:54329/db");
        let without: Config = "host=/run/pg user=keel dbname=db".parse().unwrap();
        assert_eq!(display_url(&without), "postgres://keel@%2Frun%2Fpg/db");
    }
}
