"""Optional teacher: paraphrase queries through an OpenAI-compatible chat endpoint.

Off by default (`GenerationConfig.teacher`). Configured only from the environment:
`TOOLMODAL_TEACHER_URL` (base URL, e.g. `https://host/v1`), `TOOLMODAL_TEACHER_KEY` (bearer
key, optional for local servers) and `TOOLMODAL_TEACHER_MODEL`. Requests go through the
maintained `openai` client, which brings the timeout, retries with backoff on connection errors,
429 and 5xx, and typed errors. The key lives only in the `Teacher` and its client: it is never
logged, put in an error message, a config, the dataset card or MLflow (tests/test_teacher.py
checks all of these). When the URL or model is unset, `Teacher.from_env` logs that the step is
skipped and returns None. A paraphrase is only kept when semantic verification still finds every
argument value in it (see `generate._paraphrase`); a failed request keeps the original query.

Deliberately left out: batching and caching; with a teacher on, determinism holds only as far
as the endpoint is deterministic (temperature 0 is requested).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import openai

log = logging.getLogger(__name__)

INSTRUCTION = ("Rewrite the user's request in different words. Keep every name, number, date, "
               "quoted text and value exactly as written. Reply with the rewritten request only.")
# The client refuses to start without a key; keyless local servers ignore this placeholder.
NO_KEY = "none"


@dataclass
class Teacher:
    """A configured endpoint; `key` and the client are kept out of repr so neither reaches a log.

    Attributes:
        url: Base URL of the OpenAI-compatible API (the part before `/chat/completions`).
        model: Model name sent with every request.
        key: Bearer key ("" for servers that need none).
        timeout: Seconds per request attempt.
        max_retries: Retries of a failed attempt (the client's backoff between them).
    """

    url: str
    model: str
    key: str = field(default="", repr=False)
    timeout: float = 30.0
    max_retries: int = 2
    client: openai.OpenAI = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = openai.OpenAI(base_url=self.url, api_key=self.key or NO_KEY,
                                    timeout=self.timeout, max_retries=self.max_retries)

    @classmethod
    def from_env(cls) -> Teacher | None:
        """The teacher configured in the environment, or None (logged) when it is not."""
        url = os.environ.get("TOOLMODAL_TEACHER_URL", "")
        model = os.environ.get("TOOLMODAL_TEACHER_MODEL", "")
        if not url or not model:
            log.info("teacher paraphrasing skipped: TOOLMODAL_TEACHER_URL or "
                     "TOOLMODAL_TEACHER_MODEL is not set")
            return None
        return cls(url=url.rstrip("/"), model=model,
                   key=os.environ.get("TOOLMODAL_TEACHER_KEY", ""))

    def paraphrase(self, query: str) -> str | None:
        """The paraphrased query, or None when the request fails or the reply is empty.

        A failure is logged with the endpoint and the error's type only: a server's error
        message may echo request headers.
        """
        messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": query}]
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=messages,
                                                        temperature=0)
        except openai.APIError as exc:
            log.warning("teacher request to %s failed: %s", self.url, type(exc).__name__)
            return None
        text = reply.choices[0].message.content if reply.choices else None
        return (text or "").strip() or None
