"""onex-actors: a contract-driven runtime host for event-driven services, on trio."""

import logging

from .core import ContractError as ContractError
from .core import EnvelopeError as EnvelopeError
from .core import OnexEnvelope as OnexEnvelope
from .core import OnexError as OnexError

__version__ = "0.1.0"

logging.getLogger("onex_actors").addHandler(logging.NullHandler())

__all__ = ["ContractError", "EnvelopeError", "OnexEnvelope", "OnexError", "__version__"]
