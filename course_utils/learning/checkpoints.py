"""(placeholder)"""
__all__ = []
