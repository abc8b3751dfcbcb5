"""rnnkit.serve: the HTTP server for trained runs (FastAPI on uvicorn) and its web page, built on
the task registry and the predictors."""
