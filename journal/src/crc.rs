//! CRC32C for record frames: the per-record body CRC and the one-step chain mix (see the crate
//! docs for the rule), in a hardware version the hot paths can inline and a portable one.
//!
//! The hardware version issues the SSE4.2 `crc32` instruction through inline assembly rather
//! than `core::arch` intrinsics: an intrinsic is a `#[target_feature]` function and cannot be
//! inlined into code compiled without that feature, which would put a call on every 8 bytes.
//! [`Hw`] is a token that exists only once the CPU is known to support the instruction, so the
//! functions taking it are safe to call. Without it (other architectures, or an x86-64 without
//! SSE4.2) everything falls back to the `crc32c` crate, which computes the same values.

/// Proof that the CPU executes the SSE4.2 `crc32` instruction. Obtain with [`Hw::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hw(());

impl Hw {
    /// `Some` if this CPU has hardware CRC32C. Callers check once and keep the token.
    #[inline]
    pub(crate) fn detect() -> Option<Hw> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("sse4.2") {
                return Some(Hw(()));
            }
        }
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod op {
    use super::Hw;
    use std::arch::asm;

    // SAFETY (all four): `Hw` exists only on CPUs with SSE4.2 (see `Hw::detect`), so the
    // instruction is valid; it reads and writes only the named registers.

    // The state is kept in a u64 register between steps: the 32-bit form of `crc32` zero-extends
    // into it anyway, and no `u32 -> u64` conversion then sits on the dependency chain.

    #[inline(always)]
    pub(super) fn step64(_: Hw, mut c: u64, v: u64) -> u64 {
        unsafe {
            asm!("crc32 {c}, {v}", c = inout(reg) c, v = in(reg) v,
                 options(pure, nomem, nostack, preserves_flags));
        }
        c
    }

    /// `step64` of the little-endian word at `p + O`, read by the instruction itself (one
    /// instruction per word instead of a load and a `crc32`).
    ///
    /// # Safety
    /// `p + O .. p + O + 8` is readable.
    #[inline(always)]
    pub(super) unsafe fn step64_at<const O: usize>(_: Hw, mut c: u64, p: *const u8) -> u64 {
        // SAFETY: the caller vouches for the 8 bytes read; x86-64 is little-endian.
        unsafe {
            asm!("crc32 {c}, qword ptr [{p} + {o}]", c = inout(reg) c, p = in(reg) p,
                 o = const O, options(pure, readonly, nostack, preserves_flags));
        }
        c
    }

    #[inline(always)]
    pub(super) fn step32(_: Hw, mut c: u64, v: u32) -> u64 {
        unsafe {
            asm!("crc32 {c:e}, {v:e}", c = inout(reg) c, v = in(reg) v,
                 options(pure, nomem, nostack, preserves_flags));
        }
        c
    }

    #[inline(always)]
    pub(super) fn step16(_: Hw, mut c: u64, v: u16) -> u64 {
        unsafe {
            asm!("crc32 {c:e}, {v:x}", c = inout(reg) c, v = in(reg) v,
                 options(pure, nomem, nostack, preserves_flags));
        }
        c
    }

    #[inline(always)]
    pub(super) fn step8(_: Hw, mut c: u64, v: u8) -> u64 {
        unsafe {
            asm!("crc32 {c:e}, {v}", c = inout(reg) c, v = in(reg_byte) v,
                 options(pure, nomem, nostack, preserves_flags));
        }
        c
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod op {
    // `Hw` is never constructed off x86-64; these only keep the call sites architecture-free.
    use super::Hw;
    pub(super) fn step64(_: Hw, _: u64, _: u64) -> u64 {
        unreachable!()
    }
    pub(super) fn step32(_: Hw, _: u64, _: u32) -> u64 {
        unreachable!()
    }
    pub(super) unsafe fn step64_at<const O: usize>(_: Hw, _: u64, _: *const u8) -> u64 {
        unreachable!()
    }
    pub(super) fn step16(_: Hw, _: u64, _: u16) -> u64 {
        unreachable!()
    }
    pub(super) fn step8(_: Hw, _: u64, _: u8) -> u64 {
        unreachable!()
    }
}

/// Folds the low `n` (0..8) bytes of `w`, lowest first, into the raw (un-inverted) state.
#[inline(always)]
fn tail(hw: Hw, mut c: u64, mut w: u64, n: usize) -> u64 {
    if n & 4 != 0 {
        c = op::step32(hw, c, w as u32);
        w >>= 32;
    }
    if n & 2 != 0 {
        c = op::step16(hw, c, w as u16);
        w >>= 16;
    }
    if n & 1 != 0 {
        c = op::step8(hw, c, w as u8);
    }
    c
}

/// The two CRC computations of the format, implemented by [`Hw`] (SSE4.2 `crc32`) and [`Sw`]
/// (the `crc32c` crate). Callers pick one once (`match Option<Hw>`) and run a loop generic over
/// it, so the hot loops carry no per-record dispatch and no code of the other version.
pub(crate) trait Kernel: Copy {
    /// The chain step: `crc32c_append(prev, &body.to_le_bytes())`.
    fn mix(self, prev: u32, body: u32) -> u32;

    /// Body CRC of a frame whose bytes `[8..len)` are in memory at `frame + 8`, given its `seq`,
    /// `ts_ns` and the word at offset 24 (`kind | ver << 16 | reserved << 32`) already loaded
    /// from (or written to) there.
    ///
    /// # Safety
    /// `frame` is 8-byte aligned, `len >= 32`, and `frame[..round_up8(len)]` is readable.
    unsafe fn body_in_place(self, frame: *const u8, len: u32, seq: u64, ts_ns: u64, kw: u64)
    -> u32;

    /// Copies `payload` to `dst` and returns the body CRC of a frame with these header fields
    /// and that payload, reading the payload from the source (any alignment) as it copies.
    ///
    /// # Safety
    /// `dst` is 8-byte aligned and `dst[..round_up8(payload.len())]` is writable, zero beyond
    /// `payload.len()`, and does not overlap `payload`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn copy_and_body(
        self,
        dst: *mut u8,
        payload: &[u8],
        len: u32,
        seq: u64,
        ts_ns: u64,
        kw: u64,
    ) -> u32;
}

/// Portable CRC32C (the `crc32c` crate, which has its own runtime dispatch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sw;

impl Kernel for Sw {
    #[inline]
    fn mix(self, prev: u32, body: u32) -> u32 {
        crc32c::crc32c_append(prev, &body.to_le_bytes())
    }

    #[inline]
    unsafe fn body_in_place(
        self,
        frame: *const u8,
        len: u32,
        _seq: u64,
        _ts_ns: u64,
        _kw: u64,
    ) -> u32 {
        // SAFETY: `frame[8..len)` is readable (caller).
        let rest = unsafe { std::slice::from_raw_parts(frame.add(8), len as usize - 8) };
        crc32c::crc32c_append(crc32c::crc32c_append(0, &len.to_le_bytes()), rest)
    }

    #[inline]
    unsafe fn copy_and_body(
        self,
        dst: *mut u8,
        payload: &[u8],
        len: u32,
        seq: u64,
        ts_ns: u64,
        kw: u64,
    ) -> u32 {
        // SAFETY: sizes and disjointness are the caller's contract.
        unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), dst, payload.len()) };
        let mut c = crc32c::crc32c_append(0, &len.to_le_bytes());
        c = crc32c::crc32c_append(c, &seq.to_le_bytes());
        c = crc32c::crc32c_append(c, &ts_ns.to_le_bytes());
        c = crc32c::crc32c_append(c, &kw.to_le_bytes());
        crc32c::crc32c_append(c, payload)
    }
}

