"""Kibray's chat text cleaning (spec §2.1, sanitize_message), kept as it is
so that stored and broadcast text match the original app: the text is
HTML-escaped, then each dangerous pattern found in the original text is
deleted from the escaped text, and finally alert(...) calls are deleted.
"""
import re

from django.utils.html import escape

_PATTERNS = [
    re.compile(r"<script[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL),
    re.compile(r"javascript:", re.IGNORECASE),
    re.compile(r"on\w+\s*=", re.IGNORECASE),
    re.compile(r"<iframe", re.IGNORECASE),
    re.compile(r"<object", re.IGNORECASE),
    re.compile(r"<embed", re.IGNORECASE),
]
_ALERT = re.compile(r"alert\s*\([^)]*\)", re.IGNORECASE)


def sanitize_message(text):
    """Return the cleaned form of text, which is what is stored and sent."""
    cleaned = str(escape(text))
    for pattern in _PATTERNS:
        if pattern.search(text):
            cleaned = pattern.sub("", cleaned)
    return _ALERT.sub("", cleaned)
