//! `deploy/kubernetes/`: every manifest is a valid Kubernetes resource (schemas of
//! `common::deploy::KUBERNETES_VERSION`, PyPI `kubernetes-validate` in the test venv), the
//! shard and merge Jobs' command lines fit together (sharding from the Job index, records in
//! the directory the merge reads), and, where `kubectl` is installed, the kustomization and
//! `launch.sh` render.

mod common;

use std::path::Path;
use std::process::Command;

use common::deploy::{self, flag_value, MERGE_JOB, SHARD_JOB};
use serde_json::Value;

/// `kubernetes-validate --strict` on `files`; every document must be checked against a schema
/// and pass (an unknown kind is only a warning for the tool, so it fails here).
fn validate(files: &[&Path]) {
    let out = Command::new(inferperf_test_support::venv_python())
        .args(["-m", "kubernetes_validate", "--strict", "-k"])
        .arg(deploy::KUBERNETES_VERSION)
        .args(files)
        .output()
        .expect("run kubernetes-validate from the test venv");
    let text = common::text(&out);
    assert!(out.status.success(), "kubernetes-validate failed:\n{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stdout.lines().chain(stderr.lines()) {
        assert!(
            !line.starts_with("WARN") && !line.starts_with("ERROR"),
            "kubernetes-validate: {line}\n{text}"
        );
    }
    let documents: usize = files.iter().map(|f| deploy::read_manifest(f).len()).sum();
    let passed = stdout
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(
        passed, documents,
        "every resource must be validated against a schema:\n{text}"
    );
}

#[test]
fn deploy_manifests_validate_against_kubernetes_schemas() {
    let files = deploy::resource_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["shard-job.yaml", "merge-job.yaml", "results-pvc.yaml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing in {names:?}"
        );
    }
    // Every YAML file is either a kustomization or resources; nothing is left unchecked.
    for f in &files {
        for doc in deploy::read_manifest(f) {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{}: a document without apiVersion/kind",
                f.display()
            );
        }
    }
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    validate(&refs);
}

#[test]
fn deploy_command_lines_shard_by_job_index_into_the_directory_the_merge_reads() {
    let shard = deploy::job_command_line(SHARD_JOB);
    let merge = deploy::job_command_line(MERGE_JOB);
    assert_eq!(shard[..3], ["inferperf", "bench", "serving"], "{shard:?}");
    assert_eq!(merge[..3], ["inferperf", "bench", "merge"], "{merge:?}");

    // The shard index comes from the Indexed Job; the count from the parameters.
    assert!(
        shard.iter().any(|a| a == "--shard-index-from-env"),
        "{shard:?}"
    );
    assert!(!shard.iter().any(|a| a == "--shard-index"), "{shard:?}");
    assert_eq!(flag_value(&shard, "--num-shards"), Some("$(NUM_SHARDS)"));
    assert_eq!(flag_value(&shard, "--start-at"), Some("$(START_AT)"));
    assert_eq!(flag_value(&shard, "--seed"), Some("$(SEED)"));
    let records = flag_value(&shard, "--save-records").expect("--save-records");
    assert!(records.contains("{shard}"), "{records}");
    assert!(
        records.ends_with(".records.jsonl"),
        "{records}: merge reads *.records.jsonl"
    );

    // The merge reads the directory the shards write into, on the same volume.
    let records_dir = Path::new(records).parent().unwrap().to_str().unwrap();
    let merge_inputs: Vec<&String> = merge[3..]
        .iter()
        .scan(false, |after_flag, a| {
            let keep = !*after_flag && !a.starts_with('-');
            *after_flag = a == "--output-file" || a == "-o";
            Some((keep, a))
        })
        .filter_map(|(keep, a)| keep.then_some(a))
        .collect();
    assert_eq!(merge_inputs, [records_dir], "{merge:?}");
    let output = flag_value(&merge, "--output-file").expect("merge --output-file");
    assert_eq!(Path::new(output).parent().unwrap(), Path::new(records_dir));
    assert!(
        !output.ends_with(".records.jsonl"),
        "{output}: a later merge would read it as a shard"
    );
    let shard_job = deploy::resource("Job", SHARD_JOB);
    let merge_job = deploy::resource("Job", MERGE_JOB);
    let mount = |job: &Value| -> (Value, Value) {
        let m = deploy::job_container(job)["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| records_dir.starts_with(m["mountPath"].as_str().unwrap()))
            .cloned()
            .unwrap_or_else(|| panic!("no volume mounted at {records_dir}"));
        let volume = job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == m["name"])
            .cloned()
            .expect("the mounted volume");
        (m, volume)
    };
    let (shard_mount, shard_volume) = mount(&shard_job);
    let (merge_mount, merge_volume) = mount(&merge_job);
    assert_eq!(shard_mount, merge_mount);
    assert_eq!(shard_volume, merge_volume);
    let claim = shard_volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .expect("the results volume is a PVC");
    let pvc = deploy::resource("PersistentVolumeClaim", claim);
    assert_eq!(
        pvc["spec"]["accessModes"],
        serde_json::json!(["ReadWriteMany"])
    );

    // Every parameter the command lines use exists, and resolves locally to one directory.
    let params = deploy::params();
    for a in shard.iter().chain(&merge) {
        for name in deploy::references(a) {
            assert!(params.contains_key(&name), "$({name}) is not in params.env");
        }
    }
    let root = tempfile::tempdir().unwrap();
    let local = deploy::local_command_lines(root.path(), &[("RUN_ID", "run-test")]);
    let local_records = flag_value(&local.shard, "--save-records").unwrap();
    let local_dir = Path::new(local_records).parent().unwrap();
    assert!(
        local_dir.starts_with(root.path()) && local_dir.is_dir(),
        "{local_dir:?}"
    );
    assert!(
        local_dir.ends_with("run-test"),
        "{local_dir:?}: sub-path RUN_ID"
    );
    assert!(
        local.merge.iter().any(|a| Path::new(a) == local_dir),
        "{local:?}"
    );
    assert!(
        local
            .shard
            .iter()
            .chain(&local.merge)
            .all(|a| !a.contains("$(")),
        "{local:?}"
    );

    // Sharding: Indexed, one pod per shard, no silent retry of a shard.
    let spec = &shard_job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n: u64 = params["NUM_SHARDS"].parse().expect("NUM_SHARDS");
    assert_eq!(spec["completions"], n);
    assert_eq!(spec["parallelism"], n);
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    for job in [&shard_job, &merge_job] {
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = deploy::job_container(job);
        for k in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(c["resources"][k][r].is_string(), "{k}.{r} of {}", c["name"]);
            }
        }
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    }
}

