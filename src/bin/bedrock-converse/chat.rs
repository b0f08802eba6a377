//! `bedrock-converse chat`: sends one prompt and prints the answer, streamed live.
//!
//! stdout gets the answer text and the tool calls; stderr gets the progress indication
//! (while waiting for the first byte), reasoning, usage and errors.
//!
//! Model text is the peer's: written to a terminal, its control characters (ESC and
//! so ANSI / OSC sequences, CR, BEL, C1 controls) are shown as `^[`, `^M`, `<U+009B>`
//! instead of acting on the terminal (title, hidden text, links). `--raw`, or output
//! that is not a terminal, writes the text as received.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bedrock_converse::client::config::{home_dir, Config};
use bedrock_converse::client::{
    tools_to_call, BedrockClient, BlockDelta, ChatEvent, ClientError, ModelApi, RequestParams, ResponseError,
};
use bedrock_converse::converse::{ConverseResponse, Message, TokenUsage};
use bedrock_converse::invoke::{AnthropicMessage, InvokeModelRequest, Route};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Arguments of `bedrock-converse chat`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The config file (default: $BEDROCK_CONVERSE_CONFIG, else ~/.config/eca/config.json,
    /// else AWS_REGION and AWS_BEARER_TOKEN_BEDROCK / BEDROCK_API_KEY).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The model: `<provider>/<alias>`, an alias, or a raw Bedrock model id (default:
    /// the first alias of the config).
    #[arg(long, short)]
    model: Option<String>,
    /// Call `/converse` (or `/invoke`) and print the answer when it is complete.
    #[arg(long)]
    no_stream: bool,
    /// The route: `converse`, or `invoke` for the model's native body
    /// (`/invoke-with-response-stream`; Anthropic Messages for `anthropic.*` models).
    /// Default: the model config's `"api"`, else `converse`.
    #[arg(long, value_enum)]
    api: Option<Api>,
    /// Sampling temperature, 0.0 to 1.0.
    #[arg(long)]
    temperature: Option<f64>,
    /// Maximum tokens to generate (default 1024).
    #[arg(long)]
    max_tokens: Option<u64>,
    /// A system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Write model text as received, escape sequences included, even to a terminal.
    #[arg(long)]
    raw: bool,
    /// The prompt.
    prompt: String,
}

/// `--api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Api {
    Converse,
    Invoke,
}