impl Kernel for Hw {
    #[inline(always)]
    fn mix(self, prev: u32, body: u32) -> u32 {
        !(op::step32(self, u64::from(!prev), body) as u32)
    }

    #[inline(always)]
    unsafe fn body_in_place(
        self,
        frame: *const u8,
        len: u32,
        seq: u64,
        ts_ns: u64,
        kw: u64,
    ) -> u32 {
        let h = self;
        let l = len as usize;
        let mut c = op::step32(h, 0xffff_ffff, len);
        c = op::step64(h, c, seq);
        c = op::step64(h, c, ts_ns);
        c = op::step64(h, c, kw);
        let words = (l - 32) / 8;
        // SAFETY: 8-aligned, and every word read lies in `frame[32..round_up8(len))` (caller).
        // Four words per iteration, the rest by a jump on the count: the loop's own
        // instructions were most of the work for frames of a few words.
        unsafe {
            let mut q = frame.add(32);
            let end = q.add(8 * (words & !3));
            while q < end {
                c = op::step64_at::<0>(h, c, q);
                c = op::step64_at::<8>(h, c, q);
                c = op::step64_at::<16>(h, c, q);
                c = op::step64_at::<24>(h, c, q);
                q = q.add(32);
            }
            match words & 3 {
                3 => {
                    c = op::step64_at::<0>(h, c, q);
                    c = op::step64_at::<8>(h, c, q);
                    c = op::step64_at::<16>(h, c, q);
                }
                2 => {
                    c = op::step64_at::<0>(h, c, q);
                    c = op::step64_at::<8>(h, c, q);
                }
                1 => c = op::step64_at::<0>(h, c, q),
                _ => {}
            }
            let n = l % 8;
            if n != 0 {
                let last = (frame.add(32) as *const u64).add(words);
                c = tail(h, c, u64::from_le(last.read()), n);
            }
        }
        !(c as u32)
    }

