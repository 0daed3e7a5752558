//! The one-click pane set-ups, shared by the toolbar's presets and the kiosk demos.

use super::settings::PaneSettings;

pub const SMOLLM2: &str = "smollm2-135m-instruct-q4_1";
pub const GEMMA3: &str = "gemma3-270m-q4_k_m";
pub const QWEN25: &str = "qwen2.5-coder-0.5b-instruct";

/// Greedy decoding of `model`, other settings at their defaults.
pub fn greedy(model: &str) -> PaneSettings {
    PaneSettings {
        model_id: model.into(),
        temperature: 0.0,
        ..PaneSettings::default()
    }
}

/// The three catalog models, greedy, on the same prompt.
pub fn model_vs_model() -> Vec<PaneSettings> {
    vec![greedy(SMOLLM2), greedy(GEMMA3), greedy(QWEN25)]
}

/// The same model with the prompt once and twice.
pub fn prompt_repetition(model: &str) -> Vec<PaneSettings> {
    vec![
        greedy(model),
        PaneSettings {
            repeat_prompt: true,
            ..greedy(model)
        },
    ]
}

/// The same model and seed at two temperatures.
pub fn temperatures(model: &str, low: f32, high: f32) -> Vec<PaneSettings> {
    [low, high]
        .into_iter()
        .map(|t| PaneSettings {
            temperature: t,
            seed: 42,
            ..greedy(model)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_differ_only_where_they_say() {
        let m = model_vs_model();
        assert_eq!(m.len(), 3);
        assert!(m.iter().all(|p| p.temperature == 0.0));
        let r = prompt_repetition(SMOLLM2);
        assert_eq!(
            r[1],
            PaneSettings {
                repeat_prompt: true,
                ..r[0].clone()
            }
        );
        let t = temperatures(SMOLLM2, 0.2, 1.0);
        assert_eq!((t[0].temperature, t[1].temperature), (0.2, 1.0));
        assert_eq!(t[0].seed, t[1].seed);
        assert!(t.iter().all(|p| p.model_id == SMOLLM2));
    }
}