/// `kubectl` on PATH; CI does not need it, so the tests that use it say so and pass without it.
fn kubectl() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("note: kubectl is not on PATH; the kustomize rendering is not checked");
    }
    found
}

#[test]
fn deploy_kustomization_renders_with_the_parameters_in_place() {
    if !kubectl() {
        return;
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy::deploy_dir())
        .output()
        .expect("run kubectl kustomize");
    assert!(out.status.success(), "{}", common::text(&out));
    let rendered = String::from_utf8(out.stdout).unwrap();
    let docs = deploy::parse_yaml(&rendered);
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the generated ConfigMap");
    let config_name = config["metadata"]["name"].as_str().unwrap();
    assert!(
        config_name.starts_with("inferperf-params-"),
        "{config_name}"
    );
    for (k, v) in deploy::params() {
        assert_eq!(config["data"][&k], v, "ConfigMap data {k}");
    }
    let n: u64 = deploy::params()["NUM_SHARDS"].parse().unwrap();
    for name in [SHARD_JOB, MERGE_JOB] {
        let job = docs
            .iter()
            .find(|d| d["kind"] == "Job" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} rendered"));
        let c = deploy::job_container(job);
        assert_eq!(c["envFrom"][0]["configMapRef"]["name"], config_name);
        assert!(c["image"].as_str().unwrap().contains(':'), "{}", c["image"]);
        if name == SHARD_JOB {
            // The replacement keeps the count a number.
            assert_eq!(job["spec"]["completions"], n);
            assert_eq!(job["spec"]["parallelism"], n);
        }
    }
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), &rendered).unwrap();
    validate(&[file.path()]);
}

#[test]
fn deploy_launch_sh_sets_start_time_and_run_id() {
    if !kubectl() {
        return;
    }
    let out = Command::new(deploy::deploy_dir().join("launch.sh"))
        .env("RENDER_ONLY", "1")
        .env("RUN_ID", "run-from-test")
        .env("START_MARGIN_SEC", "90")
        .output()
        .expect("run launch.sh");
    assert!(out.status.success(), "{}", common::text(&out));
    let docs = deploy::parse_yaml(&String::from_utf8(out.stdout).unwrap());
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the ConfigMap");
    assert_eq!(config["data"]["RUN_ID"], "run-from-test");
    let start = config["data"]["START_AT"].as_str().unwrap();
    assert_ne!(
        start,
        deploy::params()["START_AT"],
        "launch.sh must set START_AT"
    );
    // RFC 3339 in UTC, to the second.
    let b = start.as_bytes();
    assert!(
        b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z',
        "{start}"
    );
    // Every other parameter is the one in params.env.
    for (k, v) in deploy::params() {
        if k != "RUN_ID" && k != "START_AT" {
            assert_eq!(config["data"][&k], v, "{k}");
        }
    }
    // A RUN_ID that is not a plain directory name is refused before anything is applied.
    let bad = Command::new(deploy::deploy_dir().join("launch.sh"))
        .env("RENDER_ONLY", "1")
        .env("RUN_ID", "../other")
        .output()
        .expect("run launch.sh");
    assert!(!bad.status.success(), "{}", common::text(&bad));
}
