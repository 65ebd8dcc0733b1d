"""Optional teacher: paraphrase queries through an OpenAI-compatible chat endpoint.

Off by default (`GenerationConfig.teacher`). Configured only from the environment:
`TOOLMODAL_TEACHER_URL` (base URL, e.g. `https://host/v1`), `TOOLMODAL_TEACHER_KEY` (bearer
key, optional for local servers) and `TOOLMODAL_TEACHER_MODEL`. The key is never logged or put in
an error message. When the URL or model is unset, `Teacher.from_env` logs that the step is
skipped and returns None. A paraphrase is only kept when semantic verification still finds every
argument value in it (see `generate._paraphrase`); a failed request keeps the original query.

Deliberately left out: retries, batching and caching; with a teacher on, determinism holds only
as far as the endpoint is deterministic (temperature 0 is requested).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

INSTRUCTION = ("Rewrite the user's request in different words. Keep every name, number, date, "
               "quoted text and value exactly as written. Reply with the rewritten request only.")


@dataclass
class Teacher:
    """A configured endpoint; `key` is kept out of repr so it never reaches a log."""

    url: str
    model: str
    key: str = field(default="", repr=False)
    timeout: float = 30.0

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
        """The paraphrased query, or None when the request fails (logged without the key)."""
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": INSTRUCTION},
                             {"role": "user", "content": query}]}
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(f"{self.url}/chat/completions",
                                         data=json.dumps(body).encode("utf-8"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
            text = reply["choices"][0]["message"]["content"].strip()
        except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError) as exc:
            log.warning("teacher request to %s failed: %s", self.url, type(exc).__name__)
            return None
        return text or None
