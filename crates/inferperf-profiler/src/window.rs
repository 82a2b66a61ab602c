//! The window state machine: which forward steps a profiling session captures.
//!
//! Semantics (SGLang's V1 scheduler mixin, with its off-by-one fixed):
//! - a **step** is one forward batch; `forward_ct` is its absolute number (first step = 1);
//! - `start_ct = max(start_step, last_forward_ct + 1)`: `start_step` is absolute and inclusive,
//!   and a step in the past means "the next step";
//! - `num_steps = n` captures exactly `n` steps `[start_ct, start_ct + n)` and then closes the
//!   window by itself, at the **end** of the n-th step (so the file is written even if no
//!   further batch ever comes). SGLang closes at the start of the next batch, and when started
//!   without `start_step` its target is `forward_ct + n`, which captures only `n - 1` batches
//!   (fixed to `n` in its newest `SchedulerProfilerManager`); here it is always `n`;
//! - no `num_steps`: the window stays open until stop;
//! - without `start_step` the window opens at once (so events between steps are captured too);
//! - by stage: one window per selected stage (EXTEND = prefill-like incl. MIXED, DECODE); a
//!   stage's window opens on the first batch of that stage at or after `start_ct` and captures
//!   the next `n` batches **of that stage only** (batches of the other stage go to the other
//!   file or nowhere). SGLang's V1 ignores `start_step` here and lets a DECODE window absorb
//!   later prefill batches; its V2 captures n+1. IDLE batches never belong to a stage.

use crate::naming::Stage;
use crate::step::ForwardMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WState {
    Pending,
    Open,
    Closed,
}

#[derive(Clone, Debug)]
pub(crate) struct Window {
    /// `None`: all batches.
    pub stage: Option<Stage>,
    pub state: WState,
    pub captured: u64,
    /// First and last captured `forward_ct`.
    pub first_step: Option<u64>,
    pub last_step: Option<u64>,
}

impl Window {
    fn accepts(&self, mode: ForwardMode) -> bool {
        match self.stage {
            None => true,
            Some(stage) => Stage::of(mode) == Some(stage),
        }
    }
}

/// All windows of one session on one rank.
#[derive(Clone, Debug)]
pub(crate) struct WindowSet {
    pub start_ct: u64,
    pub num_steps: Option<u64>,
    pub windows: Vec<Window>,
}

impl WindowSet {
    /// Arm the windows. Without `start_step` and without stages the single window opens now.
    pub fn new(
        start_step: Option<u64>,
        num_steps: Option<u64>,
        stages: Option<&[Stage]>,
        last_forward_ct: u64,
    ) -> Self {
        let start_ct = start_step.unwrap_or(0).max(last_forward_ct + 1);
        let mk = |stage| Window {
            stage,
            state: WState::Pending,
            captured: 0,
            first_step: None,
            last_step: None,
        };
        let mut windows: Vec<Window> = match stages {
            None => vec![mk(None)],
            Some(stages) => stages.iter().map(|&s| mk(Some(s))).collect(),
        };
        if stages.is_none() && start_step.is_none() {
            windows[0].state = WState::Open;
        }
        Self {
            start_ct,
            num_steps,
            windows,
        }
    }

    /// Step `forward_ct` begins: open the windows it starts, and return the index of the
    /// window that records it (at most one: a batch has one stage).
    pub fn begin_step(
        &mut self,
        forward_ct: u64,
        mode: ForwardMode,
    ) -> (Vec<usize>, Option<usize>) {
        let mut opened = Vec::new();
        let mut target = None;
        for (i, w) in self.windows.iter_mut().enumerate() {
            if !w.accepts(mode) {
                continue;
            }
            if w.state == WState::Pending && forward_ct >= self.start_ct {
                w.state = WState::Open;
                opened.push(i);
            }
            if w.state == WState::Open && target.is_none() {
                target = Some(i);
            }
        }
        (opened, target)
    }

    /// Step `forward_ct` recorded by `target` ended; returns the windows that closed.
    pub fn end_step(&mut self, forward_ct: u64, target: usize) -> Vec<usize> {
        let Some(w) = self.windows.get_mut(target) else {
            return Vec::new();
        };
        w.captured += 1;
        w.first_step.get_or_insert(forward_ct);
        w.last_step = Some(forward_ct);
        if self.num_steps.is_some_and(|n| w.captured >= n) {
            w.state = WState::Closed;
            return vec![target];
        }
        Vec::new()
    }

    /// Stop: open windows close (and get written), pending ones are cancelled.
    pub fn stop(&mut self) -> Vec<usize> {
        let mut closed = Vec::new();
        for (i, w) in self.windows.iter_mut().enumerate() {
            if w.state == WState::Open {
                closed.push(i);
            }
            w.state = WState::Closed;
        }
        closed
    }

