"""Adapters that map public credit data sets into the canonical tables."""
