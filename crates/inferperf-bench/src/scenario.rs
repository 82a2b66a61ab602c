//! genai-bench's traffic scenarios (`--traffic-scenario`): the grammar (exact regexes, no
//! whitespace), canonical labels, file-name sanitizing, and the per-request token counts of the
//! text scenarios -- sampled from a seeded RNG here (genai-bench's are unseeded).

use rand::Rng;
use rand_distr::{Distribution, Normal};

use inferperf_loadgen::error::BenchError;

/// One parsed scenario.
#[derive(Clone, Debug, PartialEq)]
pub enum Scenario {
    /// `D(in,out)`: constant lengths.
    Deterministic { input: u64, output: u64 },
    /// `N(mean_in,sd_in)/(mean_out,sd_out)`.
    Normal {
        mean_in: u64,
        sd_in: u64,
        mean_out: u64,
        sd_out: u64,
    },
    /// `U(min_in,max_in)/(min_out,max_out)` or `U(max_in,max_out)` (mins 0).
    Uniform {
        min_in: u64,
        max_in: u64,
        min_out: u64,
        max_out: u64,
    },
    /// `E(tokens_per_document)` (embeddings).
    Embedding { tokens: u64 },
    /// `R(tokens_per_document,tokens_per_query)` (rerank).
    Rerank { document: u64, query: u64 },
    /// `I(width,height[,num_images])`.
    Image {
        width: u64,
        height: u64,
        images: u64,
    },
    /// `A(num_input_chars)` (text to speech).
    Audio { chars: u64 },
    /// `dataset`: raw dataset rows, no shaping.
    Dataset,
}

const TYPES: &str = "D, N, U, E, R, I, A, dataset";

/// The parenthesised integer groups of `s` after its type token, e.g. `(1,2)/(3,4)`.
fn groups(rest: &str) -> Option<Vec<Vec<u64>>> {
    rest.split('/')
        .map(|g| {
            let inner = g.strip_prefix('(')?.strip_suffix(')')?;
            inner
                .split(',')
                .map(|x| {
                    if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
                        None
                    } else {
                        x.parse().ok()
                    }
                })
                .collect()
        })
        .collect()
}

impl Scenario {
    /// Parse with genai-bench's rules: the leading letters pick the type, then the whole string
    /// must match that type's pattern (no whitespace anywhere).
    pub fn parse(s: &str) -> Result<Self, BenchError> {
        let bad = |ty: &str, form: &str| {
            BenchError::Config(format!(
                "invalid traffic scenario {s:?}: {ty} scenarios are written {form} (integers, no spaces)"
            ))
        };
        let ty: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let rest = &s[ty.len()..];
        if ty == "dataset" {
            return if rest.is_empty() {
                Ok(Scenario::Dataset)
            } else {
                Err(bad("dataset", "dataset"))
            };
        }
        let shape: Option<Vec<usize>> = groups(rest).map(|g| g.iter().map(Vec::len).collect());
        let g = groups(rest).unwrap_or_default();
        let shaped = |want: &[usize]| shape.as_deref() == Some(want);
        match ty.as_str() {
            "D" if shaped(&[2]) => Ok(Scenario::Deterministic {
                input: g[0][0],
                output: g[0][1],
            }),
            "D" => Err(bad("D", "D(in,out)")),
            "N" if shaped(&[2, 2]) => Ok(Scenario::Normal {
                mean_in: g[0][0],
                sd_in: g[0][1],
                mean_out: g[1][0],
                sd_out: g[1][1],
            }),
            "N" => Err(bad("N", "N(mean_in,sd_in)/(mean_out,sd_out)")),
            "U" if shaped(&[2, 2]) => Ok(Scenario::Uniform {
                min_in: g[0][0],
                max_in: g[0][1],
                min_out: g[1][0],
                max_out: g[1][1],
            }),
            "U" if shaped(&[2]) => Ok(Scenario::Uniform {
                min_in: 0,
                max_in: g[0][0],
                min_out: 0,
                max_out: g[0][1],
            }),
            "U" => Err(bad(
                "U",
                "U(min_in,max_in)/(min_out,max_out) or U(max_in,max_out)",
            )),
            "E" if shaped(&[1]) => Ok(Scenario::Embedding { tokens: g[0][0] }),
            "E" => Err(bad("E", "E(tokens_per_document)")),
            "R" if shaped(&[2]) => Ok(Scenario::Rerank {
                document: g[0][0],
                query: g[0][1],
            }),
            "R" => Err(bad("R", "R(tokens_per_document,tokens_per_query)")),
            "I" if shaped(&[2]) || shaped(&[3]) => Ok(Scenario::Image {
                width: g[0][0],
                height: g[0][1],
                images: g[0].get(2).copied().unwrap_or(1),
            }),
            "I" => Err(bad("I", "I(width,height[,num_images])")),
            "A" if shaped(&[1]) => Ok(Scenario::Audio { chars: g[0][0] }),
            "A" => Err(bad("A", "A(num_input_chars)")),
            other => Err(BenchError::Config(format!(
                "Unknown type '{other}'. Supported types: {TYPES}"
            ))),
        }
    }

