//! Load generation: datasets -> request plan -> pacer -> HTTP client -> per-request records -> metrics, compatible with SGLang's bench_serving.
