//! Journal benchmarks: raw memcpy baseline into a pre-faulted mapping, keel append (framing +
//! chained CRC32C + publish) into pretouched segments, append latency percentiles
//! (hdrhistogram), and replay (Reader decode + CRC + chain validation) from the page cache and
//! from memory.
//! Run: `cargo bench --bench journal`.

use criterion::{Criterion, Throughput, criterion_group};
use hdrhistogram::Histogram;
use keel_journal::{Durability, Journal, MemStorage, Options, Reader};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PAYLOAD: usize = 64;
const SEGMENT: u64 = 256 << 20;

fn opts() -> Options {
    Options {
        segment_size: SEGMENT,
        durability: Durability::None,
        schema_version: 1,
        pretouch: true,
        sync_on_roll: true,
        // One segment holding every append of a sample (see append_64B).
        grow_segments: false,
    }
}

fn raw_baseline(c: &mut Criterion) {
    // Anonymous mapping, pre-faulted, records copied back to back.
    let mut map = memmap2::MmapMut::map_anon(SEGMENT as usize).expect("anon map");
    for i in (0..map.len()).step_by(4096) {
        map[i] = 1;
    }
    let rec = [7u8; PAYLOAD];
    let mut off = 0usize;
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_memcpy_64B", |b| {
        b.iter(|| {
            if off + PAYLOAD > map.len() {
                off = 0;
            }
            map[off..off + PAYLOAD].copy_from_slice(black_box(&rec));
            off += PAYLOAD;
        })
    });
    g.finish();
}

/// Journals live on tmpfs when available so msync/fallocate of the bench does not measure the
/// disk; the append path itself never makes a syscall.
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

fn append(c: &mut Criterion) {
    let payload = [7u8; PAYLOAD];
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    // Each sample gets a fresh journal whose pretouched segment holds all its appends, so the
    // timed loop measures appends only; segment creation + pretouch (a roll) is not timed here.
    g.bench_function("append_64B", |b| {
        b.iter_custom(|iters| {
            let dir = tempdir();
            let frame = 32 + PAYLOAD as u64;
            let size = ((iters * frame + 4096 + 4095) & !4095).clamp(1 << 20, 3 << 30);
            let opts = Options {
                segment_size: size,
                ..opts()
            };
            let (mut j, _) = Journal::open(dir.path(), opts).expect("open");
            let t = Instant::now();
            for i in 0..iters {
                black_box(j.append(i, 1, 1, black_box(&payload)).expect("append"));
            }
            t.elapsed()
        })
    });
    g.finish();
}

/// Records in each replay benchmark's journal.
const N: u64 = 1_000_000;

fn fill(j: &mut Journal) {
    for i in 0..N {
        j.append(i, 1, 1, &[7u8; PAYLOAD]).expect("append");
    }
}

/// Reads every record, returning the payload bytes seen (so nothing is optimised away).
fn drain(r: &mut Reader) -> u64 {
    let mut n = 0u64;
    while let Some(rec) = r.next().expect("read") {
        n += rec.payload.len() as u64;
    }
    n
}

fn replay(c: &mut Criterion) {
    // On the disk filesystem (the system temp dir), where journals live: its page cache holds
    // a segment in 2 MiB folios (the writer zero-fills segments with 2 MiB writes), which
    // tmpfs here does not (`shmem_enabled` is `never`).
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut j, _) = Journal::open(dir.path(), opts()).expect("open");
    fill(&mut j);
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("replay_64B_1M", |b| {
        b.iter(|| {
            let mut r = Reader::open(dir.path()).expect("reader");
            black_box(drain(&mut r))
        })
    });
    g.finish();
}

/// The same replay from a journal in `MemStorage` (heap memory, already faulted in): Reader
/// decode + CRC + chain validation alone, without the kernel's page-table work of mapping,
/// faulting in and unmapping ~24k fresh 4 KiB pages per pass that `replay_64B_1M` includes.
fn replay_mem(c: &mut Criterion) {
    let storage = MemStorage::new();
    let dir = std::path::Path::new("/mem/journal");
    let (mut j, _) = Journal::open_with_storage(storage.clone(), dir, opts()).expect("open");
    fill(&mut j);
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("replay_64B_1M_mem", |b| {
        b.iter(|| {
            let mut r = Reader::open_with_storage(storage.clone(), dir, 0).expect("reader");
            black_box(drain(&mut r))
        })
    });
    g.finish();
}

/// Per-append latency, measured around each call with `Instant` (its own ~20 ns overhead is
/// included). Appends are issued back to back, so there is no coordinated omission to correct.
fn latency() {
    let dir = tempdir();
    let (mut j, _) = Journal::open(dir.path(), opts()).expect("open");
    let payload = [7u8; PAYLOAD];
    let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("histogram");
    let n = 2_000_000u64;
    // Warm up (first faults of the caches and branch predictors).
    for i in 0..100_000 {
        j.append(i, 1, 1, &payload).expect("append");
    }
    let mut clock_floor = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("h");
    for _ in 0..100_000 {
        let t = Instant::now();
        let d = t.elapsed();
        let _ = clock_floor.record(d.as_nanos().max(1) as u64);
    }
    for i in 0..n {
        let t = Instant::now();
        black_box(j.append(i, 1, 1, black_box(&payload)).expect("append"));
        let _ = h.record(t.elapsed().as_nanos().max(1) as u64);
    }
    println!("\nappend latency, 64-byte payload, {n} appends, Durability::None (ns):");
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.value_at_quantile(0.9999),
        h.max()
    );
    println!(
        "(clock overhead alone: p50 {} ns, p99 {} ns)\n",
        clock_floor.value_at_quantile(0.50),
        clock_floor.value_at_quantile(0.99)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = raw_baseline, append, replay, replay_mem
}

fn main() {
    benches();
    latency();
    Criterion::default().configure_from_args().final_summary();
}
