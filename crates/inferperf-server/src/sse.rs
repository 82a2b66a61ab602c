//! Server-sent events framing as SGLang writes it: `data: {json}\n\n` per chunk and a final
//! `data: [DONE]\n\n`, on a `text/event-stream` response.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{Stream, StreamExt};
use serde::Serialize;

/// `data: {json}\n\n`.
pub fn data_frame<T: Serialize>(value: &T) -> Bytes {
    // Serializing plain data structs (strings, numbers, maps with string keys) cannot fail.
    let json = serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a stream chunk");
        b"{}".to_vec()
    });
    let mut frame = Vec::with_capacity(json.len() + 8);
    frame.extend_from_slice(b"data: ");
    frame.extend_from_slice(&json);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}

/// `data: [DONE]\n\n`.
pub fn done_frame() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// A streaming `text/event-stream` response over ready-made frames. Dropping the body (client
/// gone) drops the stream and with it the engine receivers it owns.
pub fn sse_response<S>(frames: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = Body::from_stream(frames.map(Ok::<_, Infallible>));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
