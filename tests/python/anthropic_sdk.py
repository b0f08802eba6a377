# The official `anthropic` SDK against the gateway's /v1/messages, in front of the
# built-in mock Bedrock server. Run by tests/dialect_python.rs with BASE_URL, API_KEY and
# SCENARIO set; every check is an `assert`, and the script prints "ok <scenario>".
import json
import os

import anthropic

client = anthropic.Anthropic(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
scenario = os.environ["SCENARIO"]
USER = [{"role": "user", "content": "What is the weather in Paris, and what is 2 + 3?"}]
TOOLS = [
    {"name": "get_weather", "description": "Weather of a city",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    {"name": "add", "description": "Adds two numbers",
     "input_schema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
]


def streamed(**kwargs):
    """The final message of a stream, and the raw event types seen."""
    types = []
    kwargs.setdefault("max_tokens", 2048)
    with client.messages.stream(**kwargs) as stream:
        for event in stream:
            types.append(event.type)
        return stream.get_final_message(), types


def created(**kwargs):
    kwargs.setdefault("max_tokens", 2048)
    return client.messages.create(**kwargs)


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


def check_parallel_calls(message):
    assert message.stop_reason == "tool_use", message
    calls = [b for b in message.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "add"], calls
    assert calls[0].input == {"city": "Paris"} and calls[1].input == {"a": 2, "b": 3}, calls
    assert len({c.id for c in calls}) == 2
    return calls


def second_turn(message, calls, stream):
    messages = USER + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny, 21 C"},
            {"type": "tool_result", "tool_use_id": calls[1].id, "content": [{"type": "text", "text": "5"}]},
        ]},
    ]
    answer = streamed(model="mock.tools", messages=messages, tools=TOOLS)[0] if stream else \
        created(model="mock.tools", messages=messages, tools=TOOLS)
    assert answer.stop_reason == "end_turn"
    text = text_of(answer)
    assert "`get_weather` returned sunny, 21 C" in text and "`add` returned 5" in text, text


if scenario == "text":
    whole = created(model="bedrock/text", messages=USER)
    assert text_of(whole).startswith('You said: "What is the weather in Paris'), whole
    assert whole.stop_reason == "end_turn" and whole.id.startswith("msg_")
    message, types = streamed(model="bedrock/text", messages=USER)
    assert text_of(message) == text_of(whole)
    assert types[0] == "message_start" and types[-1] == "message_stop", types
    assert "text" in types  # the SDK's own per-delta event
    assert message.usage.input_tokens == whole.usage.input_tokens
    assert message.usage.output_tokens == whole.usage.output_tokens

elif scenario == "tools":
    message, types = streamed(model="mock.tools", messages=USER, tools=TOOLS)
    assert "input_json" in types, types
    calls = check_parallel_calls(message)
    second_turn(message, calls, stream=True)
    message = created(model="mock.tools", messages=USER, tools=TOOLS, tool_choice={"type": "any"})
    calls = check_parallel_calls(message)
    second_turn(message, calls, stream=False)

elif scenario == "zero-arg":
    no_args = [{"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]
    for message in [streamed(model="mock.tools", messages=USER, tools=no_args)[0],
                    created(model="mock.tools", messages=USER, tools=no_args)]:
        calls = [b for b in message.content if b.type == "tool_use"]
        assert len(calls) == 1 and calls[0].name == "get_time", message
        assert calls[0].input == {}, calls

elif scenario == "reasoning":
    thinking = {"type": "enabled", "budget_tokens": 1024}
    message, types = streamed(model="mock.reasoning", messages=USER, thinking=thinking)
    assert "thinking" in types and "signature" in types, types
    block = message.content[0]
    assert block.type == "thinking" and block.thinking.startswith("The user wrote"), block
    assert block.signature.startswith("EqQBCkgIARAB"), block
    whole = created(model="mock.reasoning", messages=USER, thinking=thinking)
    assert whole.content[0].signature == block.signature
    # The next turn replays the thinking block with its signature.
    replay = USER + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
        {"role": "user", "content": "Thanks. And tomorrow?"},
    ]
    again = created(model="mock.text", messages=replay, thinking=thinking)
    assert text_of(again).startswith('You said: "Thanks. And tomorrow?"'), again

elif scenario == "citations":
    message, types = streamed(model="mock.citations", messages=USER)
    assert "citation" in types, types
    assert message.content[0].type == "redacted_thinking" and message.content[0].data, message
    cited = [b for b in message.content if b.type == "text" and b.citations]
    assert cited and cited[0].citations[0].cited_text.startswith("What is the weather"), message
    whole = created(model="mock.citations", messages=USER)
    assert whole.content[0].type == "redacted_thinking" and whole.content[0].data == message.content[0].data, (whole.content[0], message.content[0])
    assert any(b.type == "text" and b.citations for b in whole.content), whole

elif scenario == "cache":
    system = [{"type": "text", "text": "You answer briefly. " * 50, "cache_control": {"type": "ephemeral"}}]
    whole = created(model="mock.text", system=system, messages=USER)
    message, _ = streamed(model="mock.text", system=system, messages=USER)
    for u in [whole.usage, message.usage]:
        assert u.cache_read_input_tokens == 1024 and u.cache_creation_input_tokens == 512, u
    assert message.usage.input_tokens == whole.usage.input_tokens
    assert message.usage.output_tokens == whole.usage.output_tokens
    print(json.dumps({"input_tokens": whole.usage.input_tokens}))

elif scenario == "exception":
    text = ""
    try:
        with client.messages.stream(model="mock.exception", max_tokens=256, messages=USER) as stream:
            for t in stream.text_stream:
                text += t
        raise AssertionError("no error raised")
    except anthropic.APIStatusError as e:
        assert text.startswith("Let me start answering"), text
        print("error:", e.message)

elif scenario == "http-error":
    try:
        created(model="mock.http-error", messages=USER)
        raise AssertionError("no error raised")
    except anthropic.BadRequestError as e:
        assert e.status_code == 400 and "http-error" in e.message, e.message
    try:
        with client.messages.stream(model="mock.server-error", max_tokens=256, messages=USER) as stream:
            stream.until_done()
        raise AssertionError("no error raised")
    except anthropic.InternalServerError as e:
        assert e.status_code == 500
    try:
        created(model="mock.text", messages=USER,
                extra_body={"mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}]})
        raise AssertionError("no error raised")
    except anthropic.BadRequestError as e:
        assert "mcp_servers" in e.message, e.message

else:
    raise SystemExit(f"unknown scenario {scenario}")

print("ok", scenario)
