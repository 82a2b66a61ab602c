//! `image`: random-text prompts with synthetic images, for vision-language servers (SGLang's
//! `image` dataset). Text is built like `random-ids` (token-exact); each request carries
//! `--image-count` images (or 1..=count with `--random-image-count`) of `--image-resolution`,
//! `random` noise or `blank` white, encoded as `--image-format` (JPEG quality 85, or PNG) data
//! URIs. Chat backends get them as `image_url` items before the text; the others as
//! `image_data`, as SGLang sends them.
//!
//! `prompt_len` counts the text tokens only: the vision tokens depend on the server's image
//! processor (SGLang runs the model's HF processor on the client for them). The server's own
//! `prompt_tokens`, vision included, are in the per-request details.

use base64::Engine as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::random::{random_ids, RandomOptions};
use super::DatasetRow;
use crate::backend::Prompt;
use crate::error::BenchError;
use crate::tokenizer::SharedTokenizer;

/// `--image-*` options.
#[derive(Clone, Debug)]
pub struct ImageOptions {
    pub count: usize,
    pub random_count: bool,
    /// `4k`, `1080p`, `720p`, `360p`, or `HxW` (height first).
    pub resolution: String,
    /// `jpeg` or `png`.
    pub format: String,
    /// `random` or `blank`.
    pub content: String,
    /// Chat backends carry images inside the message content.
    pub chat: bool,
}

/// (width, height) of a `--image-resolution` value.
pub fn parse_resolution(s: &str) -> Result<(u32, u32), BenchError> {
    Ok(match s {
        "4k" => (3840, 2160),
        "1080p" => (1920, 1080),
        "720p" => (1280, 720),
        "360p" => (640, 360),
        other => {
            let parsed = other
                .split_once('x')
                .and_then(|(h, w)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
            match parsed {
                Some((w, h)) if w > 0 && h > 0 => (w, h),
                _ => {
                    return Err(BenchError::Config(format!(
                        "--image-resolution must be 4k, 1080p, 720p, 360p or HEIGHTxWIDTH, got {other:?}"
                    )))
                }
            }
        }
    })
}

/// One encoded image as a data URI.
fn encode(
    rng: &mut ChaCha8Rng,
    (w, h): (u32, u32),
    o: &ImageOptions,
) -> Result<String, BenchError> {
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    if o.content == "random" {
        rng.fill(pixels.as_mut_slice());
    }
    let mut bytes = Vec::new();
    match o.format.as_str() {
        "jpeg" => {
            let enc = jpeg_encoder::Encoder::new(&mut bytes, 85);
            enc.encode(&pixels, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| BenchError::Config(format!("encoding a {w}x{h} JPEG: {e}")))?;
        }
        "png" => {
            let mut enc = png::Encoder::new(&mut bytes, w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc
                .write_header()
                .map_err(|e| BenchError::Config(format!("encoding a {w}x{h} PNG: {e}")))?;
            writer
                .write_image_data(&pixels)
                .map_err(|e| BenchError::Config(format!("encoding a {w}x{h} PNG: {e}")))?;
        }
        other => {
            return Err(BenchError::Config(format!(
                "--image-format must be jpeg or png, got {other:?}"
            )))
        }
    }
    Ok(format!(
        "data:image/{};base64,{}",
        o.format,
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    ))
}

/// Rows with text from `random-ids` and their images attached.
pub fn build(
    ro: &RandomOptions,
    o: &ImageOptions,
    tok: &SharedTokenizer,
) -> Result<Vec<DatasetRow>, BenchError> {
    let size = parse_resolution(&o.resolution)?;
    if size.0 > u16::MAX as u32 || size.1 > u16::MAX as u32 {
        return Err(BenchError::Config(format!(
            "--image-resolution {} is larger than 65535 pixels on a side",
            o.resolution
        )));
    }
    if !matches!(o.content.as_str(), "random" | "blank") {
        return Err(BenchError::Config(format!(
            "--image-content must be random or blank, got {:?}",
            o.content
        )));
    }
    if o.count == 0 {
        return Err(BenchError::Config(
            "--image-count must be at least 1".into(),
        ));
    }
    let text = random_ids(
        &RandomOptions {
            tokenize_prompt: false,
            ..ro.clone()
        },
        tok,
    )?;
    let counts: Vec<usize> = {
        let mut rng = ChaCha8Rng::seed_from_u64(ro.seed ^ 0x1A6E);
        (0..text.len())
            .map(|_| {
                if o.random_count {
                    rng.gen_range(1..=o.count)
                } else {
                    o.count
                }
            })
            .collect()
    };
    let total: usize = counts.iter().sum();
    if size.0 as u64 * size.1 as u64 >= 1920 * 1080 && total >= 100 {
        tracing::warn!(
            "{total} images of {}x{} will take a lot of memory and time to encode",
            size.0,
            size.1
        );
    }
    let rows: Vec<DatasetRow> = text
        .into_par_iter()
        .zip(counts.par_iter())
        .enumerate()
        .map(|(i, (mut row, &n))| {
            let mut rng = ChaCha8Rng::seed_from_u64(ro.seed.wrapping_add(0x1A6E_0000 + i as u64));
            let images = (0..n)
                .map(|_| encode(&mut rng, size, o))
                .collect::<Result<Vec<_>, _>>()?;
            let text = match &row.prompt {
                Prompt::Text(t) => t.clone(),
                _ => String::new(),
            };
            if o.chat {
                let mut content: Vec<Value> = images
                    .iter()
                    .map(|u| json!({"type": "image_url", "image_url": {"url": u}}))
                    .collect();
                content.push(json!({"type": "text", "text": text}));
                row.prompt = Prompt::Messages(json!([{"role": "user", "content": content}]));
            } else {
                let mut extra = Map::new();
                extra.insert("image_data".into(), json!(images));
                row.extra = Some(extra);
            }
            Ok(row)
        })
        .collect::<Result<_, BenchError>>()?;
    let bytes: usize = rows
        .iter()
        .map(|r| match (&r.prompt, &r.extra) {
            (Prompt::Messages(m), _) => m.to_string().len(),
            (_, Some(e)) => e["image_data"].to_string().len(),
            _ => 0,
        })
        .sum();
    println!("#Total images: {total}");
    println!(
        "Created {total} {} {} images with average {} bytes per request",
        o.content,
        o.format,
        bytes / rows.len().max(1)
    );
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_are_width_by_height_with_custom_height_first() {
        assert_eq!(parse_resolution("1080p").expect("preset"), (1920, 1080));
        assert_eq!(parse_resolution("100x200").expect("custom"), (200, 100));
        let e = parse_resolution("big").expect_err("bad");
        assert!(e.to_string().contains("--image-resolution"));
    }
}
