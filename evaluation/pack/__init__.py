"""The participants' starter pack (`spider pack`): an example algorithm in grand-challenge's exec and invoke styles."""
