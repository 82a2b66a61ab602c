//! SGLang `ProfileReqInput`: the body of `/start_profile`.
