"""Durable, non-blocking persistence of gateway call records (Message rows)."""

from turnout.records.writer import RecordWriter

__all__ = ["RecordWriter"]
