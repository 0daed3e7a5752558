//! What `export-json` and `export-csv` download: every pane's settings, model, prompt, ids,
//! text and per-token numbers. Timings are left out on purpose, so the same seed and settings
//! give the same file byte for byte.

use serde::Serialize;

use super::settings::{Mode, PaneSettings};
use crate::engine::{GenerateRequest, StopReason, Summary};
use crate::protocol::TokenEvent;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Export {
    pub tinylab: &'static str,
    pub mode: Mode,
    pub prompt: String,
    pub score_text: String,
    pub panes: Vec<PaneExport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaneExport {
    pub index: usize,
    pub model: ModelRef,
    pub settings: PaneSettings,
    pub generation: Option<RunExport>,
    pub score: Option<RunExport>,
    /// The Entropy lab's "Human vs model" result, as the pane shows it, without its timings
    /// (`human_vs_model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_vs_model: Option<serde_json::Value>,
    /// This pane's Binoculars score (on the performer's pane).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binoculars: Option<BinocularsExport>,
}

/// A Binoculars score with the observer it was measured against: the score is a ratio of the
/// performer's perplexity to the two models' cross-perplexity, so it means nothing without both.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BinocularsExport {
    /// The observer pane's place (0-based, as `index`); `None` once that pane is removed.
    pub observer_index: Option<usize>,
    pub observer_model: String,
    /// The model that scored (this pane's when the run was made; the pane's `model` is the
    /// one that made its outputs).
    pub performer_model: String,
    #[serde(flatten)]
    pub result: crate::protocol::BinocularsResult,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct ModelRef {
    /// Catalog id; `None` for a local file.
    pub id: Option<String>,
    pub name: String,
    /// From the catalog; `None` for a local file.
    pub sha256: Option<String>,
    pub architecture: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunExport {
    /// The model that made this run, where it is not the pane's `model` (another model was
    /// loaded between a generation and a score, each shown in its tab).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// The prompt and settings the outputs were generated with (the pane's boxes, in
    /// `settings`, may have changed since): what reproduces `ids`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<GenerateRequest>,
    pub prompt_ids: Vec<u32>,
    pub ids: Vec<u32>,
    pub text: String,
    pub stop_reason: Option<String>,
    /// The context filled up: `stop_reason` is then `length`, as `tinylab generate --json`
    /// writes it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub context_full: bool,
    /// A score stopped part way: `ids` and `summary` cover only the tokens scored.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// A score's figures (perplexity, means, GLTR buckets, Fast-DetectGPT), as the pane shows
    /// them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// A score's bits per byte over the span measured, as the pane shows it (not in
    /// `summary`, which is the engine's, per token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_byte: Option<f64>,
    pub tokens: Vec<TokenRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenRow {
    pub id: u32,
    pub text: String,
    pub entropy: f64,
    pub surprisal: f64,
    pub rank: usize,
    pub top: Vec<(u32, String, f64)>,
}

impl RunExport {
    pub fn new(
        prompt_ids: Vec<u32>,
        prefix: &str,
        tokens: &[TokenEvent],
        stop: Option<StopReason>,
    ) -> Self {
        let reported = stop.map(StopReason::reported);
        let mut text = prefix.to_string();
        text.extend(tokens.iter().map(|t| t.piece.as_str()));
        RunExport {
            model: String::new(),
            request: None,
            prompt_ids,
            ids: tokens.iter().map(|t| t.id).collect(),
            text,
            stop_reason: reported.map(|(reason, _)| reason.to_string()),
            context_full: reported.is_some_and(|(_, full)| full),
            partial: false,
            summary: None,
            bits_per_byte: None,
            tokens: tokens
                .iter()
                .map(|t| TokenRow {
                    id: t.id,
                    text: t.text.clone(),
                    entropy: t.entropy,
                    surprisal: t.surprisal,
                    rank: t.rank,
                    top: t.top.iter().map(|a| (a.id, a.text.clone(), a.p)).collect(),
                })
                .collect(),
        }
    }
}

impl RunExport {
    pub fn made_from(self, request: Option<GenerateRequest>) -> Self {
        RunExport { request, ..self }
    }

    /// Names the model that made the run, when it is not `pane_model`.
    pub fn made_by(self, model: &str, pane_model: &str) -> Self {
        let model = if model == pane_model {
            String::new()
        } else {
            model.to_string()
        };
        RunExport { model, ..self }
    }

    /// A score's figures, and whether it was stopped part way. `ids` become every input id,
    /// the context ones (`prompt_ids`) first, as `tinylab score` lists them.
    pub fn scored(
        self,
        summary: Option<Summary>,
        partial: bool,
        bits_per_byte: Option<f64>,
    ) -> Self {
        let ids = self.prompt_ids.iter().chain(&self.ids).copied().collect();
        RunExport {
            ids,
            summary,
            partial,
            bits_per_byte: bits_per_byte.filter(|b| b.is_finite()),
            stop_reason: partial.then(|| "stopped".to_string()),
            ..self
        }
    }
}

impl Export {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One row per token: pane, model, kind (generation/score), position and the numbers.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("pane,model,kind,position,id,text,entropy,surprisal,rank,p\n");
        for p in &self.panes {
            let runs = [("generation", &p.generation), ("score", &p.score)];
            for (kind, run) in runs {
                let Some(run) = run else { continue };
                let model = if run.model.is_empty() {
                    &p.model.name
                } else {
                    &run.model
                };
                for (i, t) in run.tokens.iter().enumerate() {
                    out.push_str(&format!(
                        "{},{},{kind},{i},{},{},{},{},{},{}\n",
                        p.index,
                        csv_field(model),
                        t.id,
                        csv_field(&t.text),
                        t.entropy,
                        t.surprisal,
                        t.rank,
                        (-t.surprisal).exp()
                    ));
                }
            }
        }
        out
    }
}

/// A "Human vs model" result for the export: its scoring time and its tokens' times go, as
/// every other timing does, so that the same text and model give the same file.
pub fn human_vs_model(r: &crate::protocol::HumanVsModelResult) -> Option<serde_json::Value> {
    let mut v = serde_json::to_value(r).ok()?;
    for side in ["human", "model"] {
        let Some(text) = v.get_mut(side).and_then(|t| t.as_object_mut()) else {
            continue;
        };
        text.remove("ms");
        if let Some(tokens) = text.get_mut("tokens").and_then(|t| t.as_array_mut()) {
            for t in tokens.iter_mut().filter_map(|t| t.as_object_mut()) {
                t.remove("at_ms");
            }
        }
    }
    Some(v)
}

/// RFC 4180 quoting, and a leading quote mark on text a spreadsheet would run as a formula
/// (OWASP's list: `=`, `+`, `-`, `@`, and a leading TAB or CR, which some spreadsheets skip
/// before reading a formula).
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Alternative, Token};

    fn tok(id: u32, piece: &str, surprisal: f64) -> TokenEvent {
        let token = Token {
            id,
            text: piece.into(),
            piece: piece.into(),
            entropy: 1.0,
            surprisal,
            rank: 0,
            top: vec![Alternative {
                id,
                text: piece.into(),
                p: 0.5,
            }],
            second_moment: 0.0,
        };
        TokenEvent::from((token, 123.0))
    }

    fn export() -> Export {
        Export {
            tinylab: "0.1.0",
            mode: Mode::Generate,
            prompt: "Hi".into(),
            score_text: String::new(),
            panes: vec![PaneExport {
                index: 0,
                model: ModelRef {
                    name: "M, \"quoted\"".into(),
                    ..ModelRef::default()
                },
                settings: PaneSettings::default(),
                generation: Some(RunExport::new(
                    vec![1, 2],
                    "",
                    &[tok(5, " a,b", 0.0), tok(6, "=1+1", 1.0)],
                    Some(StopReason::Length),
                )),
                score: None,
                human_vs_model: None,
                binoculars: None,
            }],
        }
    }

    #[test]
    fn json_holds_ids_and_text_but_no_timing() {
        let e = export();
        let json = e.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["panes"][0]["generation"]["ids"],
            serde_json::json!([5, 6])
        );
        assert_eq!(v["panes"][0]["generation"]["text"], " a,b=1+1");
        assert!(!json.contains("at_ms") && !json.contains("123"));
        assert_eq!(json, export().to_json(), "same input, same file");
        // With a "Human vs model" result, timed as the worker times it.
        let text = |ms| crate::protocol::ScoredText {
            prefix: "p".into(),
            tokens: vec![TokenEvent {
                at_ms: ms,
                ..tok(5, "a", 1.0)
            }],
            summary: Summary::default(),
            ms,
            total: 1,
            context_ids: vec![1],
            prefix_bytes: Some(1),
        };
        let lab = |ms| crate::protocol::HumanVsModelResult {
            prompt: "p".into(),
            prompt_tokens: 1,
            human: text(ms),
            model: text(ms),
            human_total: 1,
        };
        let mut a = export();
        a.panes[0].human_vs_model = human_vs_model(&lab(123.0));
        let mut b = export();
        b.panes[0].human_vs_model = human_vs_model(&lab(456.0));
        let json = a.to_json();
        assert!(
            json.contains("\"human_total\"") && !json.contains("at_ms"),
            "{json}"
        );
        assert!(!json.contains("\"ms\""), "{json}");
        assert_eq!(json, b.to_json(), "timings differ, the files do not");
    }

    /// A score made by another model than the pane's generation names it, in the JSON and
    /// on its CSV rows.
    #[test]
    fn a_run_by_another_model_names_it() {
        let mut e = export();
        let pane_model = e.panes[0].model.name.clone();
        e.panes[0].score = Some(
            RunExport::new(vec![1], "", &[tok(7, "b", 0.5)], None)
                .scored(None, false, None)
                .made_by("Gemma 3 270M", &pane_model),
        );
        let gen = e.panes[0]
            .generation
            .take()
            .map(|g| g.made_by(&pane_model, &pane_model));
        e.panes[0].generation = gen;
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["panes"][0]["score"]["model"], "Gemma 3 270M");
        assert!(v["panes"][0]["generation"].get("model").is_none());
        let csv = e.to_csv();
        let score_rows: Vec<&str> = csv.lines().filter(|l| l.contains(",score,")).collect();
        assert_eq!(score_rows.len(), 1);
        assert!(score_rows[0].starts_with("0,Gemma 3 270M,score,"), "{csv}");
        assert!(
            csv.lines()
                .any(|l| l.contains(",generation,") && l.contains("quoted")),
            "{csv}"
        );
    }

    /// A Binoculars score names its observer beside its figures.
    #[test]
    fn a_binoculars_score_names_its_observer() {
        let mut e = export();
        e.panes[0].binoculars = Some(BinocularsExport {
            observer_index: Some(1),
            observer_model: "SmolLM2 135M".into(),
            performer_model: "Gemma 3 270M".into(),
            result: crate::protocol::BinocularsResult {
                score: f64::NAN,
                log_ppl: 2.5,
                log_x_ppl: 2.75,
                tokens: 9,
            },
        });
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let b = &v["panes"][0]["binoculars"];
        assert_eq!(b["observer_index"], 1);
        assert_eq!(b["observer_model"], "SmolLM2 135M");
        assert_eq!(b["performer_model"], "Gemma 3 270M");
        // Inside the flattened result, a NaN is still written as the other figures write it.
        assert_eq!(b["score"], "NaN");
        assert_eq!(b["log_x_ppl"], 2.75);
        assert_eq!(b["tokens"], 9);
    }

    /// A stopped score says so, and carries the figures the pane shows.
    #[test]
    fn a_score_carries_its_summary_and_whether_it_was_stopped() {
        let summary = Summary {
            perplexity: 12.5,
            ..Summary::default()
        };
        let run = |partial| {
            let r = RunExport::new(vec![], "", &[tok(5, "a", 0.0)], None).scored(
                Some(summary.clone()),
                partial,
                Some(1.5),
            );
            serde_json::to_value(r).unwrap()
        };
        let stopped = run(true);
        assert_eq!(stopped["partial"], true);
        assert_eq!(stopped["stop_reason"], "stopped");
        assert_eq!(stopped["summary"]["perplexity"], 12.5);
        assert_eq!(stopped["bits_per_byte"], 1.5);
        let whole = run(false);
        assert!(whole.get("partial").is_none());
        assert!(whole["stop_reason"].is_null());
    }

    /// A full context is a length stop, told apart as `tinylab generate --json` tells it.
    #[test]
    fn a_full_context_reads_as_the_cli_writes_it() {
        let run = |stop| serde_json::to_value(RunExport::new(vec![], "", &[], stop)).unwrap();
        let full = run(Some(StopReason::Context));
        assert_eq!(full["stop_reason"], "length");
        assert_eq!(full["context_full"], true);
        let eos = run(Some(StopReason::Eos));
        assert_eq!(eos["stop_reason"], "eos");
        assert!(eos.get("context_full").is_none());
        assert_eq!(run(Some(StopReason::Stopped))["stop_reason"], "stopped");
    }

    /// `ids` list every input id, the unscored first one too, as `tinylab score` does.
    #[test]
    fn a_score_lists_every_input_id() {
        let r = RunExport::new(vec![2], "", &[tok(5, "a", 0.0), tok(7, "b", 0.0)], None)
            .scored(None, false, None);
        assert_eq!(r.ids, vec![2, 5, 7]);
        assert_eq!(r.prompt_ids, vec![2]);
        assert_eq!(r.tokens.len(), 2);
    }

    #[test]
    fn csv_rows_are_quoted() {
        let csv = export().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "0,\"M, \"\"quoted\"\"\",generation,0,5,\" a,b\",1,0,0,1"
        );
        assert!(lines[2].contains(",'=1+1,"));
    }

    #[test]
    fn formula_starts_are_neutralised() {
        for (text, want) in [
            ("=1+1", "'=1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1+1", "'\t=1+1"),
            ("\r=1+1", "\"'\r=1+1\""),
            ("-2", "'-2"),
            ("plain", "plain"),
        ] {
            assert_eq!(csv_field(text), want, "{text:?}");
        }
    }
}
