//! Server-side profiling: step windows with SGLang's ProfileReqInput semantics, span recording, Chrome/Kineto trace writing and file naming.
