"""Checks for the exercises of lesson 01."""

__all__ = []
