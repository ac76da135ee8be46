"""The SDK's ambient context: attribution values, the session, the active run and tree node.

One `ContextVar` holds an immutable `Frame` — the documented exception to "no global
state": contextvars are per thread and per asyncio task, so `asyncio.gather` children
inherit the frame of the task that created them and never leak into each other. Threads
start with an empty context; carry it with `run_in_thread`, `wrap` or `ContextPool`.

    with costplane.context(team="ml", pipeline="fraud-train"):   # a context manager …
        ...

    @costplane.context(agent="support-bot")                     # … or a decorator (sync or async)
    def handle(ticket): ...
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from costplane.attribution.context import Context

if TYPE_CHECKING:
    from costplane.sdk.runs import RunHandle
    from costplane.sdk.session import Session

__all__ = ["ContextPool", "Frame", "Scope", "SessionScope", "context", "current_context", "current_frame",
           "run_in_thread", "wrap"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Frame:
    values: Mapping[str, str] = field(default_factory=dict)  # dimensions and tags (tag name -> value)
    session: Session | None = None
    run: RunHandle | None = None
    node: str | None = None  # the tree node new work hangs under

    def context(self) -> Context:
        return Context.from_mapping(self.values, source="costplane.context")


_EMPTY = Frame()
_FRAME: contextvars.ContextVar[Frame] = contextvars.ContextVar("costplane_frame", default=_EMPTY)


def current_frame() -> Frame:
    return _FRAME.get()


def current_context() -> Context:
    """The attribution Context of the calling task/thread (validated)."""
    return _FRAME.get().context()


class Scope:
    """A frame change entered with `with`/`async with`, or applied to a function as a decorator
    (each call enters a fresh scope). Subclasses override `_enter`/`_exit`."""

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[Frame]] = []

    def _frame(self, outer: Frame) -> Frame:
        return outer

    def _enter(self) -> Any:
        return self

    def _exit(self, exc: BaseException | None) -> None:
        return None

    def _fresh(self) -> Scope:
        """A new scope with the same arguments (decorators enter one per call)."""
        return self

    def __enter__(self) -> Any:
        result = self._enter()
        self._tokens.append(_FRAME.set(self._frame(_FRAME.get())))
        return result

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _FRAME.reset(self._tokens.pop())
        self._exit(exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(kind, exc, tb)

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            with self._fresh():
                return fn(*args, **kwargs)

        return run


class context(Scope):
    """Set attribution dimensions (org … outcome) and free tags for everything inside."""

    def __init__(self, **values: str | None) -> None:
        super().__init__()
        clean = {k: str(v) for k, v in values.items() if v is not None}
        Context.from_mapping(clean, source="costplane.context")  # fail here, naming the value
        self._values = clean

    def _frame(self, outer: Frame) -> Frame:
        return replace(outer, values={**outer.values, **self._values})

    def _fresh(self) -> Scope:
        return context(**self._values)


class SessionScope(Scope):
    """`session.activate()`: make a Session the current one."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session

    def _frame(self, outer: Frame) -> Frame:
        return replace(outer, session=self._session)

    def _fresh(self) -> Scope:
        return SessionScope(self._session)


def wrap(fn: Callable[P, T]) -> Callable[P, T]:
    """`fn` bound to the caller's current context: call it from any thread or pool."""
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return captured.copy().run(fn, *args, **kwargs)  # a copy each call: safe to run concurrently

    return run


def run_in_thread(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
    """`pool.submit(fn, …)` that runs `fn` in the submitting task's context."""
    return pool.submit(contextvars.copy_context().run, fn, *args, **kwargs)


class ContextPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose `submit` and `map` carry the caller's context into the worker."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)

    def map(self, fn: Callable[..., T], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1, **kwargs: Any) -> Iterator[T]:
        return super().map(wrap(fn), *iterables, timeout=timeout, chunksize=chunksize, **kwargs)


def push(frame: Frame) -> contextvars.Token[Frame]:
    """Low level, for the SDK's own scopes: make `frame` current."""
    return _FRAME.set(frame)


def pop(token: contextvars.Token[Frame]) -> None:
    _FRAME.reset(token)
