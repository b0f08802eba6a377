//! The OpenAI Chat Completions dialect (`POST /v1/chat/completions`).
//!
//! - [`translate_request`]: the request body → a [`ConverseRequest`](super::ConverseRequest).
//! - [`ChatStreamWriter`]: ConverseStream events → `chat.completion.chunk` SSE, as they arrive.
//! - [`chat_completion_json`]: a `ConverseResponse` → a `chat.completion` (for `stream: false`).
//! - [`error_json`]: an [`ApiError`](super::ApiError) → OpenAI's status and error body.
//!
//! Supported: system and developer messages (to `system`), user text, images as data
//! URLs, PDF and other documents as `file.file_data` data URLs, assistant text and
//! `tool_calls`, `role: "tool"` results (consecutive ones joined into one user message),
//! `tools` (functions, with `strict`), `tool_choice` (`auto`, `required`, `none`, a
//! named function), `response_format` (`json_schema`, `json_object`, `text`),
//! `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `stop`,
//! `stream_options.include_usage`, and `cache_control` on text parts and tools (the
//! LiteLLM extension). Ignored because they do not change the answer: `user`,
//! `metadata`, `store`, `seed`, `service_tier`.
//!
//! Refused with a 400 naming the field: `n > 1`, `logprobs`, `top_logprobs`, `audio`,
//! non-text `modalities`, `prediction`, `logit_bias`, non-zero penalties, the legacy
//! `functions`, `web_search_options`, `reasoning_effort`, `parallel_tool_calls: false`,
//! image and file URLs that are not `data:` URLs, audio input, and `tool_choice: "none"`
//! with tool calls in the history (Bedrock then needs the tools).

mod messages;
mod request;
mod response;
mod stream;
mod tools;

pub use request::translate_request;
pub use response::{chat_completion_json, error_json, error_status, finish_reason};
pub use stream::ChatStreamWriter;
