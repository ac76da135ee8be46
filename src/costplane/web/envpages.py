"""Environments page: live TTL countdowns, launch from a blueprint, and extend / teardown buttons
shown only where the caller's role allows them (the API enforces it again on every action)."""

from __future__ import annotations

from typing import Any

from starlette.responses import RedirectResponse, Response

from costplane.web.app import Page
from costplane.web.render import PREFIX

__all__ = ["PAGES"]


def _inputs(form: Any, blueprint: dict[str, Any]) -> dict[str, str]:
    """The blueprint's declared inputs (the API lists them) as the form gave them; the core types and checks
    them (a wrong value is a 400 naming `inputs.<name>`). An empty field leaves the input to its default."""
    out: dict[str, str] = {}
    for spec in blueprint.get("inputs") or []:
        name = str(spec.get("name", ""))
        raw = str(form.get(f"input.{name}", "")).strip()
        if name and raw:
            out[name] = raw
    return out


async def environments_page(page: Page, *, notice: str | None = None, error: str | None = None,
                            status: int = 200) -> Response:
    q = page.request.query_params
    query = {name: q[name] for name in ("status", "team", "blueprint") if q.get(name)}
    data = await page.api("environments", query)
    blueprints = (await page.api("blueprints"))["blueprints"] if page.allows("launch_environment") else []
    return page.render("environments.html", title="Environments", active="/environments", status=status,
                       environments=data["environments"], blueprints=blueprints, query=query,
                       notice=notice or page.request.query_params.get("notice"), error=error,
                       can_extend=page.allows("extend_environment"), can_teardown=page.allows("teardown_environment"),
                       can_approve=page.allows("approve_environment"))


def _done(message: str) -> Response:
    from urllib.parse import quote

    return RedirectResponse(f"{PREFIX}/environments?notice={quote(message)}", status_code=303)


async def action(page: Page) -> Response:
    env_id = page.request.path_params["env_id"]
    verb = page.request.path_params["verb"]
    operations = {"extend": "extend_environment", "teardown": "teardown_environment",
                  "approve": "approve_environment", "reject": "reject_environment"}
    if verb not in operations:
        return Response(f"unknown action {verb!r}", status_code=404)
    form = await page.request.form()
    body: dict[str, Any] = {}
    if verb == "extend" and form.get("by"):
        body["by"] = str(form.get("by"))
    if verb in ("teardown", "reject") and form.get("reason"):
        body["reason"] = str(form.get("reason"))
    result = await page.api(operations[verb], path={"env_id": env_id}, body=body)
    state = result.get("state") or result.get("environment", {}).get("state", "")
    return _done(f"{env_id}: {verb} done ({state})")


async def launch(page: Page) -> Response:
    form = await page.request.form()
    name = str(form.get("blueprint", ""))
    blueprints = {b["name"]: b for b in (await page.api("blueprints"))["blueprints"]}
    if name not in blueprints:
        return await environments_page(page, error=f"blueprint: unknown blueprint {name!r}", status=400)
    tags = {key[4:]: str(value) for key, value in form.items() if key.startswith("tag.") and str(value).strip()}
    body: dict[str, Any] = {"blueprint": name, "inputs": _inputs(form, blueprints[name]), "tags": tags}
    for field in ("team", "project"):
        if form.get(field):
            body[field] = str(form.get(field))
    result = await page.api("launch_environment", body=body)
    return _done(f"{result.get('id', '')}: launched ({result.get('state', '')})")


PAGES: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
    ("/environments", environments_page, ("GET",)),
    ("/environments", launch, ("POST",)),
    ("/environments/{env_id}/{verb}", action, ("POST",)),
)
