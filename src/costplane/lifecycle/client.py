"""A small HTTP client of the /v1/environments API (used by `costplane env`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["ApiError", "EnvironmentClient"]


class ApiError(RuntimeError):
    """The server refused a call (or could not be reached); `code`, `field` and `status` say why."""

    def __init__(self, message: str, code: str = "error", field: str | None = None, status: int | None = None):
        self.code = code
        self.field = field
        self.status = status
        super().__init__(message)


class EnvironmentClient:
    def __init__(self, server: str, key: str, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(base_url=self.server, timeout=timeout, transport=transport,
                                  headers={"authorization": f"Bearer {key}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EnvironmentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None,
              params: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            response = self._http.request(method, "/v1/environments" + path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the costplane server at {self.server}: {exc}", "unreachable") from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            if isinstance(error, dict):
                raise ApiError(str(error.get("message") or response.reason_phrase), str(error.get("code") or "error"),
                               error.get("field"), response.status_code)
            raise ApiError(f"HTTP {response.status_code} from {self.server}: {response.text[:300]}", "http_error",
                           None, response.status_code)
        if not isinstance(data, dict):
            raise ApiError(f"unexpected response from {self.server}: {response.text[:300]}", "bad_response")
        return data

    def launch(self, blueprint: str, inputs: Mapping[str, Any], ttl: str | None = None,
               context: Mapping[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"blueprint": blueprint, "inputs": dict(inputs)}
        if ttl is not None:
            body["ttl"] = ttl
        if context:
            body["context"] = dict(context)
        return self._call("POST", "", body)

    def list(self, states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        found = self._call("GET", "", params={"state": ",".join(states)} if states else None)
        return list(found.get("environments") or [])

    def show(self, env_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{env_id}")

    def extend(self, env_id: str, by: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/{env_id}/extend", {"by": by} if by else {})

    def teardown(self, env_id: str) -> dict[str, Any]:
        return self._call("POST", f"/{env_id}/teardown", {})

    def approve(self, env_id: str) -> dict[str, Any]:
        return self._call("POST", f"/{env_id}/approve", {})

    def reject(self, env_id: str, reason: str = "") -> dict[str, Any]:
        return self._call("POST", f"/{env_id}/reject", {"reason": reason})
