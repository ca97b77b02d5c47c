//! Helpers shared by the end-to-end tests of the `keel` binary.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::{Command, Output};

pub const KEEL: &str = env!("CARGO_BIN_EXE_keel");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const BUNDLED_CSV: &str = "data/btc-perp-20211231-20220201_1m.csv";

pub fn keel(args: &[&str], cwd: &Path) -> Output {
    Command::new(KEEL)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("keel runs")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Asserts success and returns stdout.
pub fn assert_ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    out
}

/// Imports the bundled month of BTC perpetual bars into `dir/store` as BTCUSDT 1m and
/// returns what the command printed.
pub fn import_bundled(dir: &Path) -> String {
    import_bundled_as(dir, "BTCUSDT")
}

/// Imports the bundled bars into `dir/store` under `symbol`.
pub fn import_bundled_as(dir: &Path, symbol: &str) -> String {
    let csv = Path::new(ROOT).join(BUNDLED_CSV);
    let args = [
        "data",
        "import",
        "--format",
        "csv",
        csv.to_str().unwrap(),
        "--symbol",
        symbol,
        "--interval",
        "1m",
        "--store",
        "store",
    ];
    assert_ok(&keel(&args, dir))
}
