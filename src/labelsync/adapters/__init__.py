"""Plain implementations of the ports: stores (memory, SQLite, PostgreSQL) and clocks.

Import the one you need from its module; importing this package does nothing.
"""
