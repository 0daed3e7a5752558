//! Arrow-key movement inside a group of controls (the mode tabs, the colour radios), as the
//! ARIA tabs and radio-group patterns have it: Left/Up and Right/Down step and wrap around,
//! Home and End go to the ends.

/// The item `key` moves to from `at` among `len`, or `None` for a key that does not move.
pub fn arrow_target(key: &str, at: usize, len: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    match key {
        "ArrowRight" | "ArrowDown" => Some((at + 1) % len),
        "ArrowLeft" | "ArrowUp" => Some((at + len - 1) % len),
        "Home" => Some(0),
        "End" => Some(len - 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_step_and_wrap_and_home_and_end_go_to_the_ends() {
        assert_eq!(arrow_target("ArrowRight", 0, 4), Some(1));
        assert_eq!(arrow_target("ArrowRight", 3, 4), Some(0));
        assert_eq!(arrow_target("ArrowLeft", 0, 4), Some(3));
        assert_eq!(arrow_target("ArrowUp", 2, 4), Some(1));
        assert_eq!(arrow_target("Home", 2, 4), Some(0));
        assert_eq!(arrow_target("End", 0, 4), Some(3));
        assert_eq!(arrow_target("Enter", 0, 4), None);
        assert_eq!(arrow_target("ArrowRight", 0, 0), None);
    }
}
