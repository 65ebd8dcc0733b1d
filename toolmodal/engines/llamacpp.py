"""llama.cpp engine for GGUF files (llama-cpp-python), greedy, one request at a time, requests
ordered so that shared prompt prefixes stay in the KV cache.

The prompt is rendered with the chat template embedded in the GGUF file (by transformers' own
Jinja renderer, so the text is exactly what the transformers engine builds) and tokenized by
llama.cpp with special tokens parsed. Generation stops at an end-of-generation token (the
template's `<end_of_turn>`) or after `max_new_tokens`; the text is detokenized without control
tokens, so the call delimiters (user-defined tokens) stay and schema tokens go, as with
`skip_special_tokens=True` in transformers.

Masking:
- soft: a logits processor adds `soft_bias` to the tokens that continue an offered tool name
  at a name position (the same rule and token table logic as `toolmodal.masking.soft`);
- hard: llama.cpp's grammar engine over GBNF translated from the xgrammar EBNF of
  `toolmodal.masking.grammar.ebnf`, so the language is the one every other engine uses; it
  tests the greedy choice first and masks the whole vocabulary only when that choice is
  refused (`toolmodal.engines.lazy_grammar`: same outputs, a fraction of the cost). The
  translation is mechanical: lookahead assertions (an xgrammar speed hint that never changes
  the language) are dropped, `{m, -1}` becomes `{m,}`, `\\0` becomes `\\x00`, "_" in rule
  names becomes "-", and xgrammar's `Regex("...")` rules (string patterns) are rewritten by
  llama-cpp-python's own regex-to-GBNF converter.

A LoRA adapter GGUF (`EngineConfig.lora`, e.g. the Q4_K_M correction written by
`toolmodal.export`) is applied at load; llama-cpp-python then reads the model into memory
instead of mapping it.

Several requests decode together (`EngineConfig.batch_size` at a time) on a second llama.cpp
context over the same weights (`toolmodal.engines.llama_batch`); one request, or
`batch_size` 1, takes the one-sequence path of llama-cpp-python's `generate` (as `serve` does).

Deliberately left out: sampling, and `hard_backend` (llama.cpp has one grammar engine).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
from transformers.utils.chat_template_utils import render_jinja_template

from toolmodal.calls import CALL_START
from toolmodal.engines import EngineConfig, Generation, Request
from toolmodal.engines.lazy_grammar import LazyGrammar
from toolmodal.engines.llama_batch import BatchDecoder
from toolmodal.engines.llama_log import route_native_logs
from toolmodal.masking import grammar
from toolmodal.masking.decision import call_probability, withholds_call
from toolmodal.masking.names import TAIL_TOKENS, continuation_ids, name_prefix
from toolmodal.schema import Tool

N_BATCH = 256
# The llama-cpp-python release whose vendored converter writes our GGUF files (`export` extra).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
_REGEX_RULE = re.compile(r'Regex\(("(?:[^"\\]|\\.)*")(?:, json_string=true)?\)')


def _skip_quoted(text: str, i: int) -> int:
    """Index just past the string literal or character class starting at text[i]."""
    close = '"' if text[i] == '"' else "]"
    i += 1
    while text[i] != close:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _matching_paren(text: str, i: int) -> int:
    """Index just past the parenthesis group starting at text[i] == "("."""
    depth = 0
    while True:
        if text[i] in '"[':
            i = _skip_quoted(text, i)
            continue
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            return i


def _translate_rule(body: str) -> str:
    """One rule body from xgrammar EBNF to GBNF (strings and character classes kept as is)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] in '"[':
            end = _skip_quoted(body, i)
            out.append(body[i:end].replace("\\0", "\\x00"))
            i = end
        elif body.startswith("(=", i):
            i = _matching_paren(body, i)
        elif body[i] == "{":
            end = body.index("}", i) + 1
            low, high = (part.strip() for part in body[i + 1:end - 1].split(","))
            out.append(f"{{{low},{'' if high == '-1' else high}}}")
            i = end
        else:
            out.append("-" if body[i] == "_" else body[i])  # GBNF names have no "_"
            i += 1
    return "".join(out).rstrip()


