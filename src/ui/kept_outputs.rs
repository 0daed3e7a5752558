//! Which panes' outputs the page keeps for a reload, within the room it has for them, and
//! what it says of those it cannot keep.

use super::pane::SavedOutput;

/// The outputs as JSON within `limit` bytes, leaving out the largest panes' until the rest
/// fit (`None` if JSON fails), and the 0-based panes left out with their sizes.
pub fn fitting(
    mut outputs: Vec<Option<SavedOutput>>,
    limit: usize,
) -> (Option<String>, Vec<(usize, usize)>) {
    let mut left_out = Vec::new();
    loop {
        let Ok(json) = serde_json::to_string(&outputs) else {
            return (None, left_out);
        };
        if json.len() <= limit {
            left_out.sort_unstable();
            return (Some(json), left_out);
        }
        let largest = outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let size = serde_json::to_string(o.as_ref()?).map_or(usize::MAX, |j| j.len());
                Some((size, i))
            })
            .max();
        let Some((size, i)) = largest else {
            return (None, left_out);
        };
        outputs[i] = None;
        left_out.push((i, size));
    }
}

/// What to say of panes whose outputs are too large to keep (empty when none are).
pub fn too_large_note(left_out: &[(usize, usize)], limit: usize) -> String {
    let size = super::format::bytes(left_out.iter().map(|(_, s)| *s as u64).sum());
    let panes: Vec<String> = left_out.iter().map(|(i, _)| (i + 1).to_string()).collect();
    let which = match panes.as_slice() {
        [] => return String::new(),
        [one] => format!("Pane {one}'s outputs ({size}) are"),
        [rest @ .., last] => format!(
            "The outputs of panes {} and {last} ({size}) are",
            rest.join(", ")
        ),
    };
    format!(
        "{which} too large to come back after a reload (up to {} are kept for all panes): \
         Export keeps them.",
        super::format::bytes(limit as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(tokens: usize) -> Option<SavedOutput> {
        let mut o = SavedOutput::default();
        o.run.message = "x".repeat(tokens);
        Some(o)
    }

    /// The largest pane's outputs go first, and only until the rest fit: before, one pane
    /// over the limit cost every pane's outputs, and nothing was said.
    #[test]
    fn the_largest_outputs_are_left_out_until_the_rest_fit() {
        let all = vec![output(10), output(5_000), None, output(3_000)];
        let size =
            |o: &Option<SavedOutput>| serde_json::to_string(o.as_ref().unwrap()).unwrap().len();
        let (big, mid) = (size(&all[1]), size(&all[3]));
        let whole = serde_json::to_string(&all).unwrap().len();
        let (json, out) = fitting(all.clone(), whole);
        assert_eq!((json.map(|j| j.len()), out), (Some(whole), vec![]));
        let (json, out) = fitting(all.clone(), whole - 1);
        let kept: Vec<Option<SavedOutput>> = serde_json::from_str(&json.unwrap()).unwrap();
        assert_eq!(out, vec![(1, big)]);
        assert_eq!(
            (kept[0].is_some(), kept[1].is_none(), kept[3].is_some()),
            (true, true, true)
        );
        // Each left out is written as `null`.
        let (_, out) = fitting(all.clone(), whole - big - mid + 8);
        assert_eq!(out, vec![(1, big), (3, mid)]);
        assert_eq!(
            too_large_note(&out, 2_000_000),
            format!(
                "The outputs of panes 2 and 4 ({}) are too large to come back after a reload \
                 (up to 2.00 MB are kept for all panes): Export keeps them.",
                crate::ui::format::bytes((big + mid) as u64)
            )
        );
        assert!(too_large_note(&out[..1], 2_000_000).starts_with("Pane 2's outputs ("));
        assert_eq!(too_large_note(&[], 2_000_000), "");
    }
}