    #[inline(always)]
    unsafe fn copy_and_body(
        self,
        dst: *mut u8,
        payload: &[u8],
        len: u32,
        seq: u64,
        ts_ns: u64,
        kw: u64,
    ) -> u32 {
        let h = self;
        let n = payload.len();
        let mut c = op::step32(h, 0xffff_ffff, len);
        c = op::step64(h, c, seq);
        c = op::step64(h, c, ts_ns);
        c = op::step64(h, c, kw);
        let words = n / 8;
        let src = payload.as_ptr();
        let d = dst as *mut u64;
        // SAFETY: reads stay within `payload` (word i covers bytes [8i, 8i+8) <= n); writes stay
        // within `dst[..round_up8(n))` and are aligned (caller).
        unsafe {
            for i in 0..words {
                let w = (src.add(8 * i) as *const u64).read_unaligned();
                c = op::step64(h, c, u64::from_le(w));
                d.add(i).write(w);
            }
            let r = n % 8;
            if r != 0 {
                let mut last = [0u8; 8];
                std::ptr::copy_nonoverlapping(src.add(8 * words), last.as_mut_ptr(), r);
                let w = u64::from_le_bytes(last);
                c = tail(h, c, w, r);
                // The upper bytes are zero: this also writes the frame's (already zero) padding.
                d.add(words).write(w.to_le());
            }
        }
        !(c as u32)
    }
}

