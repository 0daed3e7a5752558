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

#[cfg(test)]
mod tests {
    use super::*;

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
