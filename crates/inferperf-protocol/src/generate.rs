//! SGLang native `/generate` request and response (`meta_info`).
