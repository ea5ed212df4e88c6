"""Config: the schemas of every group, the checks before any work, the overrides as typed, and the
wording of every user error as one line."""
