//! The Anthropic Messages dialect (`POST /v1/messages`).
//!
//! - [`translate_request`]: the request body → a [`ConverseRequest`](super::ConverseRequest).
//! - [`MessagesStreamWriter`]: ConverseStream events → Messages SSE, as they arrive.
//! - [`message_json`]: a `ConverseResponse` → a `message` (for `stream: false`).
//! - [`error_json`]: an [`ApiError`](super::ApiError) → Anthropic's status and error body.
//!
//! Supported: `system` (string or text blocks), `text`, `image` (base64), `document`
//! (base64 or text, with `citations` and `context`), `tool_use`, `tool_result`
//! (`is_error` to `status: error`), `thinking` with its `signature` and
//! `redacted_thinking` (replayed as Converse reasoning blocks), custom `tools`,
//! `tool_choice` (`auto`, `any`, `tool`, `none`), `thinking` (`enabled` with
//! `budget_tokens`, `adaptive`: passed to the model in `additionalModelRequestFields`),
//! `top_k` (likewise), `max_tokens`, `temperature`, `top_p`, `stop_sequences`, and
//! `cache_control` on tools, system blocks and content blocks (a `cachePoint` after the
//! block, with its `ttl`; a `1h` point after a `5m` one is refused, as Bedrock would).
//! Ignored: `metadata`, `service_tier`.
//!
//! Refused with a 400 naming the field: `mcp_servers`, `container`, Anthropic-defined
//! tool types (web search, bash, ...), image and document URLs or file ids,
//! `disable_parallel_tool_use`, and `tool_choice: none` with tool calls in the history.

mod blocks;
mod request;
mod response;
mod stream;

pub use request::translate_request;
pub use response::{error_json, error_status, message_json, stop_reason};
pub use stream::MessagesStreamWriter;
