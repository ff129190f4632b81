"""Contract registries: the ``ContractRegistry`` port and its file-backed adapter."""

from ._file import ContractTree as ContractTree
from ._file import FileRegistry as FileRegistry
from ._file import load_tree as load_tree
from ._protocol import ContractRegistry as ContractRegistry
from ._static import StaticRegistry as StaticRegistry

__all__ = ["ContractRegistry", "ContractTree", "FileRegistry", "StaticRegistry", "load_tree"]
