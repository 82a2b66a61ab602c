//! The Kubernetes deployment (`deploy/kubernetes/`) as tests see it: its manifests parsed into
//! JSON (PyYAML in the test venv, so no YAML crate), its parameters (`params.env`), and the
//! shard Job's and merge Job's container command lines, raw or resolved for a local run.
//!
//! A local run executes *the same command lines* as the pods: [`local_command_lines`]
//! substitutes `$(NAME)` as the kubelet does (from the `inferperf-params` ConfigMap, i.e.
//! `params.env`, plus overrides) and maps each volume's mount path to a local directory, so a
//! test can start one shard process per index with `JOB_COMPLETION_INDEX` set, then the merge.
//!
//! ```text
//! let dir = tempfile::tempdir().unwrap();
//! let c = deploy::local_command_lines(dir.path(), &[("BASE_URL", &url), ("START_AT", &start)]);
//! let n: usize = c.params["NUM_SHARDS"].parse().unwrap();
//! let shards: Vec<_> = (0..n)
//!     .map(|i| Command::new(env!("CARGO_BIN_EXE_inferperf")).args(&c.shard[1..])
//!         .env("JOB_COMPLETION_INDEX", i.to_string()).spawn().unwrap())
//!     .collect();
//! // wait for every shard, then:
//! Command::new(env!("CARGO_BIN_EXE_inferperf")).args(&c.merge[1..]).output()
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Name of the Indexed Job that runs the shards.
pub const SHARD_JOB: &str = "inferperf-shards";
/// Name of the Job that merges the shards' records.
pub const MERGE_JOB: &str = "inferperf-merge";
/// The Kubernetes version the manifests are validated against (named in
/// `deploy/kubernetes/README.md`).
pub const KUBERNETES_VERSION: &str = "1.30.0";

/// `deploy/kubernetes/` of this checkout.
pub fn deploy_dir() -> PathBuf {
    let dir = inferperf_test_support::manifest_dir!().join("../../deploy/kubernetes");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    dir
}

/// Every YAML file under `deploy/kubernetes/` (sorted), `kustomization.yaml` included.
pub fn yaml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&deploy_dir(), &mut files);
    files.sort();
    files
}

/// The Kubernetes resource files: every YAML file but the kustomizations.
pub fn resource_files() -> Vec<PathBuf> {
    yaml_files()
        .into_iter()
        .filter(|p| {
            !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("kustomization.yaml" | "kustomization.yml")
            )
        })
        .collect()
}

/// Every document of a YAML text, as JSON (empty documents dropped).
pub fn parse_yaml(text: &str) -> Vec<Value> {
    let mut child = Command::new(inferperf_test_support::venv_python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the venv's python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write YAML to python");
    let out = child.wait_with_output().expect("python parsing YAML");
    assert!(
        out.status.success(),
        "PyYAML could not parse the YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("python printed JSON") {
        Value::Array(docs) => docs,
        other => panic!("expected a list of documents, got {other}"),
    }
}

/// Every document of a YAML file, as JSON.
pub fn read_manifest(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    parse_yaml(&text)
}

/// Every resource of every resource file.
pub fn resources() -> Vec<Value> {
    resource_files()
        .iter()
        .flat_map(|f| read_manifest(f))
        .collect()
}

/// The resource of `kind` named `name`, from the files under `deploy/kubernetes/`.
pub fn resource(kind: &str, name: &str) -> Value {
    let found: Vec<Value> = resources()
        .into_iter()
        .filter(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} {name} under deploy/kubernetes/"
    );
    found.into_iter().next().unwrap()
}

/// The one container of a Job's pod template.
pub fn job_container(job: &Value) -> &Value {
    let containers = job["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container per Job pod");
    &containers[0]
}

