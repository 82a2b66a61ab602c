//! The span recorder the engine and the model call while a window is open.
//!
//! It lives on the engine thread (interior mutability, `&self` everywhere), so the model code can
//! take `&SpanRecorder` while the loop still owns the [`crate::ProfileManager`]. Every method
//! starts with one `Cell<bool>` check and returns at once when nothing is being recorded.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::event::{cat, Event, Kind};

/// Scheduler phase span names (SGLang-style), for [`SpanRecorder::span`].
pub mod phase {
    pub const SCHEDULE: &str = "schedule";
    pub const PREPARE_INPUTS: &str = "prepare_inputs";
    pub const FORWARD: &str = "forward";
    pub const SAMPLE: &str = "sample";
    pub const PROCESS_BATCH_RESULT: &str = "process_batch_result";
    pub const STREAM_OUT: &str = "stream_out";
}

/// SGLang's layerwise marker for one module call (`nvtx_pytorch_hooks.PytHooks`): becomes one
/// `cpu_op` span named after the module, with the marker fields as args.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModuleMarker {
    /// Qualified module name, e.g. `model.layers.3.self_attn.o_proj`.
    pub module: String,
    /// Shapes of the tensors passed in (`Inputs`).
    pub inputs: Vec<Vec<usize>>,
    /// Direct parameters and their shapes (`TrainableParams`), e.g. `("weight", [o, i])`.
    pub trainable_params: Vec<(&'static str, Vec<usize>)>,
    /// Constructor facts (`StaticParams`), e.g. `in_features`, `out_features`.
    pub static_params: Vec<(&'static str, Value)>,
}

impl ModuleMarker {
    fn into_args(self) -> Map<String, Value> {
        let mut args = Map::new();
        args.insert("Module".into(), Value::from(self.module));
        if !self.trainable_params.is_empty() {
            let params: Map<String, Value> = self
                .trainable_params
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::from(v)))
                .collect();
            args.insert("TrainableParams".into(), Value::Object(params));
        }
        if !self.inputs.is_empty() {
            // `Input Dims` is torch's record_shapes key; HTA expands it into a column.
            args.insert("Input Dims".into(), Value::from(self.inputs.clone()));
            args.insert("Inputs".into(), Value::from(self.inputs));
        }
        if !self.static_params.is_empty() {
            let params: Map<String, Value> = self
                .static_params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            args.insert("StaticParams".into(), Value::Object(params));
        }
        args
    }
}

/// Buffers the events of the current step (or of the gap between steps) for the manager.
#[derive(Debug, Default)]
pub struct SpanRecorder {
    recording: Cell<bool>,
    modules: Cell<bool>,
    with_stack: Cell<bool>,
    events: RefCell<Vec<Event>>,
    step_label: RefCell<Option<String>>,
    /// Args of the current step's `step[...]` span (its batch's rids and extend lengths).
    step_args: RefCell<Option<Map<String, Value>>>,
}

/// Closes its span when dropped. Does nothing when the recorder was not recording.
#[must_use = "the span ends when the guard is dropped"]
pub struct SpanGuard<'a> {
    open: Option<(&'a SpanRecorder, usize, Instant)>,
}

impl Drop for SpanGuard<'_> {
    fn drop(&mut self) {
        if let Some((rec, idx, start)) = self.open.take() {
            let dur = start.elapsed();
            if let Some(e) = rec.events.borrow_mut().get_mut(idx) {
                if e.start == start {
                    e.dur = dur;
                }
            }
        }
    }
}

