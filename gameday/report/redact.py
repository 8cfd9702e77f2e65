"""Keep secrets out of everything a report writes (and out of journal copies).

Journals carry secrets in three ways: inline values under `secrets` or in activity arguments
(keys like `password`, `consumer_secret`), credentials echoed in outputs and tracebacks (an AWS
key, a `Basic …` header, a `user:pass@host` URL), and values resolved from the environment.
`redact` handles the first two by key name and value shape; `known_secret_values` collects the
literal values a journal references so they are scrubbed wherever they reappear.
"""
import os
import re
from typing import Any, Iterable, Optional, Set

__all__ = ["MASK", "SECRET_KEY", "redact", "redact_text", "known_secret_values"]

MASK = "***redacted***"

SECRET_KEY = re.compile(
    r"password|passwd|secret|token|key_id|access_key|authorization|consumer_key|api_key|"
    r"credential|private_key", re.IGNORECASE)

_TEXT_PATTERNS = [
    # AWS access key ids (long-term AKIA, temporary ASIA, and the other documented prefixes)
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"), MASK),
    # AWS secret access keys: 40 base64 chars with both cases and a digit (not a hex SHA-1)
    (re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+=]*[a-z])(?=[A-Za-z0-9/+=]*[A-Z])"
                r"(?=[A-Za-z0-9/+=]*[0-9])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"), MASK),
    # WooCommerce REST consumer keys and secrets
    (re.compile(r"\b(?:ck|cs)_[0-9a-fA-F]{20,64}\b"), MASK),
    # Authorization header values
    (re.compile(r"\b(Basic|Bearer|Token)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # credentials inside URLs: scheme://user:password@host
    (re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
    # key=value / key: value pairs in free text (log lines, tracebacks, DSNs)
    (re.compile(r"((?:password|passwd|secret|token|consumer_key|access_key)[\w-]*['\"]?\s*[=:]\s*"
                r"['\"]?)([^\s'\",;&)}]+)", re.IGNORECASE), r"\1" + MASK),
]


def _is_env_reference(value: Any) -> bool:
    """`{"type": "env", "key": "NAME"}` names a variable; only its `default` may be a secret."""
    return isinstance(value, dict) and value.get("type") == "env" and "key" in value


def redact_text(text: str, values: Iterable[str] = ()) -> str:
    """`text` with known secret values and secret-looking substrings masked."""
    for value in sorted(values, key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(obj: Any, values: Optional[Iterable[str]] = None, _sensitive: bool = False) -> Any:
    """A deep copy of `obj` (JSON-like) with secrets masked; the input is not modified.

    Values under keys matching SECRET_KEY are masked (containers recursively, environment
    references kept), and every string is scrubbed of `values` and secret-looking substrings.
    """
    values = set(values or ())
    return _redact(obj, values, _sensitive)


def _redact(obj: Any, values: Set[str], sensitive: bool) -> Any:
    if isinstance(obj, dict):
        if sensitive and _is_env_reference(obj):
            return {k: (MASK if k == "default" and v not in (None, "") else v)
                    for k, v in obj.items()}
        return {k: _redact(v, values, sensitive or bool(SECRET_KEY.search(str(k))))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, values, sensitive) for v in obj]
    if sensitive and obj not in (None, "", True, False):
        return MASK
    if isinstance(obj, str):
        return redact_text(obj, values)
    return obj


def known_secret_values(journal: Optional[dict]) -> Set[str]:
    """Literal secret values a journal references: inline under secret keys or from the env.

    Environment-referenced secrets are looked up in the current environment so that a value
    echoed into an output or a traceback is masked too. Very short values are ignored (masking
    every "a" would destroy the report and protect nothing).
    """
    found: Set[str] = set()

    def walk(obj: Any, sensitive: bool) -> None:
        if isinstance(obj, dict):
            if sensitive and _is_env_reference(obj):
                for value in (os.environ.get(str(obj["key"])), obj.get("default")):
                    if isinstance(value, str) and value:
                        found.add(value)
                return
            for k, v in obj.items():
                if k == "secrets" and isinstance(v, list):
                    continue  # an activity's `"secrets": ["gameday"]` names a group, it holds no value
                walk(v, sensitive or bool(SECRET_KEY.search(str(k))))
        elif isinstance(obj, list):
            for v in obj:
                walk(v, sensitive)
        elif sensitive and isinstance(obj, (str, int)) and not isinstance(obj, bool):
            found.add(str(obj))

    walk(journal or {}, False)
    return {v for v in found if len(v) >= 4}