/// `params.env`: the run's parameters (the `inferperf-params` ConfigMap).
pub fn params() -> BTreeMap<String, String> {
    let file = deploy_dir().join("params.env");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("params.env: not NAME=VALUE: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A Job's container `command` followed by its `args`, exactly as the manifest writes them.
pub fn job_command_line(job_name: &str) -> Vec<String> {
    let job = resource("Job", job_name);
    let c = job_container(&job);
    ["command", "args"]
        .iter()
        .flat_map(|k| c[*k].as_array().cloned().unwrap_or_default())
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{job_name}: non-string command item {v}"))
                .to_string()
        })
        .collect()
}

/// `$(NAME)` references in `s`, in order.
pub fn references(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                out.push(after[..j].to_string());
                rest = &after[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// `s` with every `$(NAME)` replaced from `vars`, as the kubelet expands command, args and
/// `subPathExpr`; a reference to a variable `vars` lacks is a test failure (the kubelet would
/// leave it as literal text in the command line).
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    for name in references(s) {
        let value = vars
            .get(&name)
            .unwrap_or_else(|| panic!("$({name}) in {s:?} is not a parameter"));
        out = out.replacen(&format!("$({name})"), value, 1);
    }
    out
}

/// The shard's and the merge's command lines for a local run.
#[derive(Debug, Clone)]
pub struct LocalCommands {
    /// argv of one shard, `inferperf` first; run it once per index with
    /// `JOB_COMPLETION_INDEX` set (0..`NUM_SHARDS`).
    pub shard: Vec<String>,
    /// argv of the merge, `inferperf` first; run it after every shard exited.
    pub merge: Vec<String>,
    /// The parameters used (`params.env` with the overrides applied).
    pub params: BTreeMap<String, String>,
    /// Local directory each of the shard container's mount paths became.
    pub shard_mounts: BTreeMap<String, PathBuf>,
    /// Local directory each of the merge container's mount paths became.
    pub merge_mounts: BTreeMap<String, PathBuf>,
}

/// The manifests' command lines resolved for a run on this machine: `$(NAME)` substituted
/// from `params.env` with `overrides` on top (e.g. `BASE_URL`, `START_AT`, `NUM_PROMPTS`),
/// and every path under a container's volume mount moved to
/// `local_root/<volume name>/<expanded subPathExpr>` (created, as the kubelet creates a
/// sub-path). Volumes the shard and the merge share map to the same directory.
pub fn local_command_lines(local_root: &Path, overrides: &[(&str, &str)]) -> LocalCommands {
    let mut vars = params();
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    let resolve = |job_name: &str| {
        let job = resource("Job", job_name);
        let container = job_container(&job);
        let mut mounts = BTreeMap::new();
        for m in container["volumeMounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let mount_path = m["mountPath"].as_str().expect("mountPath").to_string();
            let mut dir = local_root.join(m["name"].as_str().expect("volume name"));
            for key in ["subPath", "subPathExpr"] {
                if let Some(sub) = m[key].as_str() {
                    dir = dir.join(expand(sub, &vars));
                }
            }
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            mounts.insert(mount_path, dir);
        }
        let argv = job_command_line(job_name)
            .iter()
            .map(|a| {
                let a = expand(a, &vars);
                for (mount_path, dir) in &mounts {
                    if a == *mount_path {
                        return dir.display().to_string();
                    }
                    if let Some(rest) = a.strip_prefix(&format!("{mount_path}/")) {
                        return dir.join(rest).display().to_string();
                    }
                }
                a
            })
            .collect::<Vec<_>>();
        (argv, mounts)
    };
    let (shard, shard_mounts) = resolve(SHARD_JOB);
    let (merge, merge_mounts) = resolve(MERGE_JOB);
    LocalCommands {
        shard,
        merge,
        params: vars,
        shard_mounts,
        merge_mounts,
    }
}

/// The value after `flag` in a command line (`--flag VALUE` or `--flag=VALUE`).
pub fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    let eq = format!("{flag}=");
    argv.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            argv.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix(&eq)
        }
    })
}