    /// genai-bench's canonical label (`to_string`): U keeps its mins only when both are
    /// non-zero, I omits `num_images` when it is 1.
    pub fn label(&self) -> String {
        match self {
            Scenario::Deterministic { input, output } => format!("D({input},{output})"),
            Scenario::Normal {
                mean_in,
                sd_in,
                mean_out,
                sd_out,
            } => format!("N({mean_in},{sd_in})/({mean_out},{sd_out})"),
            Scenario::Uniform {
                min_in,
                max_in,
                min_out,
                max_out,
            } => {
                if *min_in != 0 && *min_out != 0 {
                    format!("U({min_in},{max_in})/({min_out},{max_out})")
                } else {
                    format!("U({max_in},{max_out})")
                }
            }
            Scenario::Embedding { tokens } => format!("E({tokens})"),
            Scenario::Rerank { document, query } => format!("R({document},{query})"),
            Scenario::Image {
                width,
                height,
                images,
            } => {
                if *images == 1 {
                    format!("I({width},{height})")
                } else {
                    format!("I({width},{height},{images})")
                }
            }
            Scenario::Audio { chars } => format!("A({chars})"),
            Scenario::Dataset => "dataset".into(),
        }
    }

    /// Draw one request's (input, output) token counts (text scenarios only): N truncates
    /// toward zero with floors of 1 and 2, U draws from [min or 1, max), as genai-bench does.
    pub fn sample(&self, rng: &mut impl Rng) -> Option<(usize, usize)> {
        let normal = |rng: &mut dyn rand::RngCore, mean: u64, sd: u64| -> f64 {
            Normal::new(mean as f64, sd as f64).map_or(mean as f64, |n| n.sample(rng))
        };
        let uniform = |rng: &mut dyn rand::RngCore, lo: u64, hi: u64| -> f64 {
            let lo = lo.max(1) as f64;
            let hi = hi as f64;
            if hi <= lo {
                lo
            } else {
                rng.gen_range(lo..hi)
            }
        };
        match *self {
            Scenario::Deterministic { input, output } => Some((input as usize, output as usize)),
            Scenario::Normal {
                mean_in,
                sd_in,
                mean_out,
                sd_out,
            } => Some((
                (normal(rng, mean_in, sd_in) as i64).max(1) as usize,
                (normal(rng, mean_out, sd_out) as i64).max(2) as usize,
            )),
            Scenario::Uniform {
                min_in,
                max_in,
                min_out,
                max_out,
            } => Some((
                (uniform(rng, min_in, max_in) as i64).max(1) as usize,
                (uniform(rng, min_out, max_out) as i64).max(2) as usize,
            )),
            _ => None,
        }
    }
}

/// genai-bench's `sanitize_string`: `/` and `,` become `_`, parentheses are dropped.
pub fn sanitize(label: &str) -> String {
    label.replace(['/', ','], "_").replace(['(', ')'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn accepts_exactly_genai_benchs_forms() {
        for (s, label) in [
            ("D(100,100)", "D(100,100)"),
            ("N(480,240)/(300,150)", "N(480,240)/(300,150)"),
            ("U(50,100)/(200,250)", "U(50,100)/(200,250)"),
            ("U(100,200)", "U(100,200)"),
            ("U(0,100)/(5,200)", "U(100,200)"),
            ("E(64)", "E(64)"),
            ("R(64,100)", "R(64,100)"),
            ("I(512,512)", "I(512,512)"),
            ("I(512,512,1)", "I(512,512)"),
            ("I(1024,512,3)", "I(1024,512,3)"),
            ("A(100)", "A(100)"),
            ("dataset", "dataset"),
        ] {
            assert_eq!(Scenario::parse(s).expect(s).label(), label, "{s}");
        }
        for s in [
            "D(100, 100)",
            "R(1024, 128)",
            "D(100)",
            "D(1,2,3)",
            "N(480,240)",
            "U(1,2)/(3)",
            "E(1,2)",
            "I(1)",
            "D(-1,2)",
            "D(1.5,2)",
            "V(1,2)",
            "dataset(1)",
            "",
            "d(1,2)",
        ] {
            assert!(Scenario::parse(s).is_err(), "{s:?} must be rejected");
        }
        let e = Scenario::parse("V(1,2)").expect_err("unknown");
        assert!(e.to_string().contains("Unknown type 'V'"), "{e}");
    }

    #[test]
    fn sampling_is_seeded_and_respects_the_floors() {
        let n = Scenario::parse("N(10,50)/(3,50)").expect("N");
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..200)
                .map(|_| n.sample(&mut rng).expect("text"))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert!(draw(1).iter().all(|&(i, o)| i >= 1 && o >= 2));
        let u = Scenario::parse("U(5,10)/(20,30)").expect("U");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let (i, o) = u.sample(&mut rng).expect("text");
            assert!((5..10).contains(&i) && (20..30).contains(&o), "{i} {o}");
        }
        assert_eq!(sanitize("N(480,240)/(300,150)"), "N480_240_300_150");
        assert_eq!(sanitize("D(100,100)"), "D100_100");
    }
}