    pub fn open_windows(&self) -> impl Iterator<Item = usize> + '_ {
        self.windows
            .iter()
            .enumerate()
            .filter(|(_, w)| w.state == WState::Open)
            .map(|(i, _)| i)
    }

    pub fn any_open(&self) -> bool {
        self.open_windows().next().is_some()
    }

    pub fn all_closed(&self) -> bool {
        self.windows.iter().all(|w| w.state == WState::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ForwardMode::{Decode, Extend, Idle, Mixed};

    /// Drive `modes` as steps `last+1, last+2, ...`; returns the captured steps per window.
    fn run(set: &mut WindowSet, last: u64, modes: &[ForwardMode]) -> Vec<Vec<u64>> {
        let mut captured = vec![Vec::new(); set.windows.len()];
        for (i, &mode) in modes.iter().enumerate() {
            let ct = last + 1 + i as u64;
            let (_, target) = set.begin_step(ct, mode);
            if let Some(t) = target {
                captured[t].push(ct);
                set.end_step(ct, t);
            }
        }
        captured
    }

    #[test]
    fn start_step_and_num_steps_capture_exactly_n_from_start() {
        // The SGLang docs' example: start_step=3, num_steps=10 captures steps 3..=12.
        let mut set = WindowSet::new(Some(3), Some(10), None, 0);
        assert!(!set.any_open());
        let got = run(&mut set, 0, &[Decode; 20]);
        assert_eq!(got[0], (3..=12).collect::<Vec<_>>());
        assert!(set.all_closed());
    }

    #[test]
    fn start_step_in_the_past_means_next_step() {
        let mut set = WindowSet::new(Some(2), Some(3), None, 40);
        assert_eq!(set.start_ct, 41);
        let got = run(&mut set, 40, &[Extend, Decode, Decode, Decode, Decode]);
        assert_eq!(got[0], vec![41, 42, 43]);
    }

    #[test]
    fn immediate_start_captures_n_not_n_minus_one() {
        let mut set = WindowSet::new(None, Some(5), None, 7);
        assert!(set.any_open(), "opens at once without start_step");
        let got = run(&mut set, 7, &[Decode; 9]);
        assert_eq!(got[0], vec![8, 9, 10, 11, 12]);
        assert!(set.all_closed());
    }

    #[test]
    fn open_ended_until_stop() {
        let mut set = WindowSet::new(None, None, None, 0);
        let got = run(&mut set, 0, &[Extend, Decode, Idle, Decode]);
        assert_eq!(got[0], vec![1, 2, 3, 4]);
        assert!(!set.all_closed());
        assert_eq!(set.stop(), vec![0]);
        assert!(set.all_closed());
    }

    #[test]
    fn stop_before_start_step_cancels_without_a_file() {
        let mut set = WindowSet::new(Some(100), Some(5), None, 0);
        run(&mut set, 0, &[Decode; 5]);
        assert_eq!(set.stop(), Vec::<usize>::new());
        assert!(set.all_closed());
    }

    #[test]
    fn by_stage_separates_extend_and_decode() {
        let stages = [Stage::Extend, Stage::Decode];
        let mut set = WindowSet::new(None, Some(2), Some(&stages), 0);
        assert!(!set.any_open(), "stage windows wait for their first batch");
        let modes = [Extend, Decode, Idle, Mixed, Decode, Extend, Decode, Decode];
        let got = run(&mut set, 0, &modes);
        assert_eq!(
            got[0],
            vec![1, 4],
            "EXTEND window: prefill-like batches only"
        );
        assert_eq!(got[1], vec![2, 5], "DECODE window: decode batches only");
        assert!(set.all_closed());
    }

    #[test]
    fn by_stage_honours_selected_stages_and_start_step() {
        let stages = [Stage::Decode];
        let mut set = WindowSet::new(Some(3), Some(2), Some(&stages), 0);
        let got = run(
            &mut set,
            0,
            &[Extend, Decode, Extend, Decode, Decode, Decode],
        );
        assert_eq!(got[0], vec![4, 5]);
        assert!(set.all_closed());
    }

    #[test]
    fn by_stage_without_a_decode_batch_stays_armed_until_stop() {
        let stages = [Stage::Extend, Stage::Decode];
        let mut set = WindowSet::new(None, Some(1), Some(&stages), 0);
        run(&mut set, 0, &[Extend, Extend]);
        assert!(!set.all_closed());
        assert_eq!(
            set.stop(),
            Vec::<usize>::new(),
            "decode never opened: nothing to write"
        );
    }
}
