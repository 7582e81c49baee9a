"""Validation against external truths (``external-truths.md``): closed forms and control laws."""
