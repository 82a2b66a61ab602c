//! A minimal `multipart/form-data` body builder (RFC 7578) for the diffusion benchmark's image
//! uploads: text fields and file parts, written once before the run so the measured client
//! sends ready bytes. Every body of a run shares one boundary, so one Content-Type header
//! serves the whole run; the boundary is checked against every part's content.

use bytes::Bytes;

/// One form: fields in order, then [`Form::finish`].
#[derive(Clone, Debug)]
pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    /// An empty form delimited by `boundary` (see [`boundary`]).
    pub fn new(boundary: &str) -> Self {
        Self {
            boundary: boundary.to_owned(),
            body: Vec::new(),
        }
    }

    /// A text field.
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.head(name, None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// A file part (`application/octet-stream`, as reqwest sends `Part::bytes`).
    pub fn file(mut self, name: &str, file_name: &str, bytes: &[u8]) -> Self {
        self.head(name, Some(file_name));
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn head(&mut self, name: &str, file_name: Option<&str>) {
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        let mut d = format!("Content-Disposition: form-data; name=\"{}\"", q(name));
        if let Some(f) = file_name {
            d += &format!(
                "; filename=\"{}\"\r\nContent-Type: application/octet-stream",
                q(f)
            );
        }
        self.body.extend_from_slice(d.as_bytes());
        self.body.extend_from_slice(b"\r\n\r\n");
    }

    /// The body, closed by the final delimiter.
    pub fn finish(mut self) -> Bytes {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        Bytes::from(self.body)
    }
}

/// A boundary that occurs in none of `contents` (a seeded random token, re-drawn on a clash).
pub fn boundary(seed: u64, contents: &[&[u8]]) -> String {
    let mut x = seed ^ 0x9e37_79b9_7f4a_7c15;
    loop {
        // splitmix64: a fixed, dependency-free sequence of candidates.
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let b = format!("inferperf-{z:016x}");
        if !contents
            .iter()
            .any(|c| c.windows(b.len()).any(|w| w == b.as_bytes()))
        {
            return b;
        }
    }
}

/// The Content-Type of bodies built with `boundary`.
pub fn content_type(boundary: &str) -> String {
    format!("multipart/form-data; boundary={boundary}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_is_rfc7578_shaped() {
        let b = boundary(1, &[b"abc"]);
        let body = Form::new(&b)
            .text("prompt", "a \"cat\"")
            .file("image", "x.png", b"PNG")
            .finish();
        let want = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na \"cat\"\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nPNG\r\n--{b}--\r\n"
        );
        assert_eq!(body, want.as_bytes());
    }

    #[test]
    fn boundary_avoids_the_contents() {
        let first = boundary(7, &[]);
        let other = boundary(7, &[first.as_bytes()]);
        assert_ne!(first, other);
        assert_eq!(first, boundary(7, &[b"unrelated"]));
    }
}
