//! `--profile-output-root`: confine the files a client can make the server write (profile
//! traces, diffusion perf dumps) to one directory tree.
//!
//! A path is checked where it really points: relative paths are taken relative to the root,
//! the part that exists is canonicalized (symlinks and `..` resolved by the file system), and
//! `..` in the part that does not exist yet is applied lexically, so neither can step out.
//! Nothing is created by the check.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::ProfileError;

/// A canonical directory that every client-chosen output path must resolve into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRoot {
    root: PathBuf,
}

impl OutputRoot {
    /// The root at `dir`, created if missing (`mkdir -p`) and canonicalized.
    pub fn new(dir: &Path) -> Result<Self, ProfileError> {
        let err = |error| ProfileError::OutputDir {
            path: dir.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let root = std::fs::canonicalize(dir).map_err(err)?;
        Ok(Self { root })
    }

    /// The canonical root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where `path` (a directory or a file, existing or not) really points, if that is inside
    /// the root; [`ProfileError::OutsideOutputRoot`] naming both otherwise.
    pub fn confine(&self, path: &Path) -> Result<PathBuf, ProfileError> {
        let resolved = resolve(&self.root.join(path))?;
        if resolved.starts_with(&self.root) {
            Ok(resolved)
        } else {
            Err(ProfileError::OutsideOutputRoot {
                path: path.to_path_buf(),
                resolved,
                root: self.root.clone(),
            })
        }
    }
}

/// The real location of the absolute `path`: its longest existing prefix canonicalized, then
/// the components that do not exist yet, with their `..` applied lexically. A component that
/// exists but cannot be resolved (a dangling symlink, a file used as a directory) is an error.
fn resolve(path: &Path) -> Result<PathBuf, ProfileError> {
    let mut resolved = PathBuf::new();
    let mut missing: Vec<OsString> = Vec::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => resolved.push(component.as_os_str()),
            Component::CurDir => {}
            // `resolved` is canonical (no symlinks), so its parent is the real parent.
            Component::ParentDir => {
                if missing.pop().is_none() {
                    resolved.pop();
                }
            }
            Component::Normal(name) if !missing.is_empty() => missing.push(name.to_owned()),
            Component::Normal(name) => {
                let candidate = resolved.join(name);
                match std::fs::canonicalize(&candidate) {
                    Ok(real) => resolved = real,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::NotFound
                            && std::fs::symlink_metadata(&candidate).is_err() =>
                    {
                        missing.push(name.to_owned());
                    }
                    Err(error) => {
                        return Err(ProfileError::Unresolvable {
                            path: candidate,
                            error,
                        })
                    }
                }
            }
        }
    }
    Ok(missing.into_iter().fold(resolved, |p, name| p.join(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, OutputRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let root = OutputRoot::new(&tmp.path().join("root")).unwrap();
        (tmp, root)
    }

    #[test]
    fn paths_inside_the_root_resolve_there() {
        let (_tmp, root) = root();
        let r = root.path().to_path_buf();
        assert_eq!(root.confine(Path::new("a/b")).unwrap(), r.join("a/b"));
        assert_eq!(root.confine(&r.join("a/./b/../c")).unwrap(), r.join("a/c"));
        assert_eq!(root.confine(&r).unwrap(), r);
        assert!(!r.join("a").exists(), "the check creates nothing");
    }

    #[test]
    fn dot_dot_escapes_are_refused_even_through_missing_directories() {
        let (tmp, root) = root();
        for escape in ["..", "a/../../x", "new/deeper/../../../etc"] {
            let err = root.confine(Path::new(escape)).unwrap_err();
            assert!(
                matches!(err, ProfileError::OutsideOutputRoot { .. }),
                "{escape}: {err}"
            );
            assert_eq!(err.http_status(), 403);
        }
        let err = root.confine(&tmp.path().join("elsewhere")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("elsewhere") && text.contains(&root.path().display().to_string()));
    }

    #[test]
    fn symlinks_are_followed_before_the_check() {
        let (tmp, root) = root();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.path().join("link")).unwrap();
        let err = root.confine(Path::new("link/sub")).unwrap_err();
        assert!(
            matches!(err, ProfileError::OutsideOutputRoot { .. }),
            "{err}"
        );
        // A link to a file outside (a perf dump path) is refused too.
        std::fs::write(outside.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("f"), root.path().join("f")).unwrap();
        assert!(root.confine(Path::new("f")).is_err());
        // A link that stays inside is fine.
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        assert_eq!(
            root.confine(Path::new("alias/x")).unwrap(),
            root.path().join("real/x")
        );
        // A dangling link cannot be checked: refused.
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), root.path().join("dangling"))
            .unwrap();
        let err = root.confine(Path::new("dangling/x")).unwrap_err();
        assert!(matches!(err, ProfileError::Unresolvable { .. }), "{err}");
    }
}
