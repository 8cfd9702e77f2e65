"""Expected failures of the shop, answered in the WP REST error shape.

Every error the shop sends is ``{"code", "message", "data": {"status", ...}}`` like WordPress's
``WP_Error`` responses, so clients written for a real WooCommerce store parse them unchanged.
"""
from __future__ import annotations

from typing import Any, Dict, Optional


class ShopError(Exception):
    """An error with a WooCommerce error code, an HTTP status and optional extra data."""

    def __init__(self, code: str, message: str, status: int,
                 data: Optional[Dict[str, Any]] = None,
                 headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.data = data or {}
        self.headers = headers or {}

    def body(self) -> Dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "data": {"status": self.status, **self.data}}


class ServiceUnavailable(ShopError):
    """A backing service (database or cache) is down: 503 with Retry-After, never a 500."""

    def __init__(self, code: str, message: str, retry_after: int, cause: str = "",
                 errno: Optional[int] = None) -> None:
        data = {"retry_after": retry_after}
        if cause:
            data["cause"] = cause
        super().__init__(code, message, 503, data, {"Retry-After": str(retry_after)})
        self.errno = errno  # the MySQL errno behind a database outage (None: no reply at all)


def bad_param(param: str, reason: str) -> ShopError:
    """WordPress's answer to a request argument that fails validation."""
    return ShopError("rest_invalid_param", f"Invalid parameter(s): {param}", 400,
                     {"params": {param: reason}})


def missing_param(param: str) -> ShopError:
    return ShopError("rest_missing_callback_param", f"Missing parameter(s): {param}", 400,
                     {"params": [param]})
