"""Step keys: the state file's keys and the `provisioner:component` tag of what each step makes."""

from __future__ import annotations


def spoke(spoke_name: str, what: str) -> str:
    return f"spoke/{spoke_name}/{what}"


def hub(what: str, az: str | None = None) -> str:
    return f"hub/{what}/{az}" if az else f"hub/{what}"