/// Runs the subcommand.
pub(crate) fn run(args: Args) -> ExitCode {
    crate::init_logging(None);
    let env = |name: &str| std::env::var(name).ok();
    let home = home_dir(&env);
    let config = match Config::discover(args.config.as_deref(), &env, home.as_deref()) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let Some(model) = args.model.clone().or_else(|| config.default_model()) else {
        return usage_error("no model: pass --model (e.g. bedrock/<alias> or a Bedrock model id)");
    };
    let client = match BedrockClient::new(config) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    let params = RequestParams {
        temperature: args.temperature,
        max_tokens: args.max_tokens,
        system: args.system.clone(),
        stream: args.no_stream.then_some(false),
        ..RequestParams::default()
    };
    let stream = match client.streams(&model, &params) {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return usage_error(&format!("cannot start the runtime: {e}")),
    };
    let api = match (args.api, client.config().resolve_model(&model)) {
        (Some(api), _) => api,
        (None, Ok(resolved)) if resolved.api == ModelApi::Invoke => Api::Invoke,
        (None, _) => Api::Converse,
    };
    let messages = [Message::user(args.prompt.clone())];
    let result = runtime.block_on(async {
        if api == Api::Invoke {
            let request =
                InvokeModelRequest::new(model.clone(), anthropic_body(&args).to_string().into_bytes());
            if stream {
                invoke_stream(&client, &request, args.raw).await
            } else {
                invoke_once(&client, &request, args.raw).await
            }
        } else {
            let call = ConverseCall {
                client: &client,
                model: &model,
                messages: &messages,
                params: &params,
                raw: args.raw,
            };
            if stream {
                chat_stream(call).await
            } else {
                chat_once(call).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bedrock-converse chat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("bedrock-converse chat: {message}");
    ExitCode::from(2)
}

/// Shows a progress indication on stderr until stopped: a spinner on a terminal, one
/// line otherwise.
struct Progress {
    done: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    terminal: bool,
}

impl Progress {
    fn start(what: String) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let terminal = std::io::stderr().is_terminal();
        let task = if terminal {
            let done = done.clone();
            Some(tokio::spawn(async move {
                let frames = ['|', '/', '-', '\\'];
                let mut i = 0usize;
                while !done.load(Ordering::Relaxed) {
                    let frame = frames.get(i % frames.len()).copied().unwrap_or('.');
                    eprint!("\r{frame} {what}");
                    let _ = std::io::stderr().flush();
                    i = i.wrapping_add(1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }))
        } else {
            eprintln!("... {what}");
            None
        };
        Progress { done, task, terminal }
    }

    async fn stop(&mut self) {
        if self.done.swap(true, Ordering::Relaxed) {
            return;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if self.terminal {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// Writes an answer as it arrives: text to stdout, reasoning to stderr, tool calls on
/// lines of their own, the peer's control characters neutralised on a terminal.
struct AnswerWriter<W: Write> {
    out: W,
    /// Neutralise what goes to stdout.
    clean_out: bool,
    /// Neutralise what goes to stderr.
    clean_err: bool,
    at_line_start: bool,
    in_reasoning: bool,
}

impl<W: Write> AnswerWriter<W> {
    /// A writer to `out` (stdout); `raw` writes the text as received.
    fn new(out: W, raw: bool) -> AnswerWriter<W> {
        AnswerWriter {
            out,
            clean_out: !raw && std::io::stdout().is_terminal(),
            clean_err: !raw && std::io::stderr().is_terminal(),
            at_line_start: true,
            in_reasoning: false,
        }
    }

    /// A piece of answer text, written as it is.
    fn text(&mut self, text: &str) {
        if self.in_reasoning {
            eprintln!();
            self.in_reasoning = false;
        }
        let _ = self.out.write_all(neutralise(text, self.clean_out).as_bytes());
        let _ = self.out.flush();
        self.at_line_start = text.ends_with('\n');
    }

    /// The whole answer text of a non-streamed call, as one line.
    fn whole_text(&mut self, text: &str) {
        if !text.is_empty() {
            let _ = writeln!(
                self.out,
                "{}",
                neutralise(text.trim_end_matches('\n'), self.clean_out)
            );
        }
        self.at_line_start = true;
    }

    /// A piece of reasoning text, to stderr after a `[reasoning]` mark.
    fn reasoning(&mut self, text: &str) {
        if !self.in_reasoning {
            eprint!("[reasoning] ");
            self.in_reasoning = true;
        }
        eprint!("{}", neutralise(text, self.clean_err));
    }

    /// A tool call, on a line of its own.
    fn tool_call(&mut self, name: &str, input: &Value, id: &str) {
        self.end_line();
        let (name, id) = (neutralise(name, self.clean_out), neutralise(id, self.clean_out));
        let _ = writeln!(self.out, "[tool call] {name} {input} (id {id})");
        let _ = self.out.flush();
    }

    /// Ends the current line of text, if one is open.
    fn end_line(&mut self) {
        if !self.at_line_start {
            let _ = writeln!(self.out);
        }
        let _ = self.out.flush();
        self.at_line_start = true;
    }

    /// One event of a Converse stream; the response when it is the last.
    fn chat_event(&mut self, event: ChatEvent) -> Option<Box<ConverseResponse>> {
        match event {
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::Text(text),
                ..
            } => self.text(&text),
            ChatEvent::ContentBlockDelta {
                delta: BlockDelta::ReasoningText(text),
                ..
            } => self.reasoning(&text),
            ChatEvent::ToolCall { call, .. } => self.tool_call(&call.name, &call.input, &call.id),
            ChatEvent::Done(response) => return Some(response),
            _ => {}
        }
        None
    }

    /// One native Anthropic event (a chunk of an invoke stream): its text and thinking
    /// deltas.
    fn invoke_chunk(&mut self, chunk: &[u8]) {
        let event: Value = serde_json::from_slice(chunk).unwrap_or(Value::Null);
        let delta = event.get("delta");
        let text = |field: &str| {
            delta
                .and_then(|d| d.get(field))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
            Some("text_delta") => self.text(text("text")),
            Some("thinking_delta") => self.reasoning(text("thinking")),
            _ => {}
        }
    }

    /// The tool calls of an assembled Anthropic message.
    fn tool_uses(&mut self, message: &AnthropicMessage) {
        for (id, name, input) in message.tool_uses() {
            self.tool_call(name, input, id);
        }
    }
}

/// Says on stderr that the answer so far was kept, when there was one.
fn report_partial(kept: bool, characters: usize) {
    if kept {
        eprintln!("(partial answer kept: {characters} characters)");
    }
}

/// The `waiting for <url>` indicator while a call of `endpoint` is under way.
fn waiting_for(endpoint: &bedrock_converse::client::Endpoint) -> Progress {
    Progress::start(format!("waiting for {}", endpoint.display))
}

/// One `--api converse` call: the client, the model and what to send.
#[derive(Clone, Copy)]
struct ConverseCall<'a> {
    client: &'a BedrockClient,
    model: &'a str,
    messages: &'a [Message],
    params: &'a RequestParams,
    raw: bool,
}

async fn chat_stream(call: ConverseCall<'_>) -> Result<(), ClientError> {
    let mut progress = waiting_for(&call.client.endpoint(call.model, true)?);
    let opened = call
        .client
        .converse_stream(call.model, call.messages, call.params)
        .await;
    let mut stream = match opened {
        Ok(s) => s,
        Err(e) => {
            progress.stop().await;
            return Err(e);
        }
    };
    let mut answer = AnswerWriter::new(std::io::stdout().lock(), call.raw);
    while let Some(item) = stream.next().await {
        // The first item ends the wait (stopping again is a no-op).
        progress.stop().await;
        let response = match item {
            Ok(event) => answer.chat_event(event),
            Err(e) => {
                answer.end_line();
                let partial = stream.partial();
                report_partial(!partial.content().is_empty(), partial.text().len());
                return Err(e);
            }
        };
        if let Some(response) = response {
            answer.end_line();
            print_summary(&response);
            return Ok(());
        }
    }
    progress.stop().await;
    Err(ClientError::Response(ResponseError::Truncated))
}

async fn chat_once(call: ConverseCall<'_>) -> Result<(), ClientError> {
    let mut progress = waiting_for(&call.client.endpoint(call.model, false)?);
    let result = call.client.converse(call.model, call.messages, call.params).await;
    progress.stop().await;
    let response = result?;
    let mut answer = AnswerWriter::new(std::io::stdout().lock(), call.raw);
    answer.whole_text(&response.text());
    for call in tools_to_call(&response) {
        answer.tool_call(&call.name, &call.input, &call.id);
    }
    answer.end_line();
    print_summary(&response);
    Ok(())
}

/// The Anthropic Messages body of `--api invoke`, as Bedrock takes it.
fn anthropic_body(args: &Args) -> Value {
    let mut body = json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": args.max_tokens.unwrap_or(1024),
        "messages": [{ "role": "user", "content": args.prompt }],
    });
    if let Some(system) = &args.system {
        body["system"] = json!(system);
    }
    if let Some(t) = args.temperature {
        body["temperature"] = json!(t);
    }
    body
}

/// `--api invoke`, streamed: text deltas to stdout as they arrive, thinking to stderr,
/// then the tool calls and the usage of the assembled message.
async fn invoke_stream(
    client: &BedrockClient,
    request: &InvokeModelRequest,
    raw: bool,
) -> Result<(), ClientError> {
    let mut progress =
        waiting_for(&client.route_endpoint_of(&request.model_id, Route::InvokeModelWithResponseStream)?);
    let started = client.invoke_model_with_response_stream(request).await;
    progress.stop().await;
    let mut stream = started?;
    let mut answer = AnswerWriter::new(std::io::stdout().lock(), raw);
    while let Some(item) = stream.next_chunk().await {
        match item {
            Ok(chunk) => answer.invoke_chunk(&chunk),
            Err(e) => {
                answer.end_line();
                let partial = stream.partial();
                report_partial(!partial.content.is_empty(), partial.text().len());
                return Err(e);
            }
        }
    }
    answer.end_line();
    let message = stream.into_message().await.map_err(|(e, _)| e)?;
    answer.tool_uses(&message);
    print_invoke_summary(&message);
    Ok(())
}

/// `--api invoke --no-stream`.
async fn invoke_once(
    client: &BedrockClient,
    request: &InvokeModelRequest,
    raw: bool,
) -> Result<(), ClientError> {
    let mut progress = waiting_for(&client.route_endpoint_of(&request.model_id, Route::InvokeModel)?);
    let result = client.invoke_model(request).await;
    progress.stop().await;
    let message = result?
        .anthropic_message()
        .map_err(|e| ClientError::Response(ResponseError::Json(e)))?;
    let mut answer = AnswerWriter::new(std::io::stdout().lock(), raw);
    answer.whole_text(&message.text());
    answer.tool_uses(&message);
    print_invoke_summary(&message);
    Ok(())
}

fn print_invoke_summary(message: &AnthropicMessage) {
    let stop = message.stop_reason.as_deref().unwrap_or("?");
    let u = &message.usage;
    eprintln!(
        "usage: {} input + {} output = {} tokens (stop: {stop})",
        u.input_tokens,
        u.output_tokens,
        u.input_tokens.saturating_add(u.output_tokens)
    );
}

fn print_summary(response: &ConverseResponse) {
    let stop = response
        .stop_reason
        .as_ref()
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "?".into());
    match &response.usage {
        Some(TokenUsage {
            input_tokens,
            output_tokens,
            total_tokens,
            ..
        }) => eprintln!(
            "usage: {input_tokens} input + {output_tokens} output = {total_tokens} tokens (stop: {stop})"
        ),
        None => eprintln!("usage: not reported (stop: {stop})"),
    }
}

/// `text` with its terminal control characters made visible when `clean` (caret
/// notation for C0 and DEL, `<U+XXXX>` for C1); newlines and tabs stay.
fn neutralise(text: &str, clean: bool) -> std::borrow::Cow<'_, str> {
    let is_control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !clean || !text.chars().any(is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_control(c) => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            // C0: `^@` .. `^_` (ESC is `^[`); the cast is of a char below 0x20.
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c => out.push_str(&format!("<U+{:04X}>", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::neutralise;

    #[test]
    fn terminal_escapes_are_made_visible() {
        // Old behaviour: written as received, so OSC 0 retitled the terminal and OSC 8
        // planted a link.
        let hostile =
            "hi \x1b]0;pwned\x07 \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ \x1b[8mhidden\r\u{9b}2J";
        let shown = neutralise(hostile, true);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(
            shown,
            "hi ^[]0;pwned^G ^[]8;;http://evil^[\\link^[]8;;^[\\ ^[[8mhidden^M<U+009B>2J"
        );
        assert_eq!(neutralise("line\n\tok", true), "line\n\tok");
        assert_eq!(neutralise(hostile, false), hostile);
    }
}
