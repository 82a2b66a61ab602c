//! Kernel taxonomy: maps a GPU event to a category (gemm, attention, comm.nccl...) and to the
//! class used by the temporal breakdown (compute, comm, memory). Regex rules from a TOML file,
//! with LLM-serving defaults (NCCL/RCCL, custom all-reduce incl. `multimem_all_reduce` and
//! `cross_device_reduce`, DeepEP, GEMM, attention, MoE, norm, memcpy/memset).

use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::TraceError;

/// The default rules, shipped with the binary.
pub const DEFAULT_TAXONOMY: &str = include_str!("default_taxonomy.toml");

/// Class of a GPU event for the temporal breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum KernelClass {
    /// Computation kernels.
    Compute,
    /// Communication (collectives, custom all-reduce, all-to-all).
    Comm,
    /// Memory copies and fills.
    Memory,
}

impl KernelClass {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            KernelClass::Compute => "compute",
            KernelClass::Comm => "comm",
            KernelClass::Memory => "memory",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    extends_default: bool,
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    category: String,
    class: KernelClass,
    pattern: String,
}

struct Rule {
    category: usize,
    class: KernelClass,
    re: Regex,
}

/// A compiled taxonomy.
pub struct Taxonomy {
    rules: Vec<Rule>,
    categories: Vec<String>,
}

/// Category index for unmatched compute kernels.
pub const OTHER: usize = 0;

impl Taxonomy {
    /// The built-in LLM-serving taxonomy.
    pub fn builtin() -> Self {
        // The shipped file is tested; failing here would be a build defect, so fall back to an
        // empty taxonomy rather than panic.
        Self::from_toml(DEFAULT_TAXONOMY, "built-in taxonomy").unwrap_or_else(|e| {
            tracing::error!("built-in taxonomy is invalid: {e}");
            Taxonomy {
                rules: Vec::new(),
                categories: base_categories(),
            }
        })
    }

    /// Loads a taxonomy file (TOML with `[[rule]]` entries).
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::io(path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses taxonomy TOML; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, TraceError> {
        let file: File = toml::from_str(text)
            .map_err(|e| TraceError::Config(format!("{source}: invalid taxonomy: {e}")))?;
        let mut specs = file.rule;
        if file.extends_default {
            let def: File = toml::from_str(DEFAULT_TAXONOMY)
                .map_err(|e| TraceError::Config(format!("built-in taxonomy: {e}")))?;
            specs.extend(def.rule);
        }
        let mut categories = base_categories();
        let mut rules = Vec::with_capacity(specs.len());
        for (i, s) in specs.into_iter().enumerate() {
            let re = Regex::new(&s.pattern).map_err(|e| {
                TraceError::Config(format!(
                    "{source}: rule {} ({}): invalid pattern: {e}",
                    i + 1,
                    s.category
                ))
            })?;
            let category = match categories.iter().position(|c| *c == s.category) {
                Some(p) => p,
                None => {
                    categories.push(s.category.clone());
                    categories.len() - 1
                }
            };
            rules.push(Rule {
                category,
                class: s.class,
                re,
            });
        }
        Ok(Taxonomy { rules, categories })
    }

    /// Classifies a GPU event by its Kineto category and name.
    pub fn classify(&self, cat: &str, name: &str) -> (usize, KernelClass) {
        match cat {
            "gpu_memcpy" => return (1, KernelClass::Memory),
            "gpu_memset" => return (2, KernelClass::Memory),
            _ => {}
        }
        for r in &self.rules {
            if r.re.is_match(name) {
                return (r.category, r.class);
            }
        }
        (OTHER, KernelClass::Compute)
    }

    /// Category names by index.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Name of category `i`.
    pub fn category(&self, i: usize) -> &str {
        self.categories
            .get(i)
            .map(String::as_str)
            .unwrap_or("other")
    }
}

fn base_categories() -> Vec<String> {
    vec![
        "other".into(),
        "memory.memcpy".into(),
        "memory.memset".into(),
    ]
}
