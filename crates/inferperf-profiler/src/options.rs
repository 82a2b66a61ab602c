//! Turning a `ProfileReqInput` into a validated, fully resolved [`ProfileStart`]: defaults,
//! environment variables, output directory, profile id.

use std::path::{Path, PathBuf};

use inferperf_protocol::profile::ProfileReqInput;

use crate::activity::{parse_activities, Activities};
use crate::error::ProfileError;
use crate::naming::{merged_file_name, new_profile_id, trace_file_name, RankInfo, Stage};
use crate::output_root::OutputRoot;

/// Longest `[profile_prefix-]profile_id`, in bytes: a file name may have 255 bytes on Linux
/// and macOS file systems, and the profiler adds up to 64 around it (rank and stage suffixes
/// such as `-TP-12-DP-3-PP-1-EP-7-EXTEND`, `.trace.json.gz`, `merged-`).
pub const MAX_NAME_STEM_BYTES: usize = 255 - 64;

/// Server-side defaults that SGLang reads from the environment. Read once with
/// [`EnvDefaults::from_env`]; tests build it directly instead of mutating the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDefaults {
    /// `SGLANG_TORCH_PROFILER_DIR`.
    pub profiler_dir: Option<String>,
    /// `SGLANG_PROFILE_WITH_STACK` (default true).
    pub with_stack: bool,
    /// `SGLANG_PROFILE_RECORD_SHAPES` (default true, as in newer SGLang).
    pub record_shapes: bool,
    /// `$HOME`, for `~` expansion.
    pub home: Option<PathBuf>,
}

impl Default for EnvDefaults {
    fn default() -> Self {
        Self {
            profiler_dir: None,
            with_stack: true,
            record_shapes: true,
            home: None,
        }
    }
}

