//! Profiler activities (`CPU`, `GPU`, `MEM`, `CUDA_PROFILER`, `RPD`, `XPU`) and which of them a
//! CPU engine can honour.

use crate::error::ProfileError;

/// What a session records. Activities a CPU engine cannot produce never get this far: they are
/// refused by name when the request is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Activities {
    /// Host timeline: steps, scheduler phases, module spans, counters (`*.trace.json.gz`).
    pub cpu: bool,
    /// Memory timeline: KV pool usage and process RSS (`*-memory*.json.gz`).
    pub mem: bool,
}

/// Parse the request's activity list.
///
/// `None` (field absent or `null`) means **CPU only**. SGLang's default is `["CPU","GPU"]`, but
/// this server has no GPU and refuses `GPU` by name; a bodiless `/start_profile` must still
/// work, so the default is the part of SGLang's default that exists here.
///
/// Names are matched case-insensitively. Unknown names and names of activities this engine
/// cannot produce are errors, never silently dropped.
pub fn parse_activities(list: Option<&[String]>) -> Result<Activities, ProfileError> {
    let Some(list) = list else {
        return Ok(Activities {
            cpu: true,
            mem: false,
        });
    };
    if list.is_empty() {
        return Err(ProfileError::NoActivities);
    }
    let mut out = Activities::default();
    for name in list {
        match name.trim().to_ascii_uppercase().as_str() {
            "CPU" => out.cpu = true,
            "MEM" => out.mem = true,
            "GPU" => {
                return Err(ProfileError::UnsupportedActivity {
                    activity: "GPU",
                    reason: "the reference engine runs on CPU and has no GPU timeline (use CPU)",
                })
            }
            "XPU" => {
                return Err(ProfileError::UnsupportedActivity {
                    activity: "XPU",
                    reason: "the reference engine runs on CPU and has no XPU timeline (use CPU)",
                })
            }
            "CUDA_PROFILER" => {
                return Err(ProfileError::UnsupportedActivity {
                    activity: "CUDA_PROFILER",
                    reason: "there is no CUDA profiler (nsys capture range) on a CPU server",
                })
            }
            "RPD" => {
                return Err(ProfileError::UnsupportedActivity {
                    activity: "RPD",
                    reason: "the ROCm rpd tracer is not available on a CPU server",
                })
            }
            _ => return Err(ProfileError::UnknownActivity(name.clone())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_is_cpu_only() {
        assert_eq!(
            parse_activities(None).unwrap(),
            Activities {
                cpu: true,
                mem: false
            }
        );
    }

    #[test]
    fn cpu_and_mem_any_case() {
        let a = parse_activities(Some(&list(&["cpu", "MEM"]))).unwrap();
        assert!(a.cpu && a.mem);
        let m = parse_activities(Some(&list(&["MEM"]))).unwrap();
        assert!(!m.cpu && m.mem);
    }

    #[test]
    fn gpu_like_activities_are_refused_by_name() {
        for name in ["GPU", "CUDA_PROFILER", "RPD", "XPU"] {
            let err = parse_activities(Some(&list(&["CPU", name]))).unwrap_err();
            assert!(
                matches!(err, ProfileError::UnsupportedActivity { activity, .. } if activity == name)
            );
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn unknown_and_empty() {
        let err = parse_activities(Some(&list(&["CPUS"]))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profiler activity \"CPUS\"; expected one of CPU, GPU, MEM, CUDA_PROFILER, RPD"
        );
        assert!(matches!(
            parse_activities(Some(&[])).unwrap_err(),
            ProfileError::NoActivities
        ));
    }
}
