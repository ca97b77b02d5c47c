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
        unsafe {
            let p = frame.add(32) as *const u64;
            let mut i = 0;
            while i + 2 <= words {
                c = op::step64(h, c, u64::from_le(p.add(i).read()));
                c = op::step64(h, c, u64::from_le(p.add(i + 1).read()));
                i += 2;
            }
            if i < words {
                c = op::step64(h, c, u64::from_le(p.add(i).read()));
            }
            let n = l % 8;
            if n != 0 {
                c = tail(h, c, u64::from_le(p.add(words).read()), n);
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
