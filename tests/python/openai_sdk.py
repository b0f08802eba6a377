# The official `openai` SDK against the gateway's /v1/chat/completions, in front of the
# built-in mock Bedrock server. Run by tests/dialect_python.rs with BASE_URL, API_KEY and
# SCENARIO set; every check is an `assert`, and the script prints "ok <scenario>".
import json
import os

import openai

client = openai.OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
scenario = os.environ["SCENARIO"]
USER = [{"role": "user", "content": "What is the weather in Paris, and what is 2 + 3?"}]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "add", "description": "Adds two numbers",
     "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}}},
]


def collect(stream):
    """Folds a chunk stream the way SDK users do: text, tool calls by index, finish, usage."""
    text, calls, finish, usage, indexes = "", {}, None, None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            for tc in delta.tool_calls or []:
                indexes.append(tc.index)
                call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                if tc.id:
                    assert call["id"] is None, "id repeated in a later chunk"
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return text, [calls[i] for i in sorted(calls)], finish, usage, indexes


def check_parallel_calls(calls):
    assert [c["name"] for c in calls] == ["get_weather", "add"], calls
    assert all(c["id"] for c in calls), calls
    assert len({c["id"] for c in calls}) == 2, calls
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}, calls
    assert json.loads(calls[1]["arguments"]) == {"a": 2, "b": 3}, calls


def second_turn(calls, stream):
    messages = USER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny, 21 C"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "5"},
    ]
    if stream:
        text, _, finish, _, _ = collect(client.chat.completions.create(
            model="mock.tools", messages=messages, tools=TOOLS, stream=True))
    else:
        r = client.chat.completions.create(model="mock.tools", messages=messages, tools=TOOLS)
        text, finish = r.choices[0].message.content, r.choices[0].finish_reason
    assert finish == "stop", finish
    assert "`get_weather` returned sunny, 21 C" in text, text
    assert "`add` returned 5" in text, text


if scenario == "text":
    r = client.chat.completions.create(model="bedrock/text", messages=USER)
    whole = r.choices[0].message.content
    assert whole.startswith('You said: "What is the weather in Paris'), whole
    assert r.choices[0].finish_reason == "stop"
    assert r.model == "bedrock/text" and r.id.startswith("chatcmpl-")
    text, _, finish, usage, _ = collect(client.chat.completions.create(
        model="bedrock/text", messages=USER, stream=True, stream_options={"include_usage": True}))
    assert text == whole, (text, whole)
    assert finish == "stop"
    assert usage.prompt_tokens == r.usage.prompt_tokens and usage.completion_tokens == r.usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

elif scenario == "tools":
    text, calls, finish, _, indexes = collect(client.chat.completions.create(
        model="mock.tools", messages=USER, tools=TOOLS, stream=True))
    assert finish == "tool_calls", finish
    assert sorted(set(indexes)) == [0, 1], indexes
    check_parallel_calls(calls)
    second_turn(calls, stream=True)
    r = client.chat.completions.create(model="mock.tools", messages=USER, tools=TOOLS, tool_choice="required")
    assert r.choices[0].finish_reason == "tool_calls"
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
             for c in r.choices[0].message.tool_calls]
    check_parallel_calls(calls)
    second_turn(calls, stream=False)

elif scenario == "zero-arg":
    no_args = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
    _, calls, finish, _, indexes = collect(client.chat.completions.create(
        model="mock.tools", messages=USER, tools=no_args, stream=True))
    assert finish == "tool_calls"
    assert set(indexes) == {0}, indexes
    assert len(calls) == 1 and calls[0]["name"] == "get_time", calls
    assert calls[0]["arguments"] == "{}", calls
    r = client.chat.completions.create(model="mock.tools", messages=USER, tools=no_args)
    [call] = r.choices[0].message.tool_calls
    assert call.function.name == "get_time" and call.function.arguments == "{}", call

elif scenario == "reasoning":
    reasoning = ""
    text = ""
    for chunk in client.chat.completions.create(model="mock.reasoning", messages=USER, stream=True):
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            text += choice.delta.content or ""
    assert reasoning.startswith("The user wrote"), reasoning
    assert text.startswith("Here is my answer"), text
    r = client.chat.completions.create(model="mock.reasoning", messages=USER)
    assert r.choices[0].message.model_extra["reasoning_content"] == reasoning
    assert r.choices[0].message.content == text

elif scenario == "citations":
    text, _, finish, _, _ = collect(client.chat.completions.create(model="mock.citations", messages=USER, stream=True))
    assert text.startswith("According to your message"), text
    r = client.chat.completions.create(model="mock.citations", messages=USER)
    assert r.choices[0].message.content == text

elif scenario == "cache":
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You answer briefly. " * 50,
                                        "cache_control": {"type": "ephemeral"}}]},
    ] + USER
    r = client.chat.completions.create(model="mock.text", messages=messages)
    u = r.usage
    assert u.prompt_tokens_details.cached_tokens == 1024, u
    _, _, _, su, _ = collect(client.chat.completions.create(
        model="mock.text", messages=messages, stream=True, stream_options={"include_usage": True}))
    assert su.prompt_tokens_details.cached_tokens == 1024, su
    # prompt_tokens counts the uncached input plus cache reads and writes.
    assert su.prompt_tokens == u.prompt_tokens and su.prompt_tokens > 1024 + 512, (su, u)
    assert su.completion_tokens == u.completion_tokens
    print(json.dumps({"prompt_tokens": su.prompt_tokens, "cached_tokens": 1024}))

elif scenario == "exception":
    text = ""
    try:
        for chunk in client.chat.completions.create(model="mock.exception", messages=USER, stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
        raise AssertionError("no error raised")
    except openai.APIError as e:
        assert text.startswith("Let me start answering"), text
        print("error:", e.message)

elif scenario == "http-error":
    try:
        client.chat.completions.create(model="mock.http-error", messages=USER, stream=True)
        raise AssertionError("no error raised")
    except openai.BadRequestError as e:
        assert e.status_code == 400
        assert "http-error" in e.message, e.message
    try:
        client.chat.completions.create(model="mock.text", messages=USER, n=2)
        raise AssertionError("no error raised")
    except openai.BadRequestError as e:
        assert e.body["param"] == "n", e.body
    try:
        client.chat.completions.create(model="mock.server-error", messages=USER)
        raise AssertionError("no error raised")
    except openai.InternalServerError as e:
        assert e.status_code == 500

else:
    raise SystemExit(f"unknown scenario {scenario}")

print("ok", scenario)
