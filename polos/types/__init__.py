"""Compatibility path of upstream's `polos.types`."""

from polos.types.types import BatchStepResult, BatchWorkflowInput

__all__ = ["BatchStepResult", "BatchWorkflowInput"]