_SHORTHAND = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}


def expand_shorthands(pattern: str) -> str:
    """Regex with \\d, \\w, \\s and escaped punctuation (`\\.`) written as classes.

    llama-cpp-python's converter lacks the shorthands and copies `\\.` into a GBNF literal,
    where it is an unknown escape.
    """
    out, in_class, i = [], False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pair, i = pattern[i:i + 2], i + 2
            if pair[1] in _SHORTHAND:
                body = _SHORTHAND[pair[1]]
                out.append(body if in_class else f"[{body}]")
            elif not in_class and not pair[1].isalnum():
                out.append(f"[{pair}]" if pair[1] in "]\\^-" else f"[{pair[1]}]")
            else:
                out.append(pair)
            continue
        in_class = (in_class and char != "]") or (not in_class and char == "[")
        out.append(char)
        i += 1
    return "".join(out)


def _pattern_rules(patterns: dict[str, str]) -> list[str]:
    """GBNF rules for xgrammar's `Regex(...)` rules, via llama.cpp's regex-to-GBNF converter."""
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False,
                                raw_pattern=True)
    links = []
    for name, pattern in patterns.items():
        anchored = f"^{expand_shorthands(pattern).removeprefix('^').removesuffix('$')}$"
        links.append(f"{name} ::= {converter._visit_pattern(anchored, f'pattern-{name}')}")
    return links + [f"{name} ::= {rule}" for name, rule in converter._rules.items()
                    if name != "space"]


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def ebnf_string(literal: str) -> str:
    """The text of an xgrammar EBNF string literal (quotes included; `\\?` is `?`, not JSON)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


def gbnf_from_ebnf(ebnf: str) -> str:
    """Translate xgrammar EBNF (as written by `toolmodal.masking.grammar.ebnf`) to GBNF.

    Raises:
        ValueError: A rule is not of the form `name ::= body`.
    """
    rules, patterns = [], {}
    for line in ebnf.splitlines():
        if not line.strip():
            continue
        name, sep, body = line.partition(" ::= ")
        if not sep:
            raise ValueError(f"not an EBNF rule: {line!r}")
        regex = _REGEX_RULE.fullmatch(body.strip())
        name = name.strip().replace("_", "-")
        if regex:
            patterns[name] = ebnf_string(regex.group(1))
        else:
            rules.append(f"{name} ::= {_translate_rule(body)}")
    return "\n".join(rules + (_pattern_rules(patterns) if patterns else [])) + "\n"


def import_llama_cpp():
    """Import llama_cpp, checking it is the version whose converter wrote our files.

    Raises:
        ImportError: Another llama-cpp-python version is installed.
    """
    import llama_cpp

    if llama_cpp.__version__ != LLAMA_CPP_PYTHON_VERSION:
        raise ImportError(f"llama-cpp-python {llama_cpp.__version__} is installed but the "
                          f"converter is pinned to {LLAMA_CPP_PYTHON_VERSION}; install "
                          "the `export` extra")
    route_native_logs(llama_cpp)  # its warnings were printed to stderr (see llama_log)
    return llama_cpp


class LlamaCppEngine:
    """Greedy generation from a GGUF file with optional soft or hard masking."""

    def __init__(self, model: Path, config: EngineConfig, n_ctx: int = 4096,
                 n_batch: int = N_BATCH, n_threads: int | None = None) -> None:
        """Load the GGUF file (and `config.lora`, if set).

        Args:
            model: The .gguf file.
            config: Shared engine settings (hard_backend does not apply).
            n_ctx: Context length (prompt plus generation) of one request; the batched
                context holds twice as many cells, which a wave's requests share (a tool
                block once, then each request's own tokens: 8 rows of the cpu overlay's
                test sets take ~2,500).
            n_batch: Prompt tokens per forward pass; llama.cpp sizes its compute buffers by it
                (peak RSS of the 270M Q4_K_M at n_ctx 4096: 482 MB at 256, ~490 MB at 512).
            n_threads: CPU threads (None: all cores).

        Raises:
            FileNotFoundError: The model or the LoRA file does not exist.
        """
        for path in (model, config.lora):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"GGUF file not found: {path}")
        self.llama_cpp = import_llama_cpp()
        self.config = config
        threads = n_threads or os.cpu_count()
        self.llm = self.llama_cpp.Llama(
            model_path=str(model), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
            n_batch=n_batch, n_ubatch=n_batch, verbose=False,
            lora_path=None if config.lora is None else str(config.lora))
        self.template = self.llm.metadata["tokenizer.chat_template"]
        self.bos_token = self.llm._model.token_get_text(self.llm.token_bos())
        self._grammars: dict[tuple[str, int], LazyGrammar] = {}
        self._table: dict[str, list[int]] | None = None
        self._batched: BatchDecoder | None = None  # made at the first batched call

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """Render the chat template with the generation prompt and tokenize it."""
        rendered, _ = render_jinja_template([messages], chat_template=self.template,
                                            add_generation_prompt=True,
                                            bos_token=self.bos_token)
        return self.llm.tokenize(rendered[0].encode("utf-8"), add_bos=False, special=True)

    def generate(self, requests: list[Request]) -> list[Generation]:
        """Complete each request greedily; one Generation per request, same order.

        Requests run sorted by their prompt tokens, so rows sharing a system prompt and tool
        block are neighbours: they decode together (`batch_size` at a time, evaluating the
        shared prefix once), or one at a time, where llama-cpp-python keeps the longest common
        prefix of consecutive prompts in its KV cache.
        """
        prompts = [self.prompt_tokens(r.messages) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: prompts[i])
        if self.config.batch_size > 1 and len(requests) > 1 and self.config.max_new_tokens > 0:
            done = self._generate_batched([requests[i] for i in order], [prompts[i] for i in order])
            results = dict(zip(order, done, strict=True))
        else:
            results = {i: self._generate_one(requests[i], prompts[i]) for i in order}
        return [results[i] for i in range(len(requests))]

    def _processors(self, request: Request, prompt_length: int, seq: int = 0) -> list:
        """The request's logits processors (call decision first, then its mask); `seq` picks
        which copy of a tool set's grammar holds this generation's state."""
        processors = []
        if self.config.call_threshold is not None:
            processors.append(self.decision_processor(prompt_length))
        if request.mask == "hard":
            processors.append(self._grammar(request.tools, seq).processor(prompt_length))
        elif request.mask == "soft" and request.tools:
            processors.append(self._soft_processor([t.name for t in request.tools],
                                                   prompt_length))
        return processors

    def _generate_batched(self, requests: list[Request],
                          prompts: list[list[int]]) -> list[Generation]:
        """`requests` decoded together, `batch_size` at a time, in the given order."""
        if self._batched is None:
            self._batched = BatchDecoder(self.llama_cpp, self.llm, self.config.batch_size,
                                         2 * self.llm.n_ctx())
        decoded = self._batched.run(
            prompts, lambda i, seq: self._processors(requests[i], len(prompts[i]), seq),
            self.config.max_new_tokens)
        return [self._generation(d.tokens, d.stopped, d.seconds) for d in decoded]

    def _generation(self, new: list[int], stopped: bool, seconds: float) -> Generation:
        """The Generation of `new` tokens (end-of-turn counted as a generated token when
        `stopped`, as the transformers engine counts it)."""
        text = self.llm.detokenize(new, special=False).decode("utf-8", errors="replace")
        return Generation(text=text, n_new_tokens=len(new) + stopped, seconds=seconds,
                          ended=stopped)

    def _generate_one(self, request: Request, prompt: list[int]) -> Generation:
        start = time.perf_counter()
        kwargs: dict = {}
        processors = self._processors(request, len(prompt))
        if processors:
            kwargs["logits_processor"] = self.llama_cpp.LogitsProcessorList(processors)
        new: list[int] = []
        stopped = False
        if self.config.max_new_tokens > 0:
            for token in self.llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0,
                                           **kwargs):
                stopped = self.llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token)
                if stopped:
                    break
                new.append(token)
                if len(new) >= self.config.max_new_tokens:
                    break
        return self._generation(new, bool(stopped), time.perf_counter() - start)

    def first_token_calls(self, requests: list[Request]) -> list[tuple[float, bool]]:
        """Per request, unmasked and without the call decision: the call-start token's
        probability at the first generated position and whether it is the greedy choice
        there (`toolmodal.call_calibration` chooses `call_threshold` from these). Requests run
        in prompt order, as `generate` does, so shared prefixes stay in the KV cache."""
        call_id = self.call_id()
        prompts = [self.prompt_tokens(r.messages) for r in requests]
        found: dict[int, tuple[float, bool]] = {}
        for i in sorted(range(len(requests)), key=lambda i: prompts[i]):
            seen: list[np.ndarray] = []

            def keep(input_ids: np.ndarray, scores: np.ndarray, seen=seen) -> np.ndarray:
                seen.append(scores.copy())
                return scores

            next(self.llm.generate(prompts[i], temp=0.0, top_k=1, repeat_penalty=1.0,
                                   logits_processor=self.llama_cpp.LogitsProcessorList([keep])))
            found[i] = (float(call_probability(seen[0], call_id)),
                        int(seen[0].argmax()) == call_id)
        return [found[i] for i in range(len(requests))]

    def call_id(self) -> int:
        """The call-start token's id."""
        (call_id,) = self.llm.tokenize(CALL_START.encode("utf-8"), add_bos=False, special=True)
        return call_id

    def gbnf(self, tools: list[Tool]) -> str:
        """The GBNF grammar of the output language for this tool set."""
        return gbnf_from_ebnf(grammar.ebnf(tools, self.config.hard_reasoning,
                                           self.config.any_order))

    def _grammar(self, tools: list[Tool], seq: int = 0) -> LazyGrammar:
        """The built-once grammar sampler of the output language for this tool set (one per
        sequence decoded at once: each holds its generation's state)."""
        key = (grammar.tool_set_key(tools), seq)
        if key not in self._grammars:
            self._grammars[key] = LazyGrammar(self.llama_cpp, self.llm._model.vocab,
                                              self.gbnf(tools), self.llm.n_vocab())
        return self._grammars[key]

    def token_table(self) -> dict[str, list[int]]:
        """Text of every ordinary token ("▁" read as a space) -> ids, built once."""
        if self._table is None:
            table: dict[str, list[int]] = {}
            model = self.llm._model
            normal = self.llama_cpp.LLAMA_TOKEN_ATTR_NORMAL
            for token_id in range(model.n_vocab()):
                text = model.token_get_text(token_id)
                if model.token_get_attr(token_id) & normal and not text.startswith("<0x"):
                    table.setdefault(text.replace("\u2581", " "), []).append(token_id)
            self._table = table
        return self._table

    def decision_processor(self, prompt_length: int):
        """Logits processor of the call decision at the first generated position (runs
        before the grammar sampler, so it reads the model's own distribution)."""
        call_id = self.call_id()
        threshold = self.config.call_threshold

        def decide(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
            if len(input_ids) == prompt_length and withholds_call(scores, call_id, threshold):
                scores[call_id] = -np.inf
            return scores

        return decide

    def _soft_processor(self, names: list[str], prompt_length: int):
        """Logits processor adding `soft_bias` to tokens continuing an offered name."""
        table = self.token_table()

        def bias(input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
            start = max(prompt_length, len(input_ids) - TAIL_TOKENS)
            partial = name_prefix(self.llm.detokenize(list(input_ids[start:]), special=False)
                                  .decode("utf-8", errors="replace"))
            if partial is not None:
                scores[continuation_ids(partial, names, table)] += self.config.soft_bias
            return scores

        return bias
