"""A module whose import fails, as a user's compute module with a bug may."""

raise RuntimeError("the module's own bug")
