//! `--upload-results URL`: copy an experiment folder to an object store through the
//! `object_store` crate. `file://` works in every build; `s3://`, `gs://` and `az://` need the
//! `cloud-upload` cargo feature (their SDK dependencies are heavy), and say so when missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use inferperf_loadgen::error::BenchError;

fn files_under(dir: &Path) -> Result<Vec<PathBuf>, BenchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .map_err(|e| BenchError::io(format!("reading {}", d.display()), e))?
        {
            let p = e
                .map_err(|e| BenchError::io(format!("reading {}", d.display()), e))?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The store and the key prefix a URL names.
fn store_for(url: &str) -> Result<(Arc<dyn ObjectStore>, String), BenchError> {
    let bad = |m: String| BenchError::Config(format!("--upload-results {url}: {m}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected file://, s3://, gs:// or az://".into()))?;
    match scheme {
        "file" => {
            let root = PathBuf::from(rest);
            std::fs::create_dir_all(&root)
                .map_err(|e| BenchError::io(format!("creating {}", root.display()), e))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&root)
                .map_err(|e| bad(e.to_string()))?;
            Ok((Arc::new(store), String::new()))
        }
        #[cfg(feature = "cloud-upload")]
        "s3" | "gs" | "az" => {
            let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
            let (store, path) = object_store::parse_url(&parsed).map_err(|e| bad(e.to_string()))?;
            Ok((Arc::from(store), path.to_string()))
        }
        #[cfg(not(feature = "cloud-upload"))]
        "s3" | "gs" | "az" => Err(bad(
            "this build has no cloud object stores; rebuild with `--features inferperf-bench/cloud-upload`".into(),
        )),
        other => Err(bad(format!("unknown scheme {other:?}"))),
    }
}

/// Upload every file under `dir` to `url`/`{dir name}/...`; returns the keys written.
pub async fn upload_dir(dir: &Path, url: &str) -> Result<Vec<String>, BenchError> {
    let (store, prefix) = store_for(url)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".into());
    let mut keys = Vec::new();
    for f in files_under(dir)? {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        let key = [prefix.trim_matches('/'), &name, &rel.to_string_lossy()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("/");
        let bytes =
            std::fs::read(&f).map_err(|e| BenchError::io(format!("reading {}", f.display()), e))?;
        store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
            .await
            .map_err(|e| BenchError::Config(format!("uploading {}: {e}", f.display())))?;
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_lands_under_a_file_url() {
        let src = tempfile::tempdir().expect("tempdir");
        let exp = src.path().join("exp1");
        std::fs::create_dir_all(exp.join("profiles")).expect("mkdir");
        std::fs::write(exp.join("experiment_metadata.json"), b"{}").expect("write");
        std::fs::write(exp.join("profiles/t.trace.json.gz"), b"gz").expect("write");
        let dst = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dst.path().display());
        let keys = upload_dir(&exp, &url).await.expect("upload");
        assert_eq!(
            keys,
            [
                "exp1/experiment_metadata.json",
                "exp1/profiles/t.trace.json.gz"
            ]
        );
        assert_eq!(
            std::fs::read(dst.path().join("exp1/profiles/t.trace.json.gz")).expect("copied"),
            b"gz"
        );
        let e = upload_dir(&exp, "ftp://x").await.expect_err("scheme");
        assert!(e.to_string().contains("ftp"), "{e}");
        #[cfg(not(feature = "cloud-upload"))]
        {
            let e = upload_dir(&exp, "s3://bucket/x")
                .await
                .expect_err("no feature");
            assert!(e.to_string().contains("cloud-upload"), "{e}");
        }
    }
}
