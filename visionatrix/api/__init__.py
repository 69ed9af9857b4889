"""The HTTP layer: FastAPI routers that parse, authorise, call one service, and shape the answer."""
