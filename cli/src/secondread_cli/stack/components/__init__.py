"""Every component of the local stack, one module each, listed here in start order.

A module provides ``NAMES`` (its components' names), ``REPLICATED`` (whether they run as N
replicas) and ``components(ctx)`` (see :class:`secondread_cli.stack.component.ComponentModule`).
Adding a component means writing its module and naming it in ``MODULES``. The stack starts the
components of non-replicated modules one after the other, then the replicated ones (the
services, which depend on the infrastructure only) all at once; ``down`` stops in reverse.
"""

from __future__ import annotations

from secondread_cli.stack.component import ComponentModule
from secondread_cli.stack.components import (
    jaeger,
    kafka,
    keycloak,
    mailpit,
    orthanc,
    postgres,
    s3,
    services,
)

MODULES: tuple[ComponentModule, ...] = (
    postgres,
    kafka,
    s3,
    orthanc,
    jaeger,
    mailpit,
    keycloak,
    services,
)
