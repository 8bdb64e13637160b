"""(placeholder, filled in by the refactor of issue #12)"""
__all__ = []
