//! The relaxed build's dot form (`engine::dot_form`), measured once per deploy and browser.
//!
//! Every relaxed worker used to time both forms before it said `Ready`: 50-100 ms in the
//! bench's page and 57-204 ms in the app's (issue 15's twenty-second and twenty-third stops),
//! on every reload and in every pane, four at once for a four-pane permalink. Which form is
//! faster depends on the CPU and on V8's instruction selection, neither of which changes
//! between two starts of one browser, so the page keeps the first clear measurement in
//! localStorage and hands it to each later worker in the worker's name
//! (`dot=add&dotkept=1.12`, `dot_form::DotRequest::Kept`; `app::threads::worker_name`), which
//! then does not measure. On the VM where this was built the measurement had mostly
//! overlapped the page's own start-up: keeping it saved its CPU time, not a visible wait.
//!
//! What a measurement is kept for: the page's deploy (a new build may change the kernels), the
//! browser's user agent (a new browser version may change V8's code) and the number of cores
//! it reports (a VM resized or moved). `?dot=measure` measures again and keeps the new answer;
//! `?dot=pairs` and `?dot=add` force a form and keep nothing. A wrong kept form costs only
//! speed: both give the same bits.

use serde::{Deserialize, Serialize};

use crate::engine::dot_form::{self, DotForm};
use crate::protocol::DotChoice;

/// localStorage key.
pub const KEY: &str = "tinylab-dot";

/// What a kept measurement was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Browser {
    pub build: String,
    pub agent: String,
    pub cores: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Kept {
    on: Browser,
    form: String,
    ratio: f64,
}

/// What to tell a relaxed worker (`a=b&c=d`, its name), given the page's own query string and
/// what localStorage holds under `KEY`; `None` lets the worker measure.
pub fn worker_query(page_search: &str, stored: Option<&str>, now: &Browser) -> Option<String> {
    if let Some(form) = DotForm::from_query(page_search) {
        return Some(format!("dot={}", form.name()));
    }
    // `?dot=` with a value that is not a form (`?dot=measure`): measure, whatever was kept.
    if dot_form::query_value(page_search, "dot").is_some() {
        return None;
    }
    let kept = read(stored?, now)?;
    Some(format!("dot={}&dotkept={}", kept.0.name(), kept.1))
}

/// A kept form and its ratio, if `stored` is a measurement for this browser whose ratio names
/// its form (anything else, a hand-edited or older entry, is ignored and measured again).
fn read(stored: &str, now: &Browser) -> Option<(DotForm, f64)> {
    let k: Kept = serde_json::from_str(stored).ok()?;
    let form = DotForm::parse(&k.form)?;
    (k.on == *now && dot_form::worth_keeping(k.ratio) && dot_form::chosen_by(k.ratio) == form)
        .then_some((form, k.ratio))
}

/// What to store under `KEY` after a worker's `Ready`: its own clear measurement, else
/// nothing (forced, kept, or too close to call; after a worker's own measurement the page then
/// removes what was kept, which that measurement has overruled).
pub fn to_keep(choice: &DotChoice, now: &Browser) -> Option<String> {
    let ratio = choice.ratio?;
    if choice.forced || choice.kept || !dot_form::worth_keeping(ratio) {
        return None;
    }
    let form = DotForm::parse(&choice.form)?;
    if dot_form::chosen_by(ratio) != form {
        return None;
    }
    serde_json::to_string(&Kept {
        on: now.clone(),
        form: form.name().into(),
        ratio,
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn browser() -> Browser {
        Browser {
            build: "ab12".into(),
            agent: "Mozilla/5.0 Chrome/148".into(),
            cores: 2,
        }
    }

    fn measured(form: &str, ratio: f64) -> DotChoice {
        DotChoice {
            form: form.into(),
            forced: false,
            kept: false,
            ratio: Some(ratio),
            ms: 80.0,
        }
    }

    #[test]
    fn a_clear_measurement_is_kept_and_handed_on() {
        let now = browser();
        let stored = to_keep(&measured("dot-add", 1.12), &now).unwrap();
        assert_eq!(
            worker_query("", Some(&stored), &now).as_deref(),
            Some("dot=dot-add&dotkept=1.12")
        );
        // What the worker makes of it.
        let q = format!("?{}", worker_query("?x=1", Some(&stored), &now).unwrap());
        assert_eq!(
            dot_form::DotRequest::from_query(&q),
            dot_form::DotRequest::Kept {
                form: DotForm::DotAdd,
                ratio: 1.12
            }
        );
        let pairs = to_keep(&measured("pairs", 0.7), &now).unwrap();
        assert_eq!(
            worker_query("", Some(&pairs), &now).as_deref(),
            Some("dot=pairs&dotkept=0.7")
        );
    }

    #[test]
    fn forced_kept_and_near_ties_are_not_kept() {
        let now = browser();
        let forced = DotChoice {
            forced: true,
            ratio: None,
            ..measured("pairs", 1.0)
        };
        assert_eq!(to_keep(&forced, &now), None);
        let kept = DotChoice {
            kept: true,
            ..measured("dot-add", 1.2)
        };
        assert_eq!(to_keep(&kept, &now), None);
        assert_eq!(to_keep(&measured("dot-add", 1.01), &now), None);
        // A ratio that does not name the form reported is no measurement of it.
        assert_eq!(to_keep(&measured("pairs", 1.2), &now), None);
    }

    #[test]
    fn another_deploy_browser_or_machine_measures_again() {
        let now = browser();
        let stored = to_keep(&measured("dot-add", 1.12), &now).unwrap();
        for other in [
            Browser {
                build: "cd34".into(),
                ..browser()
            },
            Browser {
                agent: "Mozilla/5.0 Chrome/149".into(),
                ..browser()
            },
            Browser {
                cores: 8,
                ..browser()
            },
        ] {
            assert_eq!(worker_query("", Some(&stored), &other), None, "{other:?}");
        }
    }

    #[test]
    fn the_page_address_comes_first() {
        let now = browser();
        let stored = to_keep(&measured("dot-add", 1.12), &now).unwrap();
        assert_eq!(
            worker_query("?dot=pairs", Some(&stored), &now).as_deref(),
            Some("dot=pairs")
        );
        assert_eq!(worker_query("?a=1&dot=measure", Some(&stored), &now), None);
        assert_eq!(worker_query("", None, &now), None);
    }

    #[test]
    fn damaged_entries_are_ignored() {
        let now = browser();
        let good = to_keep(&measured("dot-add", 1.12), &now).unwrap();
        for bad in [
            String::new(),
            "{".into(),
            "null".into(),
            good.replace("dot-add", "fast"),
            good.replace("1.12", "0.9"),
            good.replace("1.12", "1.0"),
            good.replace("1.12", "-3"),
        ] {
            assert_eq!(worker_query("", Some(&bad), &now), None, "{bad}");
        }
    }
}
