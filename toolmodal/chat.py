"""The chat layout every stage shares: the Gemma chat template and the prompt builder.

Gemma has no system role, so the system message (system prompt plus the serialized tools) is
folded into the first user turn, as Google's own Gemma 3 template does. A tool result is its own
turn, `<start_of_turn>tool\\n<tool_response>...</tool_response><end_of_turn>`. Each assistant turn
is rendered as `<start_of_turn>model\\n` followed by its content and `<end_of_turn>`, and exactly
that content plus `<end_of_turn>` sits inside `{% generation %}` markers, which is what
`return_assistant_tokens_mask` (and so TRL's `assistant_only_loss`) uses to pick the supervised
tokens. `<end_of_turn>` is the model's EOS.

Deliberately left out: how tools become text (`toolmodal.tool_tokens`), how calls are written
(`toolmodal.calls`) and which system prompts exist (the data generator's prompt variants).
"""

from __future__ import annotations

from toolmodal.schema import Tool
from toolmodal.tool_tokens import RESPONSE_END, RESPONSE_START, serialize_tools

END_OF_TURN = "<end_of_turn>"
START_OF_TURN = "<start_of_turn>"

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{{ raise_exception('a system message is only allowed first') }}"
    "{%- endif -%}"
    "{%- if loop.first and first_user_prefix and message['role'] != 'user' -%}"
    "{{ raise_exception('the system message must be followed by a user message') }}"
    "{%- endif -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<start_of_turn>model\\n' }}"
    "{%- generation -%}"
    "{{ message['content'] + '<end_of_turn>' }}"
    "{%- endgeneration -%}"
    "{{ '\\n' }}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{ '<start_of_turn>tool\\n" + RESPONSE_START + "' + message['content'] "
    "+ '" + RESPONSE_END + "<end_of_turn>\\n' }}"
    "{%- else -%}"
    "{{ '<start_of_turn>' + message['role'] + '\\n' }}"
    "{{ (first_user_prefix if loop.first else '') + message['content'] }}"
    "{{ '<end_of_turn>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\\n' }}"
    "{%- endif -%}"
)


def system_content(system_prompt: str, tools: list[Tool]) -> str:
    """The system message text: the prompt, a blank line, then the serialized tools."""
    return "\n\n".join(part for part in (system_prompt, serialize_tools(tools)) if part)


def build_prompt(
    system_prompt: str,
    tools: list[Tool],
    query: str,
    history: list[dict] | None = None,
) -> list[dict]:
    """Build the chat messages the model sees before it answers.

    Args:
        system_prompt: Instructions (one of the prompt variants); may be "".
        tools: Tools offered in this prompt, serialized with `serialize_tools`.
        query: The user's request.
        history: Turns of this episode that come after the query: for a chain, the assistant
            calls made so far and the tool results (role "tool", content = the result text),
            in order. None or [] for a first answer.

    Returns:
        Messages `[system, user, *history]`, each `{"role": ..., "content": str}`.
    """
    messages = [
        {"role": "system", "content": system_content(system_prompt, tools)},
        {"role": "user", "content": query},
    ]
    for turn in history or []:
        if turn["role"] not in ("assistant", "tool"):
            raise ValueError(f"history turn has role {turn['role']!r}; expected assistant or tool")
        messages.append({"role": turn["role"], "content": turn["content"]})
    return messages
