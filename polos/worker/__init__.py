"""Runs user code durably: the claim loop, one attempt per claimed execution, the replay rule."""
