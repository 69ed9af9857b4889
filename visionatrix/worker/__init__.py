"""The worker: pulls tasks over the public worker API, runs them in the engine, uploads results.

DEFAULT mode's local worker is this same code talking to the local server.
"""
