//! `--dataset-name image`: synthetic images attached to token-exact random text, in the body
//! shape each backend family uses (`image_data` for native/completions, `image_url` content
//! items for chat), decodable as the requested format and size.

mod common;

use base64::Engine as _;
use common::args;
use inferperf_bench::serving::{build_dataset, plan_requests};
use inferperf_loadgen::tokenizer::SharedTokenizer;
use serde_json::{Map, Value};

fn tok() -> SharedTokenizer {
    std::sync::Arc::new(inferperf_engine::simulated::SimTokenizer::new(1000))
}

fn bodies(flags: &[&str]) -> Vec<Value> {
    let a = args(flags);
    let rows = build_dataset(&a, Some(&tok())).expect("rows");
    plan_requests(&a, &rows, "m", &Map::new(), None)
        .expect("plan")
        .iter()
        .map(|p| serde_json::from_slice(&p.body).expect("JSON"))
        .collect()
}

fn decode(uri: &str) -> (String, Vec<u8>) {
    let (head, data) = uri.split_once(";base64,").expect("data URI");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    (head.to_string(), bytes)
}

const COMMON: &[&str] = &[
    "--dataset-name",
    "image",
    "--num-prompts",
    "3",
    "--random-input-len",
    "12",
    "--random-output-len",
    "4",
    "--image-resolution",
    "24x40",
];

#[test]
fn native_bodies_carry_image_data_of_the_requested_size() {
    let mut flags = COMMON.to_vec();
    flags.extend([
        "--backend",
        "sglang",
        "--image-count",
        "2",
        "--image-format",
        "png",
    ]);
    for b in bodies(&flags) {
        let images = b["image_data"].as_array().expect("image_data");
        assert_eq!(images.len(), 2);
        for img in images {
            let (head, bytes) = decode(img.as_str().expect("string"));
            assert_eq!(head, "data:image/png");
            let dec = png::Decoder::new(std::io::Cursor::new(bytes));
            let reader = dec.read_info().expect("valid PNG");
            let info = reader.info();
            // 24x40 is height x width.
            assert_eq!((info.width, info.height), (40, 24));
        }
        assert!(b["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[test]
fn chat_bodies_put_images_before_the_text() {
    let mut flags = COMMON.to_vec();
    flags.extend([
        "--backend",
        "sglang-oai-chat",
        "--image-count",
        "3",
        "--random-image-count",
    ]);
    let all = bodies(&flags);
    for b in &all {
        let content = b["messages"][0]["content"]
            .as_array()
            .expect("content parts");
        let (last, images) = content.split_last().expect("parts");
        assert_eq!(last["type"], "text");
        assert!((1..=3).contains(&images.len()));
        for part in images {
            assert_eq!(part["type"], "image_url");
            let (head, bytes) = decode(part["image_url"]["url"].as_str().expect("url"));
            assert_eq!(head, "data:image/jpeg");
            assert_eq!(&bytes[..2], &[0xFF, 0xD8], "JPEG start-of-image marker");
        }
    }
    // Reproducible from the seed.
    assert_eq!(all, bodies(&flags));
}

#[test]
fn bad_image_flags_are_named() {
    for (flag, value) in [
        ("--image-resolution", "huge"),
        ("--image-format", "gif"),
        ("--image-content", "plaid"),
    ] {
        let mut flags = COMMON.to_vec();
        flags.retain(|f| *f != "--image-resolution" && *f != "24x40");
        flags.extend([flag, value]);
        let a = args(&flags);
        let e = build_dataset(&a, Some(&tok())).expect_err("refused");
        assert!(e.to_string().contains(flag), "{e}");
    }
}
