//! The `keel` command line.
//!
//! Exit codes: 0 success; 1 an error (bad input or usage, missing file, damaged data that
//! stops the command); 2 the command ran and found a problem it exists to find (a divergence
//! in `replay verify`, damage in `journal verify` or `journal inspect`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use keel::import::{self, Format};
use keel_engine::{Interval, RecordKind, Symbol};
use keel_journal::Integrity;
use keel_replay::{backtest, report, store, verify};

#[derive(Parser)]
#[command(
    name = "keel",
    version,
    about = "A deterministic, journaled crypto trading engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Candle data: import venue dumps or download from a venue into the candle store; export
    /// it to CSV or Parquet, or push it into PostgreSQL.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run a backtest from a TOML config; writes a run journal and report.json.
    Backtest {
        /// Backtest configuration (see examples/).
        #[arg(long)]
        config: PathBuf,
        /// Output directory [default: runs/<config file stem>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Copy every bar into the run journal, so it replays without the candle store
        /// [default: the journal refers to the store's records, 48 bytes a bar instead of 120,
        /// and `replay verify` reads them back from the store].
        #[arg(long)]
        embed_candles: bool,
    },
    /// Paper trading: live candles from a venue's WebSocket, orders filled by the simulated
    /// venue, everything journaled; resumes its journal after a stop or a crash. Stops on
    /// SIGINT/SIGTERM (or --for-seconds) with a synced journal and a snapshot.
    Paper {
        /// Session configuration: a backtest config plus [venue] and [session] (see
        /// examples/paper_binance.toml).
        #[arg(long)]
        config: PathBuf,
        /// Stop after this many seconds [default: run until stopped].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        for_seconds: Option<u64>,
    },
    /// Live trading: real orders on a venue (testnet URLs in the config), the same engine loop
    /// and journal as paper and backtest; reconciles with the venue at start-up and after
    /// every reconnect, keeps the venue's dead-man switch armed. API key and secret from
    /// KEEL_<VENUE>_API_KEY / _API_SECRET (OKX: _PASSPHRASE).
    Live {
        /// Session configuration: as for paper, plus [live] and [venue] private_ws_url (see
        /// examples/live_binance_testnet.toml).
        #[arg(long)]
        config: PathBuf,
        /// Stop after this many seconds [default: run until stopped].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        for_seconds: Option<u64>,
    },
    /// Run a grid of backtests (a backtest config plus a [sweep] section) on all cores and
    /// rank them by a report metric; writes sweep.csv and one run directory per point.
    Sweep {
        #[arg(long)]
        config: PathBuf,
        /// Output directory [default: runs/<config file stem>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Parallel runs [default: the number of CPUs].
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
    },
    /// Compute indicators over stored bars and write them as CSV (one row per bar, empty
    /// cells before warm-up), e.g. --indicator sma:20 --indicator macd:12:26:9.
    Indicators {
        /// Candle store directory.
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        symbol: String,
        #[arg(long)]
        interval: String,
        /// sma:N, ema:N, rsi:N, atr:N, bbands:N:K or macd:FAST:SLOW:SIGNAL; repeatable.
        #[arg(long = "indicator", required = true)]
        indicators: Vec<keel::indicators_cmd::Spec>,
        /// Output CSV file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-run recorded sessions.
    Replay {
        #[command(subcommand)]
        command: ReplayCommand,
    },
    /// Look inside journals.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Venue tools: decode raw venue messages, watch live market data.
    Venue {
        #[command(subcommand)]
        command: VenueCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Import candles from a file into the candle store. Re-importing bars already stored
    /// with the same values is a no-op; bad rows are reported by line and nothing is written.
    Import {
        /// binance-csv (data.binance.vision kline dumps), freqtrade-json ([[ts_ms,o,h,l,c,v],...]),
        /// or csv (a header naming time/open/high/low/close/volume columns).
        #[arg(long)]
        format: Format,
        /// The file to import (.gz accepted).
        file: PathBuf,
        /// Symbol to store the bars under, e.g. BTCUSDT.
        #[arg(long)]
        symbol: String,
        /// Bar interval of the file, e.g. 1m, 5m, 1h, 1d.
        #[arg(long)]
        interval: String,
        /// Candle store directory (created if missing).
        #[arg(long)]
        store: PathBuf,
    },
    /// Export stored candles to CSV or Parquet (for pandas, polars, DuckDB...).
    Export {
        /// csv or parquet.
        #[arg(long)]
        format: keel::export::ExportFormat,
        /// Candle store directory.
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        symbol: String,
        #[arg(long)]
        interval: String,
        /// First bar (inclusive): 2022-01-01 or 2022-01-01T12:00:00Z.
        #[arg(long)]
        from: Option<String>,
        /// End (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Output file (written atomically: a temporary file renamed into place).
        #[arg(long)]
        out: PathBuf,
    },
    /// Download historical candles from a venue's public REST API into the candle store
    /// (closed bars only; resumes after the newest stored bar).
    Download(keel::download::DownloadArgs),
    /// Push stored candles into a PostgreSQL table (a TimescaleDB hypertable when the server
    /// has the extension); identical rows already there are skipped, different ones are errors.
    Push(keel::pgsink::PushArgs),
}

#[derive(Subcommand)]
enum VenueCommand {
    /// Print what keel makes of raw venue messages: one JSON object per normalized event.
    /// A file holds one message, a JSON array of them, or one per line. Messages keel cannot
    /// decode are reported on stderr with the reason, and the exit code is 2.
    Decode {
        /// binance-spot, binance-usdm, bybit, okx or kraken.
        #[arg(long)]
        venue: String,
        /// Files of raw messages.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stream a venue's live public market data for one instrument: normalized events as JSON
    /// lines on stdout, connection events (reconnects, gaps) on stderr. Ctrl-C stops it.
    Watch(keel::watch::WatchArgs),
}

#[derive(Subcommand)]
enum ReplayCommand {
    /// Re-run a session journal's inputs through the core and compare every decision and
    /// the final digest with the recorded ones. Exit 2 on divergence.
    Verify {
        /// A run journal directory (e.g. runs/sma_cross/journal).
        journal: PathBuf,
        /// The candle store a backtest's bars are read from, when it is no longer where the
        /// run found it (its journal refers to the store's records instead of copying them).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Re-run a session's window as a backtest from its journaled candles and list, order by
    /// order, where the simulated fills differ from the recorded ones (price, time,
    /// quantity, fees, status): live against backtest. Exit 2 when anything differs.
    Diff {
        /// A session journal (paper or live; a backtest's works too).
        #[arg(long)]
        journal: PathBuf,
        /// Simulate with this file's [execution] and [market] settings instead of the ones
        /// the session was recorded with (e.g. to find the slippage that matches live fills).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The candle store a backtest journal's bars are read from, when it is no longer
        /// where the run found it.
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Segments, record counts by kind, first/last sequence and time, integrity.
    Inspect { dir: PathBuf },
    /// Check every CRC, the hash chain and sequence continuity. Exit 2 on damage.
    Verify { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors; 2 means "found a problem" here, so use 1.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Data {
            command:
                DataCommand::Import {
                    format,
                    file,
                    symbol,
                    interval,
                    store,
                },
        } => data_import(format, &file, &symbol, &interval, &store),
        Command::Data {
            command:
                DataCommand::Export {
                    format,
                    store,
                    symbol,
                    interval,
                    from,
                    to,
                    out,
                },
        } => {
            let request = keel::export::ExportRequest {
                format,
                store,
                symbol,
                interval,
                from,
                to,
                out,
            };
            let summary = keel::export::export(&request)?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Data {
            command: DataCommand::Download(args),
        } => keel::download::run_cli(&args),
        Command::Data {
            command: DataCommand::Push(args),
        } => keel::pgsink::run_cli(&args),
        Command::Backtest {
            config,
            out,
            embed_candles,
        } => run_backtest(&config, out, embed_candles),
        Command::Sweep { config, out, jobs } => run_sweep(&config, out, jobs),
        Command::Paper {
            config,
            for_seconds,
        } => keel::paper_session::run_cli(&config, for_seconds),
        Command::Live {
            config,
            for_seconds,
        } => keel::live_session::run_cli(&config, for_seconds),
        Command::Indicators {
            store,
            symbol,
            interval,
            indicators,
            out,
        } => write_indicators(&store, &symbol, &interval, &indicators, &out),
        Command::Replay {
            command: ReplayCommand::Verify { journal, store },
        } => replay_verify(&journal, store.as_deref()),
        Command::Replay {
            command:
                ReplayCommand::Diff {
                    journal,
                    config,
                    json,
                    store,
                },
        } => replay_diff(&journal, config.as_deref(), json, store.as_deref()),
        Command::Venue {
            command: VenueCommand::Decode { venue, files },
        } => venue_decode(&venue, &files),
        Command::Venue {
            command: VenueCommand::Watch(args),
        } => keel::watch::run_cli(&args),
        Command::Journal { command } => match command {
            JournalCommand::Inspect { dir } => journal_inspect(&dir),
            JournalCommand::Verify { dir } => journal_verify(&dir),
        },
    }
}

fn data_import(
    format: Format,
    file: &Path,
    symbol: &str,
    interval: &str,
    store_dir: &Path,
) -> Result<ExitCode> {
    let symbol = Symbol::new(symbol).context("--symbol")?;
    let interval = Interval::parse(interval)
        .map_err(anyhow::Error::msg)
        .context("--interval")?;
    let imported = import::parse_file(file, format, symbol, interval)?;
    let summary = store::append(
        store_dir,
        symbol,
        interval,
        &imported.candles,
        report::iso8601,
    )?;
    let dir = store::series_dir(store_dir, symbol, interval);
    println!(
        "{}: {} rows read, {} bars added, {} already present, into {}",
        file.display(),
        imported.rows,
        summary.added,
        summary.already_present,
        dir.display()
    );
    if let (Some(first), Some(last)) = (imported.candles.first(), imported.candles.last()) {
        println!(
            "  range {} → {}",
            report::iso8601(first.open_time_ns),
            report::iso8601(last.open_time_ns)
        );
    }
    if let Some((newest, missing)) = summary.gap_before_added {
        println!(
            "  note: {missing} bars missing between the newest stored bar ({}) and the first added one",
            report::iso8601(newest)
        );
    }
    if !imported.gaps.is_empty() {
        let missing: u64 = imported.gaps.iter().map(|g| g.missing_bars).sum();
        println!(
            "  {} gaps in the file ({missing} bars missing), the first after {}",
            imported.gaps.len(),
            report::iso8601(imported.gaps[0].after_open_time_ns)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn venue_decode(venue: &str, files: &[PathBuf]) -> Result<ExitCode> {
    use std::io::Write;
    let Some(v) = keel_adapters::model::Venue::parse(venue) else {
        let names: Vec<&str> = keel_adapters::model::Venue::ALL
            .iter()
            .map(|v| v.name())
            .collect();
        anyhow::bail!(
            "unknown venue {venue:?}: expected one of {}",
            names.join(", ")
        );
    };
    let mut failed = false;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for file in files {
        let decoded = keel::venue_cmd::decode_file(v, file)?;
        for event in &decoded.events {
            // A closed pipe (`| head`) ends the output quietly.
            if writeln!(out, "{event}").is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        for failure in &decoded.failures {
            failed = true;
            eprintln!("{}: {failure}", file.display());
        }
    }
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_sweep(config: &Path, out: Option<PathBuf>, jobs: Option<u16>) -> Result<ExitCode> {
    use keel::sweep;
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read config file {}", config.display()))?;
    let plan = sweep::Plan::parse(config, &text)?;
    let combos = plan.combinations();
    // Fail fast on a configuration no grid point could fix.
    if combos.iter().all(|c| {
        plan.config_text(c)
            .and_then(|t| keel::config::backtest_from_text(config, t, PathBuf::new()))
            .is_err()
    }) {
        let first = plan.config_text(&combos[0])?;
        keel::config::backtest_from_text(config, first, PathBuf::new())?;
    }
    let out = out.unwrap_or_else(|| sweep::default_out(config));
    sweep::prepare_out(&out)?;
    let workers = jobs
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(combos.len());
    println!(
        "keel sweep · {} runs on {workers} threads, ranked by {} ({})",
        combos.len(),
        plan.rank_by,
        if plan.descending {
            "highest first"
        } else {
            "lowest first"
        }
    );
    let points = sweep::run(&plan, config, &out, workers)?;
    let csv_path = out.join("sweep.csv");
    std::fs::write(&csv_path, sweep::csv(&plan, &points))
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    print!("{}", sweep::table(&plan, &points));
    println!("  table  {}", csv_path.display());
    println!(
        "  runs   {}/NNNN (journal/ and report.json each)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_indicators(
    store_dir: &Path,
    symbol: &str,
    interval: &str,
    specs: &[keel::indicators_cmd::Spec],
    out: &Path,
) -> Result<ExitCode> {
    let symbol = Symbol::new(symbol).context("--symbol")?;
    let interval = Interval::parse(interval)
        .map_err(anyhow::Error::msg)
        .context("--interval")?;
    let mut cursor = store::CandleCursor::open(store_dir, symbol, interval, None, None)?;
    let next = || cursor.next_candle().map_err(anyhow::Error::from);
    let rows = keel::indicators_cmd::write_csv(specs, next, out, report::iso8601)?;
    println!("{rows} rows written to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Checks that `out/journal`, if present, holds only an earlier run's journal, which a new
/// run may replace; anything else there is the user's and is never touched.
fn check_replaceable(journal: &Path) -> Result<()> {
    if !journal.exists() {
        return Ok(());
    }
    let entries =
        std::fs::read_dir(journal).with_context(|| format!("cannot read {}", journal.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.ends_with(".seg") || name == "LOCK" || name == "snapshots";
        if !ours {
            bail!(
                "{} holds {name}, which is not part of a keel journal; choose another --out",
                journal.display()
            );
        }
    }
    Ok(())
}

fn run_backtest(config: &Path, out: Option<PathBuf>, embed_candles: bool) -> Result<ExitCode> {
    let out = out.unwrap_or_else(|| {
        let stem = config
            .file_stem()
            .map_or("run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    });
    let journal = backtest::journal_dir(&out);
    // The run is written beside the final place and moved there only when it succeeded, so
    // a failed run never destroys the previous one.
    let staging = out.join(format!("journal.new-{}", std::process::id()));
    let mut spec = keel::config::load_backtest(config, staging.clone())?;
    spec.embed_candles = embed_candles;
    check_replaceable(&journal)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let show_progress = std::io::stderr().is_terminal();
    let progress: Box<dyn FnMut(u64)> = Box::new(move |bars| {
        if show_progress {
            eprint!("\r  {bars} bars…");
        }
    });
    let result = backtest::run(&spec, progress);
    if show_progress {
        eprint!("\r");
    }
    let mut outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.into());
        }
    };
    if journal.exists() {
        std::fs::remove_dir_all(&journal)
            .with_context(|| format!("cannot remove the previous run in {}", journal.display()))?;
    }
    std::fs::rename(&staging, &journal)
        .with_context(|| format!("cannot move the run journal into {}", journal.display()))?;
    outcome.report.run_journal = journal.display().to_string();
    let report_path = out.join("report.json");
    let json = serde_json::to_string_pretty(&outcome.report)?;
    std::fs::write(&report_path, json + "\n")
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    let html_path = out.join("report.html");
    std::fs::write(
        &html_path,
        keel_replay::html::render(&outcome.report, &outcome.curve),
    )
    .with_context(|| format!("cannot write {}", html_path.display()))?;
    print!("{}", outcome.report.summary(&outcome.curve));
    println!(
        "  report        {} and {}",
        report_path.display(),
        html_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn replay_diff(
    journal: &Path,
    config: Option<&Path>,
    json: bool,
    store: Option<&Path>,
) -> Result<ExitCode> {
    let sim = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            keel::config::sim_from_text(path, &text)?
        }
        None => {
            let text = keel::config::journaled_config_text(journal)?;
            keel::config::sim_from_text(&journal.join("<session start>"), &text)?
        }
    };
    let scratch = std::env::temp_dir().join(format!("keel-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = keel_replay::diff::diff_with_store(journal, store, sim, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let report = outcome?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", keel_replay::diff::render_text(&report));
    }
    Ok(if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn replay_verify(dir: &Path, store: Option<&Path>) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass a run journal such as runs/<name>/journal",
            dir.display()
        );
    }
    let outcome = verify::verify_with_store(dir, store)?;
    println!(
        "{}: {} inputs, {} decisions, {} checkpoints replayed",
        dir.display(),
        outcome.inputs,
        outcome.decisions,
        outcome.checkpoints
    );
    if let Some(store) = &outcome.store {
        println!("bars read from the candle store {}", store.display());
    }
    println!(
        "final digest {}",
        keel_engine::core::hex(&outcome.final_digest)
    );
    match outcome.divergences.first() {
        None => {
            println!("0 divergences");
            Ok(ExitCode::SUCCESS)
        }
        Some(first) => {
            println!(
                "DIVERGED: first divergent sequence number {} ({} divergences shown)",
                first.seq,
                outcome.divergences.len()
            );
            for d in &outcome.divergences {
                println!("  seq {}: {}", d.seq, d.what);
            }
            Ok(ExitCode::from(2))
        }
    }
}

fn kind_name(kind: u16) -> String {
    RecordKind::from_u16(kind).map_or(format!("unknown({kind})"), |k| k.name().to_string())
}

fn journal_inspect(dir: &Path) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass a journal directory",
            dir.display()
        );
    }
    let r = keel_journal::inspect(dir)?;
    println!("journal {}", dir.display());
    println!("  segments:");
    for s in &r.segments {
        println!(
            "    {}  base seq {}  schema {}  {} records  {} of {} bytes used",
            s.file_name, s.base_seq, s.schema_version, s.records, s.bytes_used, s.capacity
        );
    }
    println!("  records: {}", r.records);
    for (kind, count) in &r.kinds {
        println!("    {:<14} {count}", kind_name(*kind));
    }
    match (r.first_seq, r.last_seq) {
        (Some(first), Some(last)) => {
            let at = |ts: Option<u64>| ts.map_or("?".into(), |t| report::iso8601(t as i64));
            println!("  first seq {first} at {}", at(r.first_ts_ns));
            println!("  last seq  {last} at {}", at(r.last_ts_ns));
        }
        _ => println!("  (no records)"),
    }
    match &r.integrity {
        Integrity::Ok => {
            println!("  integrity: ok");
            Ok(ExitCode::SUCCESS)
        }
        Integrity::TornTail(t) => {
            println!("  integrity: ok, with {}", describe_torn(t));
            Ok(ExitCode::SUCCESS)
        }
        Integrity::Corrupt {
            segment,
            offset,
            reason,
        } => {
            println!(
                "  integrity: DAMAGED in {} at byte offset {offset}: {reason}",
                segment.display()
            );
            Ok(ExitCode::from(2))
        }
    }
}

fn describe_torn(t: &keel_journal::TornTail) -> String {
    format!(
        "a torn tail of {} bytes in {} at offset {} ({}); the next writer open truncates it",
        t.bytes_discarded,
        t.segment.display(),
        t.offset,
        t.reason
    )
}

fn journal_verify(dir: &Path) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass a journal directory",
            dir.display()
        );
    }
    match keel_journal::verify(dir) {
        Ok(r) if r.segments == 0 => {
            bail!(
                "{} holds no journal segments (*.seg); pass a journal directory",
                dir.display()
            )
        }
        Ok(r) => {
            let range = match (r.first_seq, r.last_seq) {
                (Some(a), Some(b)) => format!("seq {a}..={b}"),
                _ => "no records".into(),
            };
            let summary = format!(
                "{} segments, {} valid records ({range}); CRCs, chain and sequence verified",
                r.segments, r.records
            );
            match &r.torn_tail {
                None => {
                    println!("{}: ok: {summary}", dir.display());
                    Ok(ExitCode::SUCCESS)
                }
                // A crash mid-append leaves this, but so does damage to the last record:
                // verify cannot tell which, so it reports rather than vouches.
                Some(t) => {
                    println!("{}: TORN TAIL: {summary}", dir.display());
                    println!("  {}", describe_torn(t));
                    println!(
                        "  expected after a crash while appending; otherwise the end of the \
                         journal was damaged: keep a copy before opening it for writing"
                    );
                    Ok(ExitCode::from(2))
                }
            }
        }
        Err(e @ keel_journal::JournalError::Corrupt { .. }) => {
            println!("{}: DAMAGED: {e}", dir.display());
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}
