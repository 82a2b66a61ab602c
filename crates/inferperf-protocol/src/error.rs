//! OpenAI-style error bodies (`{"error": {...}}`) returned by the server and parsed by clients.
