"""Checks for the exercises of lesson 04."""

__all__ = []