impl SpanRecorder {
    /// True while some window records the current step (or the gap between steps).
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.recording.get()
    }

    /// True when per-module spans are wanted (recording, and `record_shapes` or the server's
    /// layerwise markers). Check it before formatting module names.
    #[inline]
    pub fn modules_enabled(&self) -> bool {
        self.recording.get() && self.modules.get()
    }

    /// A `user_annotation` span (scheduler phase or any named range) until the guard drops.
    #[track_caller]
    #[inline]
    pub fn span(&self, name: &'static str) -> SpanGuard<'_> {
        if !self.recording.get() {
            return SpanGuard { open: None };
        }
        self.open(
            Cow::Borrowed(name),
            cat::USER_ANNOTATION,
            None,
            Location::caller(),
        )
    }

    /// Like [`Self::span`] with a computed name and args; `build` runs only when recording.
    #[track_caller]
    #[inline]
    pub fn span_with(
        &self,
        build: impl FnOnce() -> (String, Option<Map<String, Value>>),
    ) -> SpanGuard<'_> {
        if !self.recording.get() {
            return SpanGuard { open: None };
        }
        let (name, args) = build();
        self.open(
            Cow::Owned(name),
            cat::USER_ANNOTATION,
            args,
            Location::caller(),
        )
    }

    /// SGLang's `step[...]` span around the model forward of the current step (the label was
    /// computed by `on_step_begin`).
    #[track_caller]
    #[inline]
    pub fn forward_span(&self) -> SpanGuard<'_> {
        if !self.recording.get() {
            return SpanGuard { open: None };
        }
        let label = self
            .step_label
            .borrow()
            .clone()
            .unwrap_or_else(|| "step".to_string());
        let args = self.step_args.borrow().clone();
        self.open(
            Cow::Owned(label),
            cat::USER_ANNOTATION,
            args,
            Location::caller(),
        )
    }

    /// One `cpu_op` span per module call, carrying SGLang's marker fields; `build` runs only
    /// when [`Self::modules_enabled`].
    #[track_caller]
    #[inline]
    pub fn module(&self, build: impl FnOnce() -> ModuleMarker) -> SpanGuard<'_> {
        if !self.modules_enabled() {
            return SpanGuard { open: None };
        }
        let marker = build();
        let name = Cow::Owned(marker.module.clone());
        self.open(
            name,
            cat::CPU_OP,
            Some(marker.into_args()),
            Location::caller(),
        )
    }

    /// A span measured by the caller (e.g. scheduling that happened before the step was known
    /// to be recorded).
    #[track_caller]
    pub fn record_span(&self, name: &'static str, start: Instant, end: Instant) {
        if !self.recording.get() {
            return;
        }
        let mut args = None;
        self.add_stack(&mut args, Location::caller());
        self.events.borrow_mut().push(Event {
            name: Cow::Borrowed(name),
            cat: cat::USER_ANNOTATION,
            kind: Kind::Complete,
            start,
            dur: end.saturating_duration_since(start),
            args,
        });
    }

    /// A module span measured by the caller (the engine reports module timings after the
    /// fact); recorded only when [`Self::modules_enabled`].
    #[track_caller]
    pub fn record_module(&self, marker: ModuleMarker, start: Instant, end: Instant) {
        if !self.modules_enabled() {
            return;
        }
        let name = Cow::Owned(marker.module.clone());
        let mut args = Some(marker.into_args());
        self.add_stack(&mut args, Location::caller());
        self.events.borrow_mut().push(Event {
            name,
            cat: cat::CPU_OP,
            kind: Kind::Complete,
            start,
            dur: end.saturating_duration_since(start),
            args,
        });
    }

    /// SGLang's `step[...]` span (see [`Self::forward_span`]) for a forward measured by the
    /// caller.
    #[track_caller]
    pub fn record_forward(&self, start: Instant, end: Instant) {
        if !self.recording.get() {
            return;
        }
        let label = self
            .step_label
            .borrow()
            .clone()
            .unwrap_or_else(|| "step".to_string());
        let mut args = self.step_args.borrow().clone();
        self.add_stack(&mut args, Location::caller());
        self.events.borrow_mut().push(Event {
            name: Cow::Owned(label),
            cat: cat::USER_ANNOTATION,
            kind: Kind::Complete,
            start,
            dur: end.saturating_duration_since(start),
            args,
        });
    }

    /// A counter sample (`ph: "C"`); each pair is one series of the counter track.
    pub fn counter(&self, name: &'static str, values: &[(&'static str, f64)]) {
        if !self.recording.get() {
            return;
        }
        let args: Map<String, Value> = values
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        self.push(
            Cow::Borrowed(name),
            cat::USER_ANNOTATION,
            Kind::Counter,
            Some(args),
        );
    }

    /// An instant event (`ph: "i"`), e.g. `retract` with the request id.
    pub fn instant(&self, name: &'static str, build_args: impl FnOnce() -> Map<String, Value>) {
        if !self.recording.get() {
            return;
        }
        self.push(
            Cow::Borrowed(name),
            cat::CPU_INSTANT,
            Kind::Instant,
            Some(build_args()),
        );
    }

    /// A request-track event (`ph` `b`/`n`/`e` per `kind`) at `at`, with `args`.
    pub(crate) fn request_event(
        &self,
        name: Cow<'static, str>,
        kind: Kind,
        at: Instant,
        args: Map<String, Value>,
    ) {
        if !self.recording.get() {
            return;
        }
        self.events.borrow_mut().push(Event {
            name,
            cat: cat::REQUEST,
            kind,
            start: at,
            dur: Duration::ZERO,
            args: Some(args),
        });
    }

    fn push(
        &self,
        name: Cow<'static, str>,
        cat: &'static str,
        kind: Kind,
        args: Option<Map<String, Value>>,
    ) {
        self.events.borrow_mut().push(Event {
            name,
            cat,
            kind,
            start: Instant::now(),
            dur: Duration::ZERO,
            args,
        });
    }

    fn add_stack(&self, args: &mut Option<Map<String, Value>>, loc: &Location<'_>) {
        if self.with_stack.get() {
            args.get_or_insert_with(Map::new).insert(
                "Call stack".into(),
                Value::from(format!("{}:{}", loc.file(), loc.line())),
            );
        }
    }

    fn open(
        &self,
        name: Cow<'static, str>,
        cat: &'static str,
        mut args: Option<Map<String, Value>>,
        loc: &Location<'_>,
    ) -> SpanGuard<'_> {
        self.add_stack(&mut args, loc);
        let start = Instant::now();
        let mut events = self.events.borrow_mut();
        let idx = events.len();
        events.push(Event {
            name,
            cat,
            kind: Kind::Complete,
            start,
            dur: Duration::ZERO,
            args,
        });
        SpanGuard {
            open: Some((self, idx, start)),
        }
    }

    // ---- manager side ----

    pub(crate) fn configure(&self, modules: bool, with_stack: bool) {
        self.modules.set(modules);
        self.with_stack.set(with_stack);
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.set(on);
    }

    pub(crate) fn set_step_label(&self, label: Option<String>) {
        *self.step_label.borrow_mut() = label;
    }

    /// Args for the current step's `step[...]` span (`None` clears them).
    pub(crate) fn set_step_args(&self, args: Option<Map<String, Value>>) {
        *self.step_args.borrow_mut() = args;
    }

    /// Push an event directly (the manager's `ProfilerStep#N`); returns its index.
    pub(crate) fn push_event(&self, event: Event) -> usize {
        let mut events = self.events.borrow_mut();
        events.push(event);
        events.len() - 1
    }

    pub(crate) fn set_duration(&self, idx: usize, dur: Duration) {
        if let Some(e) = self.events.borrow_mut().get_mut(idx) {
            e.dur = dur;
        }
    }

    pub(crate) fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.borrow_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_recorded_when_off() {
        let rec = SpanRecorder::default();
        {
            let _a = rec.span(phase::SCHEDULE);
            let _m = rec.module(|| panic!("must not build a marker when off"));
            rec.counter("kv_cache", &[("used", 1.0)]);
            rec.instant("retract", || panic!("must not build args when off"));
        }
        assert!(rec.take().is_empty());
    }

    #[test]
    fn nested_spans_keep_parent_first_and_cover_children() {
        let rec = SpanRecorder::default();
        rec.configure(true, true);
        rec.set_recording(true);
        {
            let _outer = rec.span(phase::FORWARD);
            let _inner = rec.module(|| ModuleMarker {
                module: "model.layers.0.mlp.down_proj".into(),
                inputs: vec![vec![8, 64]],
                trainable_params: vec![("weight", vec![32, 64])],
                static_params: vec![("in_features", 64.into()), ("out_features", 32.into())],
            });
        }
        let events = rec.take();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].name, "forward");
        assert_eq!(events[1].name, "model.layers.0.mlp.down_proj");
        assert_eq!(events[1].cat, "cpu_op");
        let outer_end = events[0].start + events[0].dur;
        let inner_end = events[1].start + events[1].dur;
        assert!(events[0].start <= events[1].start && inner_end <= outer_end);
        let args = events[1].args.as_ref().unwrap();
        assert_eq!(args["Module"], "model.layers.0.mlp.down_proj");
        assert_eq!(args["Inputs"], serde_json::json!([[8, 64]]));
        assert_eq!(
            args["TrainableParams"],
            serde_json::json!({"weight": [32, 64]})
        );
        assert_eq!(args["StaticParams"]["out_features"], 32);
        let stack = args["Call stack"].as_str().unwrap();
        assert!(stack.contains("recorder.rs:"), "{stack}");
    }

    #[test]
    fn modules_need_their_own_switch() {
        let rec = SpanRecorder::default();
        rec.configure(false, false);
        rec.set_recording(true);
        drop(rec.module(|| panic!("modules are off")));
        drop(rec.span("x"));
        let events = rec.take();
        assert_eq!(events.len(), 1);
        assert!(events[0].args.is_none());
    }
}
