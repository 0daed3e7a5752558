//! Whether a model fits in the browser's storage before the worker tries to keep it there.

/// Headroom left for the app shell and the browser's own bookkeeping.
pub const RESERVE_BYTES: u64 = 50_000_000;

/// `Ok` when `bytes` more fit under `quota` given `usage` (from `navigator.storage.estimate()`),
/// else the message the page shows.
pub fn check_fits(bytes: u64, usage: u64, quota: u64) -> Result<(), String> {
    let free = quota.saturating_sub(usage).saturating_sub(RESERVE_BYTES);
    if bytes <= free {
        Ok(())
    } else {
        Err(format!(
            "not kept for offline use: it needs {} and the browser allows {} more \
             (remove cached models in the Models panel to make room)",
            crate::ui::format::bytes(bytes),
            crate::ui::format::bytes(free)
        ))
    }
}

/// What the page says when the browser refuses to store a model although the quota said it
/// fits (`e`, the browser's own words). Measured in Chromium: a private (in-memory) profile
/// reported 10.7 GB of quota, kept SmolLM2 and Gemma 3 (350 MB) and refused Qwen2.5 (491 MB)
/// with "Unexpected internal error"; a normal profile kept all three.
pub fn put_refused(e: &str) -> String {
    format!(
        "not kept for offline use: the browser refused to store it ({e}). It runs now and \
         will be fetched again next time. Private and guest windows keep storage in memory and \
         refuse large models even when they say there is room: for offline use open TinyLab in \
         a normal window; otherwise free disk space, or remove cached models under Models."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_put_says_what_to_do() {
        let m = put_refused("Failed to execute 'put' on 'Cache': Unexpected internal error.");
        assert!(m.starts_with("not kept for offline use: the browser refused to store it"));
        for what in [
            "Unexpected internal error",
            "normal window",
            "free disk space",
            "Models",
        ] {
            assert!(m.contains(what), "{what}: {m}");
        }
    }

    #[test]
    fn fits_only_with_headroom() {
        assert!(check_fits(100_000_000, 0, 1_000_000_000).is_ok());
        assert!(check_fits(950_000_000, 0, 1_000_000_000).is_ok());
        let e = check_fits(960_000_000, 0, 1_000_000_000).unwrap_err();
        assert!(
            e.contains("needs 960 MB") && e.contains("allows 950 MB"),
            "{e}"
        );
        // Usage above the quota (it happens) means no room, not an overflow.
        assert!(check_fits(1, 2_000, 1_000).is_err());
    }
}