impl Hw {
    /// Body CRCs of four consecutive frames of the same length `len`, the first at `frame`,
    /// each `flen = round_up8(len)` bytes after the previous one, with the four `crc32` chains
    /// interleaved.
    ///
    /// One frame's CRC is a single dependency chain, so frame-by-frame validation spends more
    /// instructions on loop and address bookkeeping than on `crc32` itself; here one loop
    /// iteration steps all four frames with the instruction reading memory directly (one base
    /// register, the frame stride as the index). Journals are mostly runs of same-length
    /// records (candles, ticks), which is where replay spends its time. No CRC crate offers a
    /// many-short-buffers CRC32C (they speed up one long buffer), hence this.
    ///
    /// # Safety
    /// `frame` is 8-byte aligned, `len >= 32`, `flen == round_up8(len)`, and
    /// `frame[..4 * flen]` is readable.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) unsafe fn bodies4(self, frame: *const u8, len: u32, flen: usize) -> [u32; 4] {
        let h = self;
        let seed = op::step32(h, 0xffff_ffff, len);
        let (mut c0, mut c1, mut c2, mut c3) = (seed, seed, seed, seed);
        // Whole words of bytes [8, len): seq, ts_ns, the kind word, then the payload (>= 3).
        let words = (len as usize - 8) / 8;
        let q = frame.wrapping_add(8);
        let end = q.wrapping_add(8 * words);
        let s3 = 3 * flen;
        // SAFETY: reads `q + 8i + k*flen` for i < words, k < 4: inside the four frames
        // (caller); `words >= 3`, so the loop body runs at least once as written.
        unsafe {
            std::arch::asm!(
                "2:",
                "crc32 {c0}, qword ptr [{q}]",
                "crc32 {c1}, qword ptr [{q} + {s}]",
                "crc32 {c2}, qword ptr [{q} + {s}*2]",
                "crc32 {c3}, qword ptr [{q} + {s3}]",
                "add {q}, 8",
                "cmp {q}, {end}",
                "jb 2b",
                c0 = inout(reg) c0,
                c1 = inout(reg) c1,
                c2 = inout(reg) c2,
                c3 = inout(reg) c3,
                q = inout(reg) q => _,
                s = in(reg) flen,
                s3 = in(reg) s3,
                end = in(reg) end,
                options(readonly, nostack),
            );
        }
        let n = len as usize % 8;
        if n != 0 {
            // SAFETY: the last (partial) word of each frame lies inside it (caller).
            let last = |k: usize| unsafe {
                u64::from_le((end.wrapping_add(k * flen) as *const u64).read())
            };
            c0 = tail(h, c0, last(0), n);
            c1 = tail(h, c1, last(1), n);
            c2 = tail(h, c2, last(2), n);
            c3 = tail(h, c3, last(3), n);
        }
        [!(c0 as u32), !(c1 as u32), !(c2 as u32), !(c3 as u32)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule from the crate docs, written the slow, obvious way.
    fn reference_body(len: u32, rest: &[u8]) -> u32 {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(rest);
        crc32c::crc32c(&v)
    }

    #[test]
    fn hardware_and_portable_paths_match_the_reference_for_every_length() {
        check_kernel(Sw);
        if let Some(h) = Hw::detect() {
            check_kernel(h);
        }
    }

    fn check_kernel<K: Kernel + std::fmt::Debug>(k: K) {
        for payload_len in 0..80usize {
            let len = (32 + payload_len) as u32;
            // An 8-aligned frame buffer with zero padding.
            let words = (32 + payload_len).div_ceil(8);
            let mut frame = vec![0u64; words];
            let seq = 0x0102_0304_0506_0708u64 ^ payload_len as u64;
            let ts = 0xfedc_ba98_7654_3210u64;
            let kw = 0x0000_0000_0009_0005u64;
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 37 + 11) as u8).collect();
            let fp = frame.as_mut_ptr() as *mut u8;
            unsafe {
                (fp.add(8) as *mut u64).write(seq.to_le());
                (fp.add(16) as *mut u64).write(ts.to_le());
                (fp.add(24) as *mut u64).write(kw.to_le());
                std::ptr::copy_nonoverlapping(payload.as_ptr(), fp.add(32), payload_len);
            }
            let rest = unsafe { std::slice::from_raw_parts(fp.add(8), len as usize - 8) }.to_vec();
            let want = reference_body(len, &rest);
            {
                let hw = k;
                let got = unsafe { k.body_in_place(fp, len, seq, ts, kw) };
                assert_eq!(got, want, "in place, len {len}, hw {hw:?}");
                // Copy from an unaligned source into a fresh zeroed frame.
                let mut src = vec![0u8; payload_len + 1];
                src[1..].copy_from_slice(&payload);
                let mut dst = vec![0u64; words];
                let got = unsafe {
                    k.copy_and_body(
                        (dst.as_mut_ptr() as *mut u8).add(32),
                        &src[1..],
                        len,
                        seq,
                        ts,
                        kw,
                    )
                };
                assert_eq!(got, want, "copy, len {len}, hw {hw:?}");
                let copied = unsafe {
                    std::slice::from_raw_parts((dst.as_ptr() as *const u8).add(32), words * 8 - 32)
                };
                assert_eq!(&copied[..payload_len], payload.as_slice());
                assert!(copied[payload_len..].iter().all(|&b| b == 0));
            }
        }
    }

    #[test]
    fn mix_is_one_four_byte_crc_step() {
        for (prev, body) in [(0u32, 0u32), (0xdead_beef, 0x1234_5678), (!0, 7)] {
            let want = crc32c::crc32c_append(prev, &body.to_le_bytes());
            assert_eq!(Sw.mix(prev, body), want);
            if let Some(h) = Hw::detect() {
                assert_eq!(h.mix(prev, body), want);
            }
        }
    }
}
