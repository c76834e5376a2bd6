"""Finding roles among the running ones by what the runtime knows (switch, name)."""

from __future__ import annotations

from typing import Any, Mapping

from controller.core.foreign_agent import ForeignAgent
from controller.core.role import FA, kind_of


def foreign_agents(roles: Mapping[str, Any]) -> list[ForeignAgent]:
    return [r for k, r in roles.items() if kind_of(k) == FA]


def fa_of_dpid(roles: Mapping[str, Any], dpid: int) -> ForeignAgent | None:
    for fa in foreign_agents(roles):
        if fa.conf.access_dpid == dpid:
            return fa
    return None
