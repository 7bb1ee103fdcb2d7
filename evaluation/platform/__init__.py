"""Our scoring as grand-challenge.org's evaluation method: the evaluation container and a local run of it."""
