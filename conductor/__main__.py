from conductor._entry import conductor

conductor()
