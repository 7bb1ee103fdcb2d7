"""The SPIDER challenge declared once: labels, metric rules, container contract, phases, data."""
