//! PNG for images, APNG for videos (the `png` crate writes both), their decoding (for clients
//! and tests that check what a server returned), and integer nearest-neighbour upsampling.

use std::io::Cursor;

use crate::diffusion::error::DiffusionError;

fn media_err(e: impl std::fmt::Display) -> DiffusionError {
    DiffusionError::Media(e.to_string())
}

/// Encode RGB8 frames of `width x height`: one frame is a PNG, more are an APNG playing at
/// `fps` (looping forever).
pub fn encode_rgb_frames(
    width: usize,
    height: usize,
    frames: &[Vec<u8>],
    fps: u32,
) -> Result<Vec<u8>, DiffusionError> {
    let expected = width * height * 3;
    if frames.is_empty() || frames.iter().any(|f| f.len() != expected) {
        return Err(DiffusionError::Media(format!(
            "need at least one RGB frame of {width}x{height}x3 bytes"
        )));
    }
    let w = u32::try_from(width).map_err(media_err)?;
    let h = u32::try_from(height).map_err(media_err)?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(Cursor::new(&mut out), w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        if frames.len() > 1 {
            let n = u32::try_from(frames.len()).map_err(media_err)?;
            enc.set_animated(n, 0).map_err(media_err)?;
            let fps = u16::try_from(fps.max(1)).unwrap_or(u16::MAX);
            enc.set_frame_delay(1, fps).map_err(media_err)?;
        }
        let mut writer = enc.write_header().map_err(media_err)?;
        for frame in frames {
            writer.write_image_data(frame).map_err(media_err)?;
        }
        writer.finish().map_err(media_err)?;
    }
    Ok(out)
}

/// A decoded PNG or APNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedMedia {
    pub width: usize,
    pub height: usize,
    /// `true` when the file carries an animation control chunk (APNG).
    pub animated: bool,
    /// Frames as RGB8 (grey and RGBA inputs are converted); one for a still PNG.
    pub frames: Vec<Vec<u8>>,
}

/// Decode PNG/APNG bytes into RGB8 frames. Errors name what is wrong (not a PNG, truncated,
/// unsupported bit depth) so that a CLI can report an unreadable input image clearly.
pub fn decode_png(bytes: &[u8]) -> Result<DecodedMedia, DiffusionError> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(media_err)?;
    let info = reader.info();
    let (width, height) = (info.width as usize, info.height as usize);
    let animation = info.animation_control;
    let n = animation.map(|a| a.num_frames as usize).unwrap_or(1).max(1);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| DiffusionError::Media("image too large".into()))?;
    let mut frames = Vec::with_capacity(n);
    let mut buf = vec![0u8; size];
    for _ in 0..n {
        let out = reader.next_frame(&mut buf).map_err(media_err)?;
        if out.width as usize != width || out.height as usize != height {
            return Err(DiffusionError::Media(
                "APNG frames smaller than the canvas are not supported".into(),
            ));
        }
        let data = &buf[..out.buffer_size()];
        let rgb = match out.color_type {
            png::ColorType::Rgb => data.to_vec(),
            png::ColorType::Rgba => data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g]).collect(),
            png::ColorType::GrayscaleAlpha => data
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0]])
                .collect(),
            png::ColorType::Indexed => {
                return Err(DiffusionError::Media("unexpanded palette image".into()))
            }
        };
        frames.push(rgb);
    }
    Ok(DecodedMedia {
        width,
        height,
        animated: animation.is_some(),
        frames,
    })
}

/// Nearest-neighbour upsampling of an RGB8 image by an integer factor.
pub fn upsample_nearest_rgb(rgb: &[u8], width: usize, height: usize, factor: usize) -> Vec<u8> {
    if factor <= 1 {
        return rgb.to_vec();
    }
    let out_w = width * factor;
    let mut out = Vec::with_capacity(rgb.len() * factor * factor);
    for y in 0..height {
        let row = &rgb[y * width * 3..(y + 1) * width * 3];
        let start = out.len();
        for px in row.chunks_exact(3) {
            for _ in 0..factor {
                out.extend_from_slice(px);
            }
        }
        for _ in 1..factor {
            out.extend_from_within(start..start + out_w * 3);
        }
    }
    out
}

/// Mean colour of an RGB8 image, mapped to [-1, 1] per channel.
pub(crate) fn mean_color(rgb: &[u8]) -> [f32; 3] {
    let mut sum = [0f64; 3];
    for px in rgb.chunks_exact(3) {
        for (s, v) in sum.iter_mut().zip(px) {
            *s += f64::from(*v);
        }
    }
    let n = (rgb.len() / 3).max(1) as f64;
    sum.map(|s| (s / n / 127.5 - 1.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_apng_round_trip() {
        let frame: Vec<u8> = (0..4 * 2 * 3).map(|i| i as u8).collect();
        let png = encode_rgb_frames(4, 2, std::slice::from_ref(&frame), 24).unwrap();
        let d = decode_png(&png).unwrap();
        assert_eq!((d.width, d.height, d.animated), (4, 2, false));
        assert_eq!(d.frames, vec![frame.clone()]);
        let other: Vec<u8> = frame.iter().map(|v| 255 - v).collect();
        let apng = encode_rgb_frames(4, 2, &[frame.clone(), other.clone()], 8).unwrap();
        let d = decode_png(&apng).unwrap();
        assert!(d.animated);
        assert_eq!(d.frames, vec![frame, other]);
        let err = decode_png(b"not a png").unwrap_err().to_string();
        assert!(err.contains("media"), "{err}");
    }

    #[test]
    fn nearest_upsampling_repeats_pixels() {
        let rgb = [1, 1, 1, 2, 2, 2];
        let up = upsample_nearest_rgb(&rgb, 2, 1, 2);
        assert_eq!(
            up,
            [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]
        );
    }
}
