"""The graph engine: runs ComfyUI API-format graphs. Knows nothing of HTTP, databases or users."""
