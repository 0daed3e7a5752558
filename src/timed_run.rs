//! The one generation loop with timing, shared by the CLI (`tinylab generate`), the page's
//! worker and the benchmark, so all three count prefill, forward passes and text alike. The
//! caller supplies the clock (`Instant` natively, `performance.now()` in wasm) and drives the
//! steps, so the worker can yield to its event loop between tokens and stop a run.

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, GenerateRequest, Generation, Result, StopReason, Token};

/// Wall-clock figures for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Timing {
    pub prompt_tokens: usize,
    pub prefill_ms: f64,
    /// From the start of the run (before prefill) to the first token.
    pub first_token_ms: Option<f64>,
    /// Forward passes made while decoding: one after every token except one that ended the
    /// run by length or context (an EOS draw makes none either, and is not a token).
    pub decode_forwards: usize,
    /// Time spent in the steps that made those passes.
    pub decode_ms: f64,
}

impl Timing {
    pub fn prefill_tokens_per_s(&self) -> Option<f64> {
        (self.prefill_ms > 0.0 && self.prompt_tokens > 0)
            .then(|| self.prompt_tokens as f64 * 1000.0 / self.prefill_ms)
    }

    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        (self.decode_ms > 0.0 && self.decode_forwards > 0)
            .then(|| self.decode_forwards as f64 * 1000.0 / self.decode_ms)
    }
}

/// A generation being stepped, with its clock.
pub struct TimedRun<'c> {
    pub generation: Generation,
    clock: &'c dyn Fn() -> f64,
    t0: f64,
    timing: Timing,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub reason: StopReason,
    pub timing: Timing,
    /// Text the UTF-8 stream still held (an incomplete character at the end, as U+FFFD).
    pub tail: String,
}

impl<'c> TimedRun<'c> {
    /// Runs the prompt through the model (timed as prefill).
    pub fn start(
        engine: &mut Engine,
        req: &GenerateRequest,
        clock: &'c dyn Fn() -> f64,
    ) -> Result<Self> {
        let mut run = Self::begin(engine, req, clock)?;
        while !run.prefill_step(engine)? {}
        Ok(run)
    }

    /// [`TimedRun::start`] for callers that hold token ids (benchmark, lab).
    pub fn start_with_ids(
        engine: &mut Engine,
        ids: Vec<u32>,
        req: &GenerateRequest,
        clock: &'c dyn Fn() -> f64,
    ) -> Result<Self> {
        let mut run = Self::begin_with_ids(engine, ids, req, clock)?;
        while !run.prefill_step(engine)? {}
        Ok(run)
    }

    /// A run whose prompt the caller feeds with [`TimedRun::prefill_step`], so it can yield
    /// (and be stopped) between chunks of a long prompt.
    pub fn begin(
        engine: &mut Engine,
        req: &GenerateRequest,
        clock: &'c dyn Fn() -> f64,
    ) -> Result<Self> {
        let t0 = clock();
        let generation = engine.begin(req)?;
        Ok(Self::begun(generation, t0, clock))
    }

    pub fn begin_with_ids(
        engine: &mut Engine,
        ids: Vec<u32>,
        req: &GenerateRequest,
        clock: &'c dyn Fn() -> f64,
    ) -> Result<Self> {
        let t0 = clock();
        let generation = engine.begin_with_ids(ids, req)?;
        Ok(Self::begun(generation, t0, clock))
    }

    fn begun(generation: Generation, t0: f64, clock: &'c dyn Fn() -> f64) -> Self {
        let timing = Timing {
            prompt_tokens: generation.prompt_ids.len(),
            // Tokenizing and templating count as prefill.
            prefill_ms: clock() - t0,
            ..Timing::default()
        };
        TimedRun {
            generation,
            clock,
            t0,
            timing,
        }
    }

    /// Runs the next chunk of the prompt; true once all of it is in. Only the time spent
    /// here counts as prefill, not the caller's pauses between chunks.
    pub fn prefill_step(&mut self, engine: &mut Engine) -> Result<bool> {
        if self.generation.prefilled() {
            return Ok(true);
        }
        let ts = (self.clock)();
        let done = engine.prefill_step(&mut self.generation)?;
        self.timing.prefill_ms += (self.clock)() - ts;
        Ok(done)
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The next token and when it was ready (ms since the start), or `None` once the run has
    /// ended by itself.
    pub fn step(&mut self, engine: &mut Engine) -> Result<Option<(Token, f64)>> {
        let ts = (self.clock)();
        let Some(token) = engine.step(&mut self.generation)? else {
            return Ok(None);
        };
        let te = (self.clock)();
        // A step that ended the run made no forward pass; it would flatter the decode rate.
        if self.generation.stop_reason.is_none() {
            self.timing.decode_forwards += 1;
            self.timing.decode_ms += te - ts;
        }
        let at = te - self.t0;
        self.timing.first_token_ms.get_or_insert(at);
        Ok(Some((token, at)))
    }

    /// Ends the run. One the engine had not ended itself (the caller stopped stepping) ends
    /// as `Stopped`.
    pub fn finish(mut self) -> (Finished, Generation) {
        let reason = self.generation.stop_reason.unwrap_or(StopReason::Stopped);
        let tail = self.generation.flush();
        (
            Finished {
                reason,
                timing: self.timing,
                tail,
            },
            self.generation,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_need_time_and_tokens() {
        let t = Timing {
            prompt_tokens: 100,
            prefill_ms: 500.0,
            first_token_ms: Some(520.0),
            decode_forwards: 10,
            decode_ms: 250.0,
        };
        assert_eq!(t.prefill_tokens_per_s(), Some(200.0));
        assert_eq!(t.decode_tokens_per_s(), Some(40.0));
        assert_eq!(Timing::default().decode_tokens_per_s(), None);
        assert_eq!(Timing::default().prefill_tokens_per_s(), None);
    }
}
