"""How work is cut, stored and reported: campaign configs, shards, the results store, the Dask
executor, tables and figures."""
