"""Structured JSON logs (Powertools). Log ids of objects and counts, never readings."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="citypipe")