impl EnvDefaults {
    /// Read SGLang's variables. Booleans are true when the lower-cased value is `true` or `1`
    /// (SGLang's rule); unset means the default.
    pub fn from_env() -> Self {
        let flag = |name: &str, default: bool| match std::env::var(name) {
            Ok(v) => matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"),
            Err(_) => default,
        };
        Self {
            profiler_dir: std::env::var("SGLANG_TORCH_PROFILER_DIR")
                .ok()
                .filter(|s| !s.is_empty()),
            with_stack: flag("SGLANG_PROFILE_WITH_STACK", true),
            record_shapes: flag("SGLANG_PROFILE_RECORD_SHAPES", true),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// A validated profiling request, shared by every rank of the server (one profile id, one
/// directory). Built once by the front end with [`ProfileStart::resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileStart {
    /// `str(time.time())` at resolution, or the caller's `profile_id`.
    pub profile_id: String,
    /// Absolute, `~`-expanded, created and checked writable.
    pub output_dir: PathBuf,
    pub activities: Activities,
    /// Absolute first step (inclusive); `None` means the next step.
    pub start_step: Option<u64>,
    /// Steps per window; `None` means until stop.
    pub num_steps: Option<u64>,
    /// `None`: one window for all batches. `Some(stages)`: one window per listed stage.
    pub stages: Option<Vec<Stage>>,
    /// Record the caller's source location on each span.
    pub with_stack: bool,
    /// Per-module spans with input shapes (like torch's `record_shapes` + layerwise markers).
    pub record_shapes: bool,
    pub merge_profiles: bool,
    pub profile_prefix: Option<String>,
    /// Fold roofline aggregates into `step[...]` names.
    pub roofline: bool,
}

impl ProfileStart {
    /// Validate and resolve a request.
    ///
    /// Defaults: activities CPU (see [`parse_activities`]); `with_stack` true unless the request
    /// or `SGLANG_PROFILE_WITH_STACK` says false; `record_shapes` true unless the request or
    /// `SGLANG_PROFILE_RECORD_SHAPES` says false (newer SGLang); `roofline_annotations` true
    /// (the aggregates are cheap here, and the base label stays a prefix of the name);
    /// `profile_stages` defaults to both stages.
    ///
    /// The output directory is created (`mkdir -p`) and probed for writability now, so that a
    /// bad directory is a 4xx on `/start_profile` rather than a lost trace at stop.
    pub fn resolve(req: &ProfileReqInput, env: &EnvDefaults) -> Result<Self, ProfileError> {
        Self::resolve_within(req, env, None)
    }

    /// [`ProfileStart::resolve`] confined to `root` (`--profile-output-root`) when given: a
    /// relative `output_dir` is taken relative to the root, no `output_dir` (and no
    /// `SGLANG_TORCH_PROFILER_DIR`) means the root itself, and a directory that resolves
    /// outside the root (through `..` or symlinks) is refused before anything is created.
    pub fn resolve_within(
        req: &ProfileReqInput,
        env: &EnvDefaults,
        root: Option<&OutputRoot>,
    ) -> Result<Self, ProfileError> {
        let activities = parse_activities(req.activities.as_deref())?;
        if req.num_steps == Some(0) {
            return Err(ProfileError::ZeroSteps);
        }
        let stages = match (&req.profile_stages, req.profile_by_stage) {
            (Some(_), false) => return Err(ProfileError::StagesWithoutByStage),
            (None, false) => None,
            (None, true) => Some(vec![Stage::Extend, Stage::Decode]),
            (Some(list), true) => {
                let mut stages = Vec::new();
                for s in list {
                    let stage =
                        Stage::parse(s).ok_or_else(|| ProfileError::UnknownStage(s.clone()))?;
                    if !stages.contains(&stage) {
                        stages.push(stage);
                    }
                }
                stages.sort();
                Some(stages)
            }
        };
        if let Some(stages) = &stages {
            if stages.is_empty() {
                return Err(ProfileError::UnknownStage(String::new()));
            }
        }
        let profile_id = match &req.profile_id {
            Some(id) if !id.is_empty() => {
                check_name("profile_id", id)?;
                id.clone()
            }
            _ => new_profile_id(),
        };
        let prefix = req.profile_prefix.as_deref().filter(|p| !p.is_empty());
        if let Some(prefix) = prefix {
            check_name("profile_prefix", prefix)?;
        }
        check_stem_len(prefix, &profile_id)?;
        let dir_text = req
            .output_dir
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| env.profiler_dir.clone());
        let output_dir = match (dir_text, root) {
            (Some(text), Some(root)) => root.confine(&expand_tilde(&text, env.home.as_deref()))?,
            (None, Some(root)) => root.path().to_path_buf(),
            (Some(text), None) => expand_tilde(&text, env.home.as_deref()),
            (None, None) => PathBuf::from("/tmp"),
        };
        let output_dir = prepare_output_dir(&output_dir)?;
        Ok(Self {
            profile_id,
            output_dir,
            activities,
            start_step: req.start_step,
            num_steps: req.num_steps,
            stages,
            with_stack: req.with_stack != Some(false) && env.with_stack,
            record_shapes: req.record_shapes != Some(false) && env.record_shapes,
            merge_profiles: req.merge_profiles,
            profile_prefix: req.profile_prefix.clone().filter(|p| !p.is_empty()),
            roofline: req.roofline_annotations.unwrap_or(true),
        })
    }

    /// Every rank trace this session would write for `ranks` (one per rank and stage window),
    /// plus the merged file when `merge_profiles` is on.
    pub fn trace_files(&self, ranks: &[RankInfo]) -> Vec<PathBuf> {
        let stages: Vec<Option<Stage>> = match &self.stages {
            None => vec![None],
            Some(stages) => stages.iter().copied().map(Some).collect(),
        };
        let mut files: Vec<PathBuf> = ranks
            .iter()
            .flat_map(|rank| {
                stages.iter().map(move |&stage| {
                    let prefix = self.profile_prefix.as_deref();
                    self.output_dir
                        .join(trace_file_name(prefix, &self.profile_id, rank, stage))
                })
            })
            .collect();
        if self.merge_profiles {
            files.push(self.output_dir.join(merged_file_name(&self.profile_id)));
        }
        files
    }

    /// Refuse a session whose traces would replace existing files ([`ProfileError::TraceExists`]
    /// naming the first), so that a reused `profile_id` fails at start, not at stop.
    pub fn check_no_existing_traces(&self, ranks: &[RankInfo]) -> Result<(), ProfileError> {
        match self.trace_files(ranks).into_iter().find(|p| p.exists()) {
            Some(path) => Err(ProfileError::TraceExists { path }),
            None => Ok(()),
        }
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), ProfileError> {
    let reason = if value.contains('/') || value.contains('\\') {
        "must not contain a path separator"
    } else if value == ".." {
        "must not be `..`"
    } else if value.contains('\0') {
        "must not contain a NUL byte"
    } else {
        return Ok(());
    };
    Err(ProfileError::BadName {
        field,
        value: value.to_string(),
        reason,
    })
}

/// `[prefix-]profile_id` must fit [`MAX_NAME_STEM_BYTES`]; the error names the field that
/// makes it too long.
fn check_stem_len(prefix: Option<&str>, profile_id: &str) -> Result<(), ProfileError> {
    let max = MAX_NAME_STEM_BYTES;
    if profile_id.len() > max {
        return Err(ProfileError::NameTooLong {
            field: "profile_id",
            len: profile_id.len(),
            max,
        });
    }
    match prefix {
        Some(p) if p.len() + 1 + profile_id.len() > max => Err(ProfileError::NameTooLong {
            field: "profile_prefix",
            len: p.len() + 1 + profile_id.len(),
            max,
        }),
        _ => Ok(()),
    }
}

/// `~` and `~/...` become `$HOME` and `$HOME/...` (Python's `os.path.expanduser` for the
/// current user); anything else is returned unchanged.
pub fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (path, home) {
        ("~", Some(home)) => home.to_path_buf(),
        (p, Some(home)) if p.starts_with("~/") => home.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// `mkdir -p`, make absolute, and prove we can create a file there.
fn prepare_output_dir(dir: &Path) -> Result<PathBuf, ProfileError> {
    let err = |source| ProfileError::OutputDir {
        path: dir.to_path_buf(),
        error: source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let abs = std::path::absolute(dir).map_err(err)?;
    let probe = abs.join(format!(
        ".inferperf-write-probe-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::File::create(&probe).map_err(err)?;
    // The probe proved writability; failing to remove it is not worth failing the request.
    let _ = std::fs::remove_file(&probe);
    Ok(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &Path) -> EnvDefaults {
        EnvDefaults {
            profiler_dir: Some(dir.to_string_lossy().into_owned()),
            ..EnvDefaults::default()
        }
    }

    #[test]
    fn defaults_from_an_empty_request() {
        let tmp = tempfile::tempdir().unwrap();
        let s = ProfileStart::resolve(&ProfileReqInput::default(), &env_with(tmp.path())).unwrap();
        assert_eq!(s.output_dir, tmp.path());
        assert!(s.activities.cpu && !s.activities.mem);
        assert!(s.with_stack && s.record_shapes && s.roofline);
        assert_eq!(s.stages, None);
        assert_eq!(s.num_steps, None);
        assert!(s.profile_id.parse::<f64>().is_ok());
    }

    #[test]
    fn request_dir_wins_and_is_created() {
        let tmp = tempfile::tempdir().unwrap();
        let want = tmp.path().join("a/b");
        let req = ProfileReqInput {
            output_dir: Some(want.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let s = ProfileStart::resolve(&req, &env_with(Path::new("/nonexistent-env-dir"))).unwrap();
        assert_eq!(s.output_dir, want);
        assert!(want.is_dir());
    }

    #[test]
    fn tilde_is_expanded() {
        let home = Path::new("/home/u");
        assert_eq!(expand_tilde("~", Some(home)), home);
        assert_eq!(expand_tilde("~/t", Some(home)), home.join("t"));
        assert_eq!(expand_tilde("/x/~", Some(home)), Path::new("/x/~"));
        let tmp = tempfile::tempdir().unwrap();
        let env = EnvDefaults {
            home: Some(tmp.path().to_path_buf()),
            ..EnvDefaults::default()
        };
        let req = ProfileReqInput {
            output_dir: Some("~/traces".into()),
            ..Default::default()
        };
        let s = ProfileStart::resolve(&req, &env).unwrap();
        assert_eq!(s.output_dir, tmp.path().join("traces"));
    }

    #[test]
    fn unwritable_dir_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let req = ProfileReqInput {
            output_dir: Some(file.join("sub").to_string_lossy().into_owned()),
            ..Default::default()
        };
        let err = ProfileStart::resolve(&req, &EnvDefaults::default()).unwrap_err();
        assert!(matches!(err, ProfileError::OutputDir { .. }), "{err}");
        assert!(err.to_string().contains("is not writable"));
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn flags_env_and_request() {
        let tmp = tempfile::tempdir().unwrap();
        let mut env = env_with(tmp.path());
        let req = ProfileReqInput {
            with_stack: Some(false),
            ..Default::default()
        };
        let s = ProfileStart::resolve(&req, &env).unwrap();
        assert!(!s.with_stack && s.record_shapes);
        env.record_shapes = false;
        let req = ProfileReqInput {
            record_shapes: Some(true),
            roofline_annotations: Some(false),
            ..Default::default()
        };
        let s = ProfileStart::resolve(&req, &env).unwrap();
        assert!(!s.record_shapes && !s.roofline);
    }

    #[test]
    fn stages_and_validation_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let env = env_with(tmp.path());
        let by_stage = |stages: Option<Vec<&str>>| ProfileReqInput {
            profile_by_stage: true,
            profile_stages: stages.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        };
        let s = ProfileStart::resolve(&by_stage(None), &env).unwrap();
        assert_eq!(s.stages, Some(vec![Stage::Extend, Stage::Decode]));
        let s = ProfileStart::resolve(&by_stage(Some(vec!["decode"])), &env).unwrap();
        assert_eq!(s.stages, Some(vec![Stage::Decode]));
        let err = ProfileStart::resolve(&by_stage(Some(vec!["verify"])), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile stage \"verify\"; expected prefill (EXTEND) or decode (DECODE)"
        );
        let req = ProfileReqInput {
            profile_stages: Some(vec!["decode".into()]),
            ..Default::default()
        };
        assert!(matches!(
            ProfileStart::resolve(&req, &env).unwrap_err(),
            ProfileError::StagesWithoutByStage
        ));
        let req = ProfileReqInput {
            num_steps: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            ProfileStart::resolve(&req, &env).unwrap_err(),
            ProfileError::ZeroSteps
        ));
        let req = ProfileReqInput {
            profile_prefix: Some("../x".into()),
            ..Default::default()
        };
        assert!(matches!(
            ProfileStart::resolve(&req, &env).unwrap_err(),
            ProfileError::BadName { .. }
        ));
    }
}
