//! The HTTP front end (axum) of the reference server: SGLang- and OpenAI-compatible routes over an inferperf-engine handle.
