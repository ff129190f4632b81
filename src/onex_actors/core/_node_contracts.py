"""The contract unions: any node contract, any contract a file may hold, told apart by ``kind``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._compute_contract import ComputeContract
from ._contracts import EffectContract, RuntimeHostContract
from ._reducer_contract import ReducerContract
from ._workflow_contract import OrchestratorContract

__all__ = ["AnyContract", "HostableContract", "NodeContract"]

HostableContract = EffectContract | ComputeContract | ReducerContract | OrchestratorContract
"""A node a runtime can host."""
NodeContract = Annotated[
    EffectContract | ComputeContract | ReducerContract | OrchestratorContract,
    Field(discriminator="kind"),
]
"""Any node contract, told apart by ``kind``."""
AnyContract = Annotated[
    EffectContract | ComputeContract | ReducerContract | OrchestratorContract | RuntimeHostContract,
    Field(discriminator="kind"),
]
"""Any contract a file may hold, told apart by ``kind``."""
